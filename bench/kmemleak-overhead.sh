#!/usr/bin/env bash
# kmemleak-lite's cost to an allocation-heavy workload (N small-file opens/reads/closes), in
# one run: no tracing, kmemleak-lite (default, --sample-rate 10, --combined, and
# --stacks-per-second 0: a stack taken for every allocation), bpftrace counting kmem:kmalloc
# (the cheapest thing a tracer can do there), and bpftrace counting kmalloc and
# kmem_cache_alloc by kernel stack (bt-kstack: a stack taken for every allocation, and nothing
# else). Rounds are interleaved (each configuration once per round) and
# the median per configuration is reported, as us per open/close, as a slowdown against no
# tracing, and as that slowdown divided by bt-kstack's (the issue 15 goal: default <= 0.8).
# While it runs, kernel.bpf_stats_enabled is on, and the BPF run time per program run of each
# tracer (the programs its own file descriptors hold) is shown: where the time goes.
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

# BPF run time of each program the tracer holds (the prog_id lines of its file descriptors):
# "name=run_time_ns/run_cnt" words, added to runtime[$c].
bpf_runtime() {
    local id
    for id in $(cat /proc/"$tracer"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ {print $2}' | sort -u); do
        bpftool prog show id "$id" --json |
            jq -r 'select(.run_cnt // 0 > 0) | "\(.name)=\(.run_time_ns)/\(.run_cnt)"'
    done
}
declare -A runtime
stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
sysctl -qw kernel.bpf_stats_enabled=1 2>/dev/null || true
trap 'sysctl -qw kernel.bpf_stats_enabled=$stats_was 2>/dev/null; kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
measure() { ns=$(workload); runtime[$c]+="$(bpf_runtime) "; stop_tracer; }

configs=(none default sample10 combined all-stacks)
[ -n "$have_bpftrace" ] && configs+=(bt-count bt-kstack)
declare -A results
for r in $(seq "$rounds"); do
    for c in "${configs[@]}"; do
        case $c in
            none) ns=$(workload) ;;
            default) start_ours; measure ;;
            sample10) start_ours --sample-rate 10; measure ;;
            combined) start_ours --combined; measure ;;
            all-stacks) start_ours --stacks-per-second 0; measure ;;
            bt-count) start_bpftrace 'tracepoint:kmem:kmalloc { @ = count(); }'; measure ;;
            bt-kstack) start_bpftrace 'tracepoint:kmem:kmalloc,tracepoint:kmem:kmem_cache_alloc { @[kstack] = count(); }'
                measure ;;
        esac
        results[$c]+="$ns "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${results[none]}" | median)
bt=""
[ -n "$have_bpftrace" ] && bt=$(echo "${results[bt-kstack]}" | median)
echo "workload: $opens opens+reads+closes of a small file, $rounds interleaved rounds, median"
for c in "${configs[@]}"; do
    m=$(echo "${results[$c]}" | median)
    awk -v c="$c" -v m="$m" -v b="$base" -v n="$opens" -v bt="$bt" \
        'BEGIN { printf "%-10s %8.2f us/open  slowdown x%.2f", c, m / n / 1000, m / b
                 if (bt != "") printf "  vs bt-kstack x%.2f", (m / b) / (bt / b)
                 printf "\n" }'
done
echo "BPF run time per program run (kernel.bpf_stats_enabled), all rounds:"
for c in "${configs[@]}"; do
    [ -n "${runtime[$c]:-}" ] || continue
    echo "${runtime[$c]}" | tr ' ' '\n' | awk -F'[=/]' -v c="$c" '
        NF == 3 { t[$1] += $2; n[$1] += $3 }
        END { line = sprintf("%-10s", c); for (p in t) line = line sprintf(" %s %d ns", p, t[p] / n[p]); print line }'
done
