#!/usr/bin/env bash
# What the CONTAINER column costs: execsnoop without it, with it (--print-container), and with
# --json (which always carries the container fields), all three tracing the same exec storm at
# the same time, each writing to a file. CPU is each process's on-CPU time in ns
# (/proc/PID/task/*/schedstat: finer than the 10 ms ticks of /proc/PID/stat), divided by the
# execs it printed. The storm runs inside a Docker-named cgroup (v2, under a parent this script
# makes and removes), so every event is attributed to a container.
#
# With BASE=PATH, a fourth tracer runs too: an execsnoop built before attribution existed
# (e.g. `git checkout e6b24de -- src && cargo build --release --bin execsnoop`), for the cost of
# the kernel-side cgroup read as well.
#
# With IN_V1=1 the storm runs in a v1 memory cgroup named as Docker's cgroupfs driver names it
# (memory/.../docker/<id>), the hybrid-host case, where the BPF side reads the v1 cgroup too.
#
# usage: sudo [BASE=PATH] [IN_V1=1] bench/exec-storm-container.sh [EXECS]      (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
execs=${1:-20000}
ours=${OURS:-target/release/execsnoop}
[ -x "$ours" ] || cargo build --release --quiet
id=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
if [ "${IN_V1:-0}" = 1 ]; then
    mem=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/self/mounts)
    [ -n "$mem" ] || { echo "needs the cgroup v1 memory hierarchy mounted" >&2; exit 1; }
    parent=$mem/bench-storm-$$
    scope=$parent/docker/$id
    where="a v1 memory/.../docker/<id> cgroup"
else
    v2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
    [ -n "$v2" ] || { echo "needs cgroup v2 mounted" >&2; exit 1; }
    parent=$v2/bench-storm-$$
    scope=$parent/docker-$id.scope
    where="a v2 docker-<id>.scope cgroup"
fi
tmp=$(mktemp -d)
mkdir -p "$scope"
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rmdir "$scope" "$(dirname "$scope")" "$parent" 2>/dev/null; rm -rf "$tmp"; sysctl -q -w kernel.bpf_stats_enabled="${stats_was:-0}" 2>/dev/null || true' EXIT

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'; }

# Kernel side: the run time of the BPF programs a process holds open (counted while
# kernel.bpf_stats_enabled=1; each program's fdinfo shows it).
bpf_ns() {
    cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '$1 == "run_time_ns:" {s += $2} END {print s + 0}'
}
stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
sysctl -q -w kernel.bpf_stats_enabled=1 2>/dev/null || true

"$ours" >"$tmp/plain.out" 2>"$tmp/plain.err" &
plain=$!
"$ours" --print-container >"$tmp/column.out" 2>"$tmp/column.err" &
column=$!
"$ours" --json >"$tmp/json.out" 2>"$tmp/json.err" &
json=$!
base=
if [ -n "${BASE:-}" ]; then
    "$BASE" >"$tmp/base.out" 2>"$tmp/base.err" &
    base=$!
fi
sleep 2   # all attached
p0=$(cpu_ns $plain); c0=$(cpu_ns $column); j0=$(cpu_ns $json)
[ -z "$base" ] || b0=$(cpu_ns $base)
kp0=$(bpf_ns $plain)
[ -z "$base" ] || kb0=$(bpf_ns $base)
start=$(date +%s%N)
sh -c 'echo $$ > "$1/cgroup.procs" && seq "$2" | xargs -n 1 -P 2 /bin/true bench-storm-marker' sh "$scope" "$execs"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
sleep 1   # let them drain
p=$(( $(cpu_ns $plain) - p0 )); c=$(( $(cpu_ns $column) - c0 )); j=$(( $(cpu_ns $json) - j0 ))
b=0
[ -z "$base" ] || b=$(( $(cpu_ns $base) - b0 ))
kp=$(( $(bpf_ns $plain) - kp0 )); kb=0
[ -z "$base" ] || kb=$(( $(bpf_ns $base) - kb0 ))
kill -INT $plain $column $json $base
wait $plain $column $json $base 2>/dev/null || true
bn=0
[ -z "$base" ] || bn=$(grep -c bench-storm-marker "$tmp/base.out" || true)

pn=$(grep -c bench-storm-marker "$tmp/plain.out" || true)
cn=$(grep -c "${id:0:12} .*bench-storm-marker" "$tmp/column.out" || true)
jn=$(grep -c "\"container.id\":\"$id\".*\"coretrace" "$tmp/json.out" || true)
awk -v where="$where" -v e="$execs" -v ms="$ms" -v pn="$pn" -v cn="$cn" -v jn="$jn" -v p="$p" -v c="$c" -v j="$j" \
    -v bn="$bn" -v b="$b" -v kp="$kp" -v kb="$kb" '
BEGIN {
    pu = p / 1000 / (pn ? pn : 1); cu = c / 1000 / (cn ? cn : 1); ju = j / 1000 / (jn ? jn : 1);
    printf "storm: %d execs in %d ms, in %s\n", e, ms, where;
    printf "plain table:        %6d events, CPU %5.0f ms, %.2f us/event\n", pn, p / 1e6, pu;
    printf "--print-container:  %6d events, CPU %5.0f ms, %.2f us/event (%.2f x plain)\n", cn, c / 1e6, cu, cu / pu;
    printf "--json:             %6d events, CPU %5.0f ms, %.2f us/event\n", jn, j / 1e6, ju;
    if (bn) printf "BASE (before):      %6d events, CPU %5.0f ms, %.2f us/event\n", bn, b / 1e6, b / 1000 / bn;
    if (kp) printf "kernel side (BPF programs), plain: %.2f us/event\n", kp / 1000 / pn;
    if (kb) printf "kernel side (BPF programs), BASE:  %.2f us/event\n", kb / 1000 / bn;
    if (kp && kb) printf "user + kernel per event: %.2f us with attribution, %.2f us before (%.2f x)\n", (p + kp) / 1000 / pn, (b + kb) / 1000 / bn, ((p + kp) / pn) / ((b + kb) / bn);
}'
grep -h "lost" "$tmp"/*.err || true
