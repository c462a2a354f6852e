#!/usr/bin/env bash
# What user-mode kmemleak-lite's stacks cost an allocation loop (bench/alloc-loop.c: N
# malloc/free pairs 30 calls deep, built with the compiler's defaults, so without frame
# pointers), in one run: no tracing; --unwind fp (the kernel walks frame pointers at every
# allocation); --unwind dwarf at its default budget (a copy of --stack-bytes of stack for the
# first 1000 allocations a second per call site, the rest counted at their call site); dwarf
# with --stacks-per-second 0 (a copy at every allocation, unwound in user space); dwarf-all
# with --stack-bytes 32768; and bpftrace's leak script keeping a `ustack` per allocation.
# Rounds are interleaved and the median per configuration is reported, as ns per allocation,
# as a slowdown against no tracing, and as that slowdown over fp's (issue 24's goal: dwarf
# within the budget <= x1.2).
#
# usage: sudo bench/kmemleak-unwind.sh [ALLOCATIONS] [ROUNDS]   (default 200000, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
rounds=${2:-5}
ours=${OURS:-target/release/kmemleak-lite}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/alloc-loop" bench/alloc-loop.c
libc=$(ldd "$tmp/alloc-loop" | awk '/libc\.so/ {print $3}')
have_bpftrace=$(command -v bpftrace || true)

# The workload's own line (its elapsed ns) among what the tracer printed.
elapsed() { grep -E '^[0-9]+$' "$tmp/out" | tail -1; }
ours() {
    "$ours" -c "$tmp/alloc-loop $n" -i 600 "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    elapsed
}
bt_ustack() {
    bpftrace -c "$tmp/alloc-loop $n" -e "
        uprobe:$libc:malloc /pid == cpid/ { @size[tid] = arg0; }
        uretprobe:$libc:malloc /@size[tid]/ { @stack[retval] = ustack; @bytes[retval] = @size[tid]; delete(@size[tid]); }
        uprobe:$libc:free /pid == cpid/ { delete(@stack[arg0]); delete(@bytes[arg0]); }
        END { clear(@size); clear(@bytes); }" >"$tmp/out" 2>&1
    elapsed
}

configs=(none fp dwarf dwarf-all dwarf-all-32k)
[ -n "$have_bpftrace" ] && configs+=(bt-ustack)
declare -A results
for r in $(seq "$rounds"); do
    for c in "${configs[@]}"; do
        case $c in
            none) "$tmp/alloc-loop" "$n" >"$tmp/out"; ns=$(elapsed) ;;
            fp) ns=$(ours --unwind fp) ;;
            dwarf) ns=$(ours --unwind dwarf) ;;
            dwarf-all) ns=$(ours --unwind dwarf --stacks-per-second 0) ;;
            dwarf-all-32k) ns=$(ours --unwind dwarf --stacks-per-second 0 --stack-bytes 32768) ;;
            bt-ustack) ns=$(bt_ustack) ;;
        esac
        results[$c]+="$ns "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${results[none]}" | median)
fp=$(echo "${results[fp]}" | median)
echo "workload: $n malloc/free pairs 30 calls deep (no frame pointers), $rounds interleaved rounds, median; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${configs[@]}"; do
    m=$(echo "${results[$c]}" | median)
    awk -v c="$c" -v m="$m" -v b="$base" -v n="$n" -v fp="$fp" \
        'BEGIN { printf "%-14s %8.0f ns/alloc  slowdown x%.2f  vs fp x%.2f\n", c, m / n, m / b, (m / b) / (fp / b) }'
done
