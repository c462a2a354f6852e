#!/usr/bin/env bash
# uprobe-lat's cost to the traced program, beside libbpf-tools' funclatency, in one run: a C
# program calls an empty function (noop_fn in tests/programs/uprobe_target.c) N times in a
# tight loop and reports its own elapsed time, untraced, under uprobe-lat (ring-buffer mode,
# the default), under uprobe-lat --kernel-hist, and under funclatency. Rounds are interleaved
# (each configuration once per round) and the median per configuration is reported as ns per
# call, as a slowdown against no tracing, and as a ratio to funclatency's slowdown.
# The trap of a uprobe costs microseconds and varies from run to run, which hides the BPF
# programs' own cost; so the kernel's BPF run-time statistics (kernel.bpf_stats_enabled, read
# with bpftool) also give each tracer's BPF time per call, entry and return programs together.
#
# usage: sudo bench/uprobe-lat.sh [CALLS] [ROUNDS]    (default 50000 calls, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-50000}
rounds=${2:-5}
ours=${OURS:-target/release/uprobe-lat}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
funclatency=$(command -v funclatency || echo /usr/sbin/funclatency)
[ -x "$funclatency" ] || { echo "funclatency not found: apt-get install libbpf-tools" >&2; exit 1; }
tmp=$(mktemp -d)
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"; sysctl -qw kernel.bpf_stats_enabled=$stats_before' EXIT
sysctl -qw kernel.bpf_stats_enabled=1
cc -O1 -g -fno-inline -pthread -o "$tmp/uprobe_target" tests/programs/uprobe_target.c
func="$tmp/uprobe_target:noop_fn"

# The loop, started once the tracer is in place; prints ns for all calls.
workload() { echo go | "$tmp/uprobe_target" loop "$calls" | awk '/^elapsed_ns/ {print $2}'; }

start_ours() {
    rm -f "$tmp/ours.out" "$tmp/ours.err" # no stale "attached" from the previous run
    "$ours" -v --no-calibrate "$@" "$func" >"$tmp/ours.out" 2>"$tmp/ours.err" &
    tracer=$!
    until grep -q ": attached" "$tmp/ours.err" 2>/dev/null; do
        kill -0 $tracer 2>/dev/null || { cat "$tmp/ours.err" >&2; exit 1; }
        sleep 0.05
    done
}
start_funclatency() {
    rm -f "$tmp/fl.out"
    stdbuf -oL "$funclatency" "$func" >"$tmp/fl.out" 2>&1 &
    tracer=$!
    until grep -q "Tracing" "$tmp/fl.out" 2>/dev/null; do
        kill -0 $tracer 2>/dev/null || { cat "$tmp/fl.out" >&2; exit 1; }
        sleep 0.05
    done
}
# ns of BPF run time per traced call: every program the tracer process holds open (the
# prog_id lines of its file descriptors).
bpf_ns() {
    local total=0 id t
    for id in $(cat /proc/"$tracer"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ {print $2}' | sort -u); do
        t=$(bpftool prog show id "$id" --json | jq '.run_time_ns // 0')
        total=$((total + t))
    done
    echo $((total / calls))
}
stop_tracer() {
    kill -INT $tracer
    for _ in $(seq 100); do kill -0 $tracer 2>/dev/null || break; sleep 0.1; done
    if kill -0 $tracer 2>/dev/null; then
        echo "warning: tracer $tracer ignored SIGINT for 10 s; sending SIGTERM" >&2
        kill -TERM $tracer
    fi
    wait $tracer 2>/dev/null || true
}

# Every call must have been seen: the first figure of a "count N" line, or funclatency's buckets.
ours_count() { awk '/^count / {print $2; exit}' "$tmp/ours.out"; }
fl_count() { awk -F: '/->/ {split($2, a, " "); s += a[1]} END {print s + 0}' "$tmp/fl.out"; }

configs=(none ring kernel-hist funclatency)
declare -A results bpf_results
for r in $(seq "$rounds"); do
    for c in "${configs[@]}"; do
        case $c in
            none) ns=$(workload) ;;
            ring) start_ours; ns=$(workload); bpf=$(bpf_ns); stop_tracer; seen=$(ours_count) ;;
            kernel-hist) start_ours --kernel-hist; ns=$(workload); bpf=$(bpf_ns); stop_tracer; seen=$(ours_count) ;;
            funclatency) start_funclatency; ns=$(workload); bpf=$(bpf_ns); stop_tracer; seen=$(fl_count) ;;
        esac
        [ "$c" != none ] && bpf_results[$c]+="$bpf "
        if [ "$c" != none ] && [ "$seen" != "$calls" ]; then
            echo "warning: $c saw $seen of $calls calls in round $r" >&2
        fi
        results[$c]+="$ns "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${results[none]}" | median)
fl=$(echo "${results[funclatency]}" | median)
echo "workload: $calls calls of an empty function, $rounds interleaved rounds, median"
echo "(+us/call: what tracing adds to each call; cost vs funclatency: that, divided by funclatency's)"
for c in "${configs[@]}"; do
    t=$(echo "${results[$c]}" | median)
    lo=$(echo "${results[$c]}" | tr ' ' '\n' | grep . | sort -n | head -1)
    hi=$(echo "${results[$c]}" | tr ' ' '\n' | grep . | sort -n | tail -1)
    awk -v c="$c" -v t="$t" -v b="$base" -v f="$fl" -v n="$calls" -v lo="$lo" -v hi="$hi" 'BEGIN {
        printf "%-12s %8.2f us/call (%.2f..%.2f)  +%6.2f us/call  slowdown x%8.1f  cost vs funclatency x%.3f\n",
            c, t / n / 1000, lo / n / 1000, hi / n / 1000, (t - b) / n / 1000, t / b, (t - b) / (f - b)
    }'
done
echo "BPF run time per traced call (entry + return programs, kernel.bpf_stats_enabled), median:"
fl_bpf=$(echo "${bpf_results[funclatency]}" | median)
for c in ring kernel-hist funclatency; do
    b=$(echo "${bpf_results[$c]}" | median)
    awk -v c="$c" -v b="$b" -v f="$fl_bpf" 'BEGIN { printf "%-12s %7.0f ns/call  vs funclatency x%.3f\n", c, b, b / f }'
done
