#!/usr/bin/env bash
# execsnoop's CPU cost per traced exec, against libbpf-tools' execsnoop, in the same run:
# both trace the same exec storm at the same time, writing to files; we read each one's CPU
# time (utime + stime from /proc/PID/stat) and its BPF programs' run time (run_time_ns, with
# kernel.bpf_stats_enabled=1, of the programs whose fds the process holds, from bpftool), and
# divide each by the execs it printed. The total is what a traced exec costs the machine.
# Also: time from start to attached (first marker exec seen), for both.
#
# usage: sudo bench/exec-storm.sh [EXECS]      (default 20000; needs `apt-get install libbpf-tools`)
set -euo pipefail
cd "$(dirname "$0")/.."
execs=${1:-20000}
ours=${OURS:-target/release/execsnoop}
theirs=${THEIRS:-/usr/sbin/execsnoop}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
[ -x "$theirs" ] || { echo "need libbpf-tools' execsnoop at $theirs: apt-get install libbpf-tools" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"; sysctl -q kernel.bpf_stats_enabled="${stats_before:-0}"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Sum of run_time_ns of the BPF programs process $1 holds (the prog_id of its fds, from
# /proc/PID/fdinfo: program and link fds name it; Debian's bpftool lists no pids).
bpf_ns() {
    local ids
    ids=$(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u | tr '\n' ' ')
    bpftool -j prog show | python3 -c '
import json, sys
ids = {int(i) for i in sys.argv[1].split()}
print(sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin) if p["id"] in ids))' "$ids"
}
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q kernel.bpf_stats_enabled=1

# Time from launch until a marker exec shows up in the tool's output (ms).
time_to_attach() {
    local tool=$1 out=$tmp/attach.out marker=attach-$RANDOM$RANDOM
    local start end
    start=$(date +%s%N)
    "$tool" >"$out" 2>/dev/null &
    local pid=$!
    until grep -q "$marker" "$out" 2>/dev/null; do /bin/true "$marker"; sleep 0.005; done
    end=$(date +%s%N)
    kill -INT $pid; wait $pid 2>/dev/null || true
    echo $(( (end - start) / 1000000 ))
}

echo "attach: ours $(time_to_attach "$ours") ms, libbpf-tools $(time_to_attach "$theirs") ms (launch to first event seen)"

"$ours" >"$tmp/ours.out" 2>"$tmp/ours.err" &
ours_pid=$!
"$theirs" >"$tmp/theirs.out" 2>"$tmp/theirs.err" &
theirs_pid=$!
sleep 2   # both attached
ours_cpu0=$(cpu_ticks $ours_pid)
theirs_cpu0=$(cpu_ticks $theirs_pid)
ours_bpf0=$(bpf_ns $ours_pid)
theirs_bpf0=$(bpf_ns $theirs_pid)
storm_start=$(date +%s%N)
seq "$execs" | xargs -n 1 -P 2 /bin/true bench-storm-marker
storm_ms=$(( ($(date +%s%N) - storm_start) / 1000000 ))
sleep 1   # let both drain
ours_cpu=$(( $(cpu_ticks $ours_pid) - ours_cpu0 ))
theirs_cpu=$(( $(cpu_ticks $theirs_pid) - theirs_cpu0 ))
ours_bpf=$(( $(bpf_ns $ours_pid) - ours_bpf0 ))
theirs_bpf=$(( $(bpf_ns $theirs_pid) - theirs_bpf0 ))
kill -INT $ours_pid $theirs_pid
wait $ours_pid $theirs_pid 2>/dev/null || true

ours_n=$(grep -c bench-storm-marker "$tmp/ours.out" || true)
theirs_n=$(grep -c bench-storm-marker "$tmp/theirs.out" || true)
hz=$(getconf CLK_TCK)
awk -v e="$execs" -v ms="$storm_ms" -v on="$ours_n" -v tn="$theirs_n" -v oc="$ours_cpu" -v tc="$theirs_cpu" \
    -v ob="$ours_bpf" -v tb="$theirs_bpf" -v hz="$hz" '
BEGIN {
    on1 = on ? on : 1; tn1 = tn ? tn : 1;
    ous = oc / hz * 1e6 / on1; tus = tc / hz * 1e6 / tn1;
    obs = ob / 1e3 / on1; tbs = tb / 1e3 / tn1;
    printf "storm: %d execs in %d ms (%.0f execs/s)\n", e, ms, e / (ms / 1000);
    printf "ours:         %6d events printed, user space %.2f us/event + BPF %.2f us/event = %.2f us/event\n", on, ous, obs, ous + obs;
    printf "libbpf-tools: %6d events printed, user space %.2f us/event + BPF %.2f us/event = %.2f us/event\n", tn, tus, tbs, tus + tbs;
    if (tus > 0) printf "ratio ours/libbpf-tools per event: user space %.2f, BPF %.2f, total %.2f\n", ous / tus, (tbs > 0 ? obs / tbs : 0), (ous + obs) / (tus + tbs);
}'
grep -h "lost" "$tmp/ours.err" || true
