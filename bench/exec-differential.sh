#!/usr/bin/env bash
# execsnoop beside libbpf-tools' execsnoop on a real workload, in the same run: how many execs
# each shows, and how many of them with every argument. The workload (default: reinstalling a
# package whose maintainer scripts run many short programs) runs while both trace; each tool's
# rows are matched by pid and compared with the other's.
#
# usage: bench/exec-differential.sh [WORKLOAD...]   (as root; default: apt-get install
#        --reinstall ca-certificates, whose postinst execs a few hundred programs)
set -euo pipefail
cd "$(dirname "$0")/.."
ours=${OURS:-target/release/execsnoop}
theirs=${THEIRS:-/usr/sbin/execsnoop}
[ -x "$ours" ] || { cargo build --release --quiet --bin coretrace && tools/tool-links.sh; }
[ -x "$theirs" ] || { echo "need libbpf-tools' execsnoop at $theirs: apt-get install libbpf-tools" >&2; exit 1; }
[ $# -gt 0 ] || set -- env DEBIAN_FRONTEND=noninteractive apt-get install --reinstall -y -qq ca-certificates
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$ours" --json >"$tmp/ours.json" 2>"$tmp/ours.err" &
ours_pid=$!
"$theirs" >"$tmp/theirs.txt" 2>"$tmp/theirs.err" &
theirs_pid=$!
sleep 2 # both attached
"$@" >/dev/null 2>&1
sleep 1 # both drained
kill -INT $ours_pid $theirs_pid
wait $ours_pid $theirs_pid 2>/dev/null || true

python3 - "$tmp/ours.json" "$tmp/theirs.txt" "$ours_pid" "$theirs_pid" <<'PY'
import json, sys
from collections import defaultdict
ours_path, theirs_path, *tracers = sys.argv[1:]
skip = {int(p) for p in tracers}
ours = defaultdict(list)   # pid -> [args joined with spaces]
for line in open(ours_path):
    r = json.loads(line)
    if "process.pid" in r and r["process.pid"] not in skip:
        ours[r["process.pid"]].append(" ".join(r["process.command_args"]))
theirs = defaultdict(list)
for line in open(theirs_path).read().splitlines()[1:]:
    cols = line.split(None, 4)
    if len(cols) >= 4 and cols[1].isdigit():
        theirs[int(cols[1])].append(cols[4].strip() if len(cols) == 5 else "")
pids = set(ours) | set(theirs)
n_ours = sum(len(v) for v in ours.values())
n_theirs = sum(len(v) for v in theirs.values())
# A row "has every argument" when the other tool shows no longer argument list for that exec:
# compare the rows of each pid in order.
ours_full = theirs_full = both = 0
for pid in pids:
    a, b = ours.get(pid, []), theirs.get(pid, [])
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x is not None and y is not None:
            both += 1
        if x is not None and (y is None or len(x) >= len(y)):
            ours_full += 1
        if y is not None and (x is None or len(y) >= len(x)):
            theirs_full += 1
print(f"execs shown: ours {n_ours}, libbpf-tools {n_theirs} (both saw {both})")
print(f"rows with every argument (none shorter than the other tool's row): ours {ours_full}, libbpf-tools {theirs_full}")
empty_o = sum(1 for v in ours.values() for s in v if " " not in s)
empty_t = sum(1 for v in theirs.values() for s in v if s == "")
if __import__("os").environ.get("SHOW"):
    for pid in pids:
        a, b = ours.get(pid, []), theirs.get(pid, [])
        for x, y in zip(a, b):
            if x != y: print("  ours:", x[:150], "\n  them:", y[:150])
print(f"rows with no argument at all: ours {empty_o} (path only), libbpf-tools {empty_t} (empty)")
PY
grep -h "lost\|unreadable" "$tmp/ours.err" || true
