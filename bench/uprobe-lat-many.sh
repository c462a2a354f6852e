#!/usr/bin/env bash
# uprobe-lat on many functions: how long it takes to attach (launch to the "attached" line) and
# to exit (Ctrl-C to the process gone), with multi-uprobe links (kernel 6.6+, the default where
# the kernel has them) and with one link per probe (the path of older kernels; forced here with
# the hidden --attach-per-probe, on fewer functions because each detach costs ~0.1 s on 6.18).
# A generated C program (in a temporary directory) has N empty functions fn_0000..; once the
# tracer is attached it calls each of them once, and the run checks that every one was counted.
#
# usage: sudo bench/uprobe-lat-many.sh [N] [ROUNDS] [PER_PROBE_N]   (default 1000, 3, 50)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
rounds=${2:-3}
per_probe_n=${3:-50}
ours=${OURS:-target/release/uprobe-lat}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

# many.c: N functions and a main that calls each once after reading a line.
gen() {
    local count=$1 out=$2 i
    {
        echo '#include <stdio.h>'
        for ((i = 0; i < count; i++)); do
            printf '__attribute__((noinline)) void fn_%04d(void) { __asm__ volatile("" ::: "memory"); }\n' "$i"
        done
        printf 'static void (*const all[])(void) = {'
        for ((i = 0; i < count; i++)); do printf 'fn_%04d,' "$i"; done
        echo '};'
        echo 'int main(void) { char l[8]; if (!fgets(l, sizeof(l), stdin)) return 2;'
        echo '  for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) all[i](); return 0; }'
    } >"$out.c"
    cc -O1 -o "$out" "$out.c"
}
gen "$n" "$tmp/many"
gen "$per_probe_n" "$tmp/few"

now() { date +%s.%N; }
# One run: prints "attach_s exit_s counted".
one() {
    local exe=$1 err out t0 t1 t2 tracer
    err=$tmp/err.$RANDOM
    out=$tmp/out.$RANDOM
    t0=$(now)
    "$ours" -v --no-calibrate "${@:2}" "$exe:fn_*" >"$out" 2>"$err" &
    tracer=$!
    until grep -q ": attached" "$err" 2>/dev/null; do
        kill -0 $tracer 2>/dev/null || { grep -v "libbpf debug" "$err" >&2; exit 1; }
        sleep 0.01
    done
    t1=$(now)
    echo go | "$exe"
    sleep 0.3
    t2=$(now)
    kill -INT $tracer
    wait $tracer
    local t3
    t3=$(now)
    echo "$t0 $t1 $t2 $t3 $(grep -c '^count 1 ' "$out")"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in multi per-probe; do
    if [ $mode = multi ]; then exe=$tmp/many; count=$n; extra=(); else exe=$tmp/few; count=$per_probe_n; extra=(--attach-per-probe); fi
    attach="" exit_s=""
    for _ in $(seq "$rounds"); do
        read -r t0 t1 t2 t3 counted < <(one "$exe" "${extra[@]}")
        [ "$counted" = "$count" ] || echo "warning: $mode counted $counted of $count functions" >&2
        attach+="$(echo "$t1 - $t0" | bc) "
        exit_s+="$(echo "$t3 - $t2" | bc) "
    done
    printf '%-10s %5d functions: attach %6.2f s, exit %6.2f s (median of %d)\n' \
        "$mode" "$count" "$(echo "$attach" | median)" "$(echo "$exit_s" | median)" "$rounds"
done
