#!/usr/bin/env bash
# execsnoop's two transports under the same exec storm, in the same run: one execsnoop with the
# BPF ring buffer (CORETRACE_TRANSPORT=ringbuf) and one with the perf buffer, the fallback for
# kernels without ring buffers (CORETRACE_TRANSPORT=perf), both tracing the storm at once and
# writing to files. For each: events printed and lost, its own CPU time per event
# (/proc/PID/schedstat: nanoseconds on a CPU, finer than the 10 ms ticks of /proc/PID/stat), and
# its BPF programs' run time in the kernel per event (bpf_stats). Then each alone: the exec rate
# the storm reaches while it traces, and what it printed.
#
# usage: sudo bench/exec-storm-transport.sh [EXECS]      (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
execs=${1:-20000}
ours=${OURS:-target/release/execsnoop}
[ -x "$ours" ] || cargo build --release --quiet --bin execsnoop
tmp=$(mktemp -d)
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    sysctl -qw kernel.bpf_stats_enabled="$stats_before"
    rm -rf "$tmp"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1
marker=bench-transport-$RANDOM$RANDOM

cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }
# Total run time (ns) of the BPF programs process $1 holds open (their ids are in its fdinfo).
bpf_ns() {
    local total=0 id
    for id in $(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u); do
        total=$(( total + $(bpftool prog show id "$id" -j | jq '.run_time_ns // 0') ))
    done
    echo $total
}
start() { # start TRANSPORT: execsnoop with that transport, its pid in $pid
    CORETRACE_TRANSPORT=$1 "$ours" -v >"$tmp/$1.out" 2>"$tmp/$1.err" &
    pid=$!
    for _ in $(seq 300); do grep -q attached "$tmp/$1.err" && break; sleep 0.1; done
}
storm() { # prints the wall time of EXECS execs, in seconds
    local t0=$(date +%s%N)
    seq "$execs" | xargs -n 1 -P 2 /bin/true "$marker"
    awk -v ns=$(( $(date +%s%N) - t0 )) 'BEGIN { printf "%.3f", ns / 1e9 }'
}
printed() { grep -c "$marker" "$tmp/$1.out" || true; }
lost() { grep -o '[0-9]* events lost: the [a-z]* buffer' "$tmp/$1.err" | awk '{ n += $1 } END { print n + 0 }'; }

# Phase 1: both at once, the same storm.
start ringbuf; rpid=$pid
start perf; ppid_=$pid
grep -h "transport:" "$tmp/ringbuf.err" "$tmp/perf.err"
rc0=$(cpu_ns $rpid); pc0=$(cpu_ns $ppid_); rb0=$(bpf_ns $rpid); pb0=$(bpf_ns $ppid_)
secs=$(storm)
sleep 1   # let both drain
rc=$(( $(cpu_ns $rpid) - rc0 )); pc=$(( $(cpu_ns $ppid_) - pc0 ))
rb=$(( $(bpf_ns $rpid) - rb0 )); pb=$(( $(bpf_ns $ppid_) - pb0 ))
kill -INT $rpid $ppid_
wait $rpid $ppid_ 2>/dev/null || true
awk -v n="$execs" -v s="$secs" -v rn="$(printed ringbuf)" -v pn="$(printed perf)" \
    -v rl="$(lost ringbuf)" -v pl="$(lost perf)" -v rc="$rc" -v pc="$pc" -v rb="$rb" -v pb="$pb" '
function per(x, k) { return k ? x / k : 0 }
BEGIN {
    printf "both tracing: %d execs in %.2f s (%.0f execs/s)\n", n, s, n / s;
    ru = per(rc / 1e3, rn); pu = per(pc / 1e3, pn); rk = per(rb / 1e3, rn); pk = per(pb / 1e3, pn);
    printf "  %-12s %8s %6s %9s %12s %12s %12s\n", "", "printed", "lost", "events/s", "user us/ev", "bpf us/ev", "total us/ev";
    printf "  %-12s %8d %6d %9.0f %12.2f %12.2f %12.2f\n", "ring buffer", rn, rl, rn / s, ru, rk, ru + rk;
    printf "  %-12s %8d %6d %9.0f %12.2f %12.2f %12.2f\n", "perf buffer", pn, pl, pn / s, pu, pk, pu + pk;
    if (ru + rk > 0) printf "  ratio perf/ring, CPU per event: user %.2f, bpf %.2f, total %.2f\n", per(pu, ru), per(pk, rk), per(pu + pk, ru + rk);
}'

# Phase 2: each alone: the exec rate it lets through, and whether it kept every event.
for t in ringbuf perf; do
    start $t
    secs=$(storm)
    sleep 1
    kill -INT $pid; wait $pid 2>/dev/null || true
    awk -v t=$t -v n="$execs" -v s="$secs" -v p="$(printed $t)" -v l="$(lost $t)" 'BEGIN {
        printf "%s alone: %d execs in %.2f s (%.0f execs/s), printed %d, lost %d\n", t, n, s, n / s, p, l }'
done
