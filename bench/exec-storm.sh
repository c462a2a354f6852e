#!/usr/bin/env bash
# execsnoop's CPU cost per traced exec, against libbpf-tools' execsnoop, in the same run:
# both trace the same exec storm at the same time, writing to files; we read each one's CPU
# time (utime + stime from /proc/PID/stat) and divide by the execs it printed.
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
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

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
storm_start=$(date +%s%N)
seq "$execs" | xargs -n 1 -P 2 /bin/true bench-storm-marker
storm_ms=$(( ($(date +%s%N) - storm_start) / 1000000 ))
sleep 1   # let both drain
ours_cpu=$(( $(cpu_ticks $ours_pid) - ours_cpu0 ))
theirs_cpu=$(( $(cpu_ticks $theirs_pid) - theirs_cpu0 ))
kill -INT $ours_pid $theirs_pid
wait $ours_pid $theirs_pid 2>/dev/null || true

ours_n=$(grep -c bench-storm-marker "$tmp/ours.out" || true)
theirs_n=$(grep -c bench-storm-marker "$tmp/theirs.out" || true)
hz=$(getconf CLK_TCK)
awk -v e="$execs" -v ms="$storm_ms" -v on="$ours_n" -v tn="$theirs_n" -v oc="$ours_cpu" -v tc="$theirs_cpu" -v hz="$hz" '
BEGIN {
    ous = oc / hz * 1e6 / (on ? on : 1); tus = tc / hz * 1e6 / (tn ? tn : 1);
    printf "storm: %d execs in %d ms (%.0f execs/s)\n", e, ms, e / (ms / 1000);
    printf "ours:         %6d events printed, CPU %4d ms, %.2f us/event\n", on, oc / hz * 1000, ous;
    printf "libbpf-tools: %6d events printed, CPU %4d ms, %.2f us/event\n", tn, tc / hz * 1000, tus;
    if (tus > 0) printf "ratio ours/libbpf-tools CPU per event: %.2f\n", ous / tus;
}'
grep -h "lost" "$tmp/ours.err" || true
