#!/usr/bin/env bash
# uprobe-lat --per-pid under a churn of short-lived processes: its memory (RSS) over time.
# Each process (tests/programs/uprobe_target.c, "loop 20") calls the traced function 20 times
# and exits; two shells start them back to back for the whole run.
#   1. per-pid cost: --max-pids 1000000 (every process kept apart) for PHASE1 seconds:
#      (RSS at the end - RSS at the start) / processes seen.
#   2. churn: the default --max-pids for DURATION seconds, RSS every SAMPLE seconds: with the
#      cap, processes beyond it go to the "other pids" row and RSS must stay flat.
#
# usage: sudo bench/uprobe-lat-perpid-rss.sh [DURATION] [PHASE1] [SAMPLE]   (default 600, 60, 30)
#        OURS=path/to/uprobe-lat PHASE1_ARGS="" ... [PHASE1] measures another build in phase 1
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-600}
phase1=${2:-60}
sample=${3:-30}
ours=${OURS:-target/release/uprobe-lat}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
cc -O1 -g -fno-inline -pthread -o "$tmp/uprobe_target" tests/programs/uprobe_target.c
func="$tmp/uprobe_target:noop_fn"

rss_kb() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }
start() {
    rm -f "$tmp/err"
    "$ours" -v --no-calibrate --per-pid "$@" "$func" >"$tmp/out" 2>"$tmp/err" &
    tracer=$!
    until grep -q ": attached" "$tmp/err" 2>/dev/null; do
        kill -0 $tracer 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
        sleep 0.05
    done
}
# Two churners; each counts the processes it started in a file of its own.
churn() {
    local i n=0
    for i in 1 2; do
        (while :; do echo go | "$tmp/uprobe_target" loop 20 >/dev/null; n=$((n + 1)); echo $n >"$tmp/n$i.new"; mv "$tmp/n$i.new" "$tmp/n$i"; done) &
    done
}
stop_churn() { kill $(jobs -p | grep -v "^$tracer$") 2>/dev/null || true; sleep 0.2; }
started() {
    local a b
    a=$(cat "$tmp/n1" 2>/dev/null || true)
    b=$(cat "$tmp/n2" 2>/dev/null || true)
    echo $((${a:-0} + ${b:-0}))
}
finish() { kill -INT $tracer; wait $tracer || true; }
# Calls in the report against the calls of the processes that ran to the end (those stopped
# mid-run add up to 2 x 20 more).
shown_calls() {
    echo "  calls shown: $(awk '/^count / {s += $2} END {print s + 0}' "$tmp/out"), processes that ran to the end x 20: $(($(started) * 20))"
}

echo "phase 1: per-pid cost, every process kept apart, ${phase1} s"
# PHASE1_ARGS="" measures a build without --max-pids (before the cap existed).
# shellcheck disable=SC2086
start ${PHASE1_ARGS---max-pids 1000000}
base=$(rss_kb $tracer)
rm -f "$tmp"/n?
churn
sleep "$phase1"
end=$(rss_kb $tracer)
stop_churn
seen=$(started)
finish
rows=$(grep -c "  pid " "$tmp/out" || true)
# A pid the kernel reuses within the run (pid_max is often 32768) shares its row.
echo "  $seen processes, $rows rows; RSS $base KB -> $end KB: $(( (end - base) * 1024 / (rows > 0 ? rows : 1) )) bytes per row"
shown_calls
grep "lost\|not timed\|not counted" "$tmp/err" | sed 's/^/  /' || true

echo "phase 2: churn with the default --max-pids, ${duration} s, RSS every ${sample} s"
start
rm -f "$tmp"/n?
churn
t=0
max=0
printf '  %6s %10s %8s\n' "t (s)" "processes" "RSS (KB)"
printf '  %6d %10d %8d\n' 0 0 "$(rss_kb $tracer)"
while [ $t -lt "$duration" ]; do
    sleep "$sample"
    t=$((t + sample))
    r=$(rss_kb $tracer)
    [ "$r" -gt $max ] && max=$r
    printf '  %6d %10d %8d\n' $t "$(started)" "$r"
done
stop_churn
finish
shown_calls
echo "  max RSS $max KB; rows apart: $(grep -c "  pid " "$tmp/out" || true), 'other pids' rows: $(grep -c "other pids" "$tmp/out" || true)"
grep "beyond --max-pids\|lost\|not timed\|not counted" "$tmp/err" | sed 's/^/  /' || true
