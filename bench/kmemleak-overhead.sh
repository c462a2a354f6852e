#!/usr/bin/env bash
# kmemleak-lite's cost to an allocation-heavy workload (N small-file opens/reads/closes), in
# one run: no tracing, kmemleak-lite (default), kmemleak-lite --combined, bpftrace counting
# kmem:kmalloc (the cheapest thing a tracer can do there), and bpftrace counting kmalloc and
# kmem_cache_alloc by kernel stack (the stack capture kmemleak-lite needs for every allocation). Rounds are interleaved (each configuration once per round) and the median
# per configuration is reported, as ns per open/close and as a slowdown against no tracing.
#
# usage: sudo bench/kmemleak-overhead.sh [OPENS] [ROUNDS]    (default 200000 opens, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
opens=${1:-200000}
rounds=${2:-5}
ours=${OURS:-target/release/kmemleak-lite}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/open-close" bench/open-close.c
echo hello >"$tmp/small"
have_bpftrace=$(command -v bpftrace || true)

workload() { "$tmp/open-close" "$opens" "$tmp/small"; }

# Starts a tracer in the background and waits until it has attached.
start_ours() {
    "$ours" -v "$@" >"$tmp/ours.out" 2>"$tmp/ours.err" &
    tracer=$!
    until grep -q ": attached" "$tmp/ours.err" 2>/dev/null; do
        kill -0 $tracer 2>/dev/null || { cat "$tmp/ours.err" >&2; exit 1; }
        sleep 0.05
    done
}
start_bpftrace() {
    bpftrace -e "$1" >"$tmp/bt.out" 2>&1 &
    tracer=$!
    until grep -q "Attaching" "$tmp/bt.out" 2>/dev/null; do sleep 0.05; done
    sleep 0.5
}
stop_tracer() { kill -INT $tracer; wait $tracer 2>/dev/null || true; }

configs=(none default combined)
[ -n "$have_bpftrace" ] && configs+=(bt-count bt-kstack)
declare -A results
for r in $(seq "$rounds"); do
    for c in "${configs[@]}"; do
        case $c in
            none) ns=$(workload) ;;
            default) start_ours; ns=$(workload); stop_tracer ;;
            combined) start_ours --combined; ns=$(workload); stop_tracer ;;
            bt-count) start_bpftrace 'tracepoint:kmem:kmalloc { @ = count(); }'
                ns=$(workload); stop_tracer ;;
            bt-kstack) start_bpftrace 'tracepoint:kmem:kmalloc,tracepoint:kmem:kmem_cache_alloc { @[kstack] = count(); }'
                ns=$(workload); stop_tracer ;;
        esac
        results[$c]+="$ns "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${results[none]}" | median)
echo "workload: $opens opens+reads+closes of a small file, $rounds interleaved rounds, median"
for c in "${configs[@]}"; do
    m=$(echo "${results[$c]}" | median)
    awk -v c="$c" -v m="$m" -v b="$base" -v n="$opens" \
        'BEGIN { printf "%-10s %8.2f us/open  slowdown x%.2f\n", c, m / n / 1000, m / b }'
done
