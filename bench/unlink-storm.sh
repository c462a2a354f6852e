#!/usr/bin/env bash
# unlinksnoop under an unlink storm, beside bpftrace doing the same in the same run: a small C
# program (bench/unlink-storm.c) creates and removes a file in a tmpfs as fast as it can, with
# unlinkat(AT_FDCWD, relative name) as `rm` does; both tools trace it at the same time, writing
# to files. For each tool: events printed, events it says it lost, its own CPU time (utime +
# stime from /proc/PID/stat) and its BPF programs' run time in the kernel (bpf_stats), per
# event. bpftrace prints the raw syscall argument; unlinksnoop also resolves the full path,
# pairs entry and return (result, latency) and counts drops.
#
# usage: sudo bench/unlink-storm.sh [REMOVALS] [STORMS] [RATE]
#        REMOVALS per storm process (200000), STORMS in parallel (one per CPU), RATE per storm
#        in removals/s (0: as fast as it can). Needs bpftrace: apt-get install bpftrace.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
storms=${2:-$(nproc)}
rate=${3:-0}
ours=${OURS:-target/release/unlinksnoop}
bpftrace=${BPFTRACE:-$(command -v bpftrace || true)}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
[ -n "$bpftrace" ] || { echo "need bpftrace: apt-get install bpftrace" >&2; exit 1; }
tmp=$(mktemp -d)
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    umount "$tmp/fs" 2>/dev/null || true
    sysctl -qw kernel.bpf_stats_enabled="$stats_before"
    rm -rf "$tmp"
}
trap cleanup EXIT
cc -O2 -o "$tmp/storm" bench/unlink-storm.c
mkdir "$tmp/fs"
mount -t tmpfs none "$tmp/fs"
sysctl -qw kernel.bpf_stats_enabled=1
marker=storm-$RANDOM$RANDOM

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Total run time (ns) of the BPF programs process $1 holds open (their ids are in its fdinfo).
bpf_ns() {
    local total=0 id
    for id in $(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u); do
        total=$(( total + $(bpftool prog show id "$id" -j | jq '.run_time_ns // 0') ))
    done
    echo $total
}

# STORMS storm processes at once; prints the removals they made and the wall time.
storm() {
    local start end i
    start=$(date +%s%N)
    for i in $(seq "$storms"); do
        (cd "$tmp/fs" && "$tmp/storm" "$count" "$rate" "$marker-$i" >/dev/null) &
    done
    wait
    end=$(date +%s%N)
    echo $(( count * storms )) "$(awk -v ns=$(( end - start )) 'BEGIN { printf "%.3f", ns / 1e9 }')"
}

read -r done secs < <(storm)
echo "without tracing: $done removals in $secs s ($(awk -v n="$done" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') removals/s), $storms storm processes"

start_ours() { "$ours" -v >"$tmp/ours.out" 2>"$tmp/ours.err" & ours_pid=$!; }
start_bpftrace() {
    "$bpftrace" -e 'tracepoint:syscalls:sys_enter_unlinkat { printf("%d %s %s\n", pid, comm, str(args->pathname)); }' \
        >"$tmp/bpftrace.out" 2>"$tmp/bpftrace.err" &
    bt_pid=$!
}
attached() {
    for _ in $(seq 300); do
        { [ -z "$ours_pid" ] || grep -q attached "$tmp/ours.err"; } &&
            { [ -z "$bt_pid" ] || grep -q Attaching "$tmp/bpftrace.out"; } && break
        sleep 0.1
    done
    sleep 1
}
printed_ours() { grep -c "/$marker-[0-9]*\$" "$tmp/ours.out" || true; }
printed_bpftrace() { grep -c " $marker-[0-9]*\$" "$tmp/bpftrace.out" || true; }
lost_ours() { grep -o 'WARNING: [0-9]* events lost' "$tmp/ours.err" | tail -1 | grep -o '[0-9]*' || echo 0; }
lost_bpftrace() { { grep -ho 'Lost [0-9]* events' "$tmp/bpftrace.out" "$tmp/bpftrace.err" || true; } | awk '{ n += $2 } END { print n + 0 }'; }

# Phase 1: both tools at once: CPU per event of each, same storm.
ours_pid=; bt_pid=
start_ours; start_bpftrace; attached
oc0=$(cpu_ticks $ours_pid); bc0=$(cpu_ticks $bt_pid)
ob0=$(bpf_ns $ours_pid); bb0=$(bpf_ns $bt_pid)
read -r done secs < <(storm)
sleep 1   # let both drain
oc=$(( $(cpu_ticks $ours_pid) - oc0 )); bc=$(( $(cpu_ticks $bt_pid) - bc0 ))
ob=$(( $(bpf_ns $ours_pid) - ob0 )); bb=$(( $(bpf_ns $bt_pid) - bb0 ))
kill -INT $ours_pid $bt_pid
wait $ours_pid $bt_pid 2>/dev/null || true
ours_n=$(printed_ours); bt_n=$(printed_bpftrace)
ours_lost=$(lost_ours); bt_lost=$(lost_bpftrace)
hz=$(getconf CLK_TCK)
awk -v n="$done" -v s="$secs" -v on="$ours_n" -v bn="$bt_n" -v ol="${ours_lost:-0}" -v bl="${bt_lost:-0}" \
    -v oc="$oc" -v bc="$bc" -v ob="$ob" -v bb="$bb" -v hz="$hz" '
function per(x, k) { return k ? x / k : 0 }
BEGIN {
    printf "both tracing: %d removals in %.2f s (%.0f removals/s)\n", n, s, n / s;
    ou = per(oc / hz * 1e6, on); bu = per(bc / hz * 1e6, bn);
    ok = per(ob / 1e3, on);      bk = per(bb / 1e3, bn);
    printf "  %-12s %8s %8s %12s %12s %12s\n", "", "printed", "lost", "user us/ev", "bpf us/ev", "total us/ev";
    printf "  %-12s %8d %8d %12.2f %12.2f %12.2f\n", "unlinksnoop", on, ol, ou, ok, ou + ok;
    printf "  %-12s %8d %8d %12.2f %12.2f %12.2f\n", "bpftrace", bn, bl, bu, bk, bu + bk;
    if (bu + bk > 0) printf "  ratio unlinksnoop/bpftrace, CPU per event: user %.2f, bpf %.2f, total %.2f\n", per(ou, bu), per(ok, bk), per(ou + ok, bu + bk);
}'

# Phase 2: each alone: the removal rate it lets through, and whether it kept every event.
for tool in unlinksnoop bpftrace; do
    ours_pid=; bt_pid=
    if [ $tool = unlinksnoop ]; then start_ours; else start_bpftrace; fi
    attached
    read -r done secs < <(storm)
    sleep 1
    kill -INT ${ours_pid:-} ${bt_pid:-}
    wait 2>/dev/null || true
    if [ $tool = unlinksnoop ]; then n=$(printed_ours); l=$(lost_ours); else n=$(printed_bpftrace); l=$(lost_bpftrace); fi
    awk -v t=$tool -v n="$done" -v s="$secs" -v p="$n" -v l="${l:-0}" 'BEGIN {
        printf "%s alone: %d removals in %.2f s (%.0f removals/s), printed %d, lost %d: %s\n",
            t, n, s, n / s, p, l, (p == n && l == 0) ? "zero loss" : "LOSS" }'
done
