#!/usr/bin/env bash
# A long run on a busy node (issue 25): every tool traces while a churner makes cgroups as
# container runtimes make them, runs one short process in each (which removes a file, then
# execs a program that calls a traced function), and removes the cgroup at once. Cgroups
# alternate between Docker's cgroupfs driver on a hybrid host (v1 memory/<64 hex>) and a
# kubelet pod's container (v2 .../kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope,
# under a parent this script makes). libbpf-tools' execsnoop and exitsnoop run beside ours.
#
# For every tracer it records RSS, threads and open files after the first SAMPLE seconds (the
# start: everything loaded, buffers touched) and at the end, and the largest RSS seen; then
# checks that every exec execsnoop printed from a churned cgroup carries its container id, and
# what execsnoop's exposition says it still tracks (coretrace_cgroups_tracked).
#
# usage: sudo bench/soak.sh [DURATION] [SAMPLE]        (default 1800 s, 60 s)
#        OURS=DIR (where the tool links are; default target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-1800}
sample=${2:-60}
ours=${OURS:-target/release}
for t in execsnoop exitsnoop unlinksnoop uprobe-lat kmemleak-lite; do
    [ -x "$ours/$t" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh "$ours"; break; }
done
mem=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/self/mounts)
v2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
[ -n "$mem" ] && [ -n "$v2" ] || { echo "needs the v1 memory hierarchy and cgroup v2 mounted (a hybrid host)" >&2; exit 1; }
tmp=$(mktemp -d)
parent=$v2/soak-$$
pod=$parent/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c5b2e1a_7f3d_4c8e_9a6b_$(printf '%012x' $$).slice
mkdir -p "$pod"
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    sleep 1
    find "$parent" -depth -type d -exec rmdir {} + 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
cc -O1 -g -fno-inline -pthread -o "$tmp/uprobe_target" tests/programs/uprobe_target.c

declare -A pids
start() { # NAME COMMAND...
    local name=$1
    shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids[$name]=$!
}
start execsnoop "$ours/execsnoop" --json --metrics-file "$tmp/execsnoop.prom" --metrics-interval 5
start exitsnoop "$ours/exitsnoop" --json
start unlinksnoop "$ours/unlinksnoop" --json
start uprobe-lat "$ours/uprobe-lat" --json --per-pid --no-calibrate -i 60 "$tmp/uprobe_target:noop_fn"
start kmemleak-lite "$ours/kmemleak-lite" --json -i 60
[ -x /usr/sbin/execsnoop ] && start libbpf-execsnoop /usr/sbin/execsnoop
[ -x /usr/sbin/exitsnoop ] && start libbpf-exitsnoop /usr/sbin/exitsnoop
sleep 5
for name in "${!pids[@]}"; do
    kill -0 "${pids[$name]}" 2>/dev/null || { echo "$name did not start:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
done

# The churner: one cgroup per round, a process in it, the cgroup removed right after.
churn() {
    local n=0 id dir
    while :; do
        id=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
        if [ $((n % 2)) = 0 ]; then dir=$mem/$id; else dir=$pod/cri-containerd-$id.scope; fi
        mkdir "$dir"
        echo go | sh -c 'echo $$ >"$1/cgroup.procs" && touch "$2" && rm "$2" && exec "$3" loop 5' \
            sh "$dir" "$tmp/unlink-$id" "$tmp/uprobe_target" >/dev/null
        rmdir "$dir"
        echo "$id" >>"$tmp/ids"
        n=$((n + 1))
    done
}
churn &

figures() { # PID -> "RSS_KB THREADS FDS"
    echo "$(awk '/^VmRSS:/ {print $2}' /proc/"$1"/status) $(awk '/^Threads:/ {print $2}' /proc/"$1"/status) $(ls /proc/"$1"/fd | wc -l)"
}
sleep "$sample"
declare -A first most
for name in "${!pids[@]}"; do
    first[$name]=$(figures "${pids[$name]}")
    most[$name]=${first[$name]%% *}
done
elapsed=$sample
while [ "$elapsed" -lt "$duration" ]; do
    sleep "$sample"
    elapsed=$((elapsed + sample))
    for name in "${!pids[@]}"; do
        rss=$(figures "${pids[$name]}")
        rss=${rss%% *}
        [ "$rss" -gt "${most[$name]}" ] && most[$name]=$rss
    done
    echo "$elapsed s: $(wc -l <"$tmp/ids") cgroups" >&2
done
declare -A last
for name in "${!pids[@]}"; do last[$name]=$(figures "${pids[$name]}"); done
tracked=$(awk '/^coretrace_cgroups_tracked/ {print $2}' "$tmp/execsnoop.prom")
kill %churn 2>/dev/null || true
for name in "${!pids[@]}"; do kill -INT "${pids[$name]}" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true

cgroups=$(wc -l <"$tmp/ids")
echo "$cgroups cgroups made and removed in $duration s ($((cgroups / duration))/s), figures at ${sample} s and at the end"
echo
echo "| tracer | RSS at ${sample} s (KB) | RSS at end (KB) | largest RSS (KB) | threads | open files |"
echo "| --- | --- | --- | --- | --- | --- |"
for name in $(printf '%s\n' "${!pids[@]}" | sort); do
    read -r r0 t0 f0 <<<"${first[$name]}"
    read -r r1 t1 f1 <<<"${last[$name]}"
    echo "| $name | $r0 | $r1 | ${most[$name]} | $t0 -> $t1 | $f0 -> $f1 |"
done
echo
# Every exec of the churn (uprobe_target loop 5) from a churned cgroup names its container.
execs=$(grep -c '/uprobe_target","loop","5"' "$tmp/execsnoop.out" || true)
named=$(grep '/uprobe_target","loop","5"' "$tmp/execsnoop.out" | grep -c '"container.id":"[0-9a-f]\{64\}"' || true)
echo "execsnoop: $execs execs of the churn, $named with a container id; cgroups still tracked at the end: $tracked"
grep -h "lost" "$tmp"/*.err || echo "no tool reported a loss"
