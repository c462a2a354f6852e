#!/usr/bin/env python3
"""Launch-to-header time on a terminal: how long after `execsnoop` is typed does the user see
that it is tracing? Each tool runs on a pty (as in an interactive shell, so stdio is
line-buffered the way a user sees it); the clock stops at the first line that says the probes
are live (the header, or the "Tracing ..." line). Ours and libbpf-tools' run alternately, N
rounds each, and the medians are compared in the same run.

With BEFORE=DIR (the tool links of an earlier build, e.g. a worktree's target/release), each
tool of that build runs in the same rounds too, and the ratio of this build's median to its is
printed: a refactor's start-up before and after, in one run.

usage: sudo [OURS=DIR] [BEFORE=DIR] bench/startup.py [ROUNDS]
       (default 21 rounds, OURS target/release; run from the repository root, after
        `cargo build --release`)
"""

import os
import pty
import select
import signal
import statistics
import subprocess
import sys
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 21
OURS = os.environ.get("OURS", "target/release")
BEFORE = os.environ.get("BEFORE")
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"

# (label, argv, what the "probes are live" line starts with)
PAIRS = [
    ("execsnoop", [f"{OURS}/execsnoop"], "PCOMM", ["/usr/sbin/execsnoop"], "PCOMM"),
    ("exitsnoop", [f"{OURS}/exitsnoop"], "PCOMM", ["/usr/sbin/exitsnoop"], "PCOMM"),
]
ALONE = [
    ("unlinksnoop", [f"{OURS}/unlinksnoop"], "PID"),
    ("kmemleak-lite", [f"{OURS}/kmemleak-lite"], "Tracing"),
    ("uprobe-lat", [f"{OURS}/uprobe-lat", f"{LIBC}:nanosleep"], "Tracing"),
]


def time_to_line(argv, prefix, timeout=10.0):
    """Seconds from spawn until a line starting with `prefix` (after spaces) appears."""
    master, slave = pty.openpty()
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    buf = b""
    found = None
    deadline = start + timeout
    while found is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        for line in buf.split(b"\n"):
            if line.lstrip().startswith(prefix.encode()):
                found = time.monotonic() - start
                break
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # Drain so the child never blocks on a full pty.
    try:
        while select.select([master], [], [], 0)[0] and os.read(master, 65536):
            pass
    except OSError:
        pass
    os.close(master)
    if found is None:
        sys.exit(f"{argv[0]}: no line starting with {prefix!r} within {timeout} s: {buf[:300]!r}")
    return found


def ms(values):
    return statistics.median(values) * 1000


def before_argv(argv):
    """The same command run from the BEFORE build (its tool link in place of ours)."""
    return [os.path.join(BEFORE, os.path.basename(argv[0]))] + argv[1:]


def timed_rounds(commands):
    """Medians, in ms, of each (argv, prefix), the commands taking turns in every round."""
    runs = [[] for _ in commands]
    for _ in range(ROUNDS):
        for i, (argv, prefix) in enumerate(commands):
            runs[i].append(time_to_line(argv, prefix))
    return [ms(r) for r in runs]


def main():
    # The tools are links to the multicall binary: make them if a build has not yet.
    subprocess.run(["tools/tool-links.sh", OURS], check=True)
    if os.geteuid() != 0:
        sys.exit("run as root (the tools load BPF)")
    print(f"launch to header on a pty, median of {ROUNDS} runs, kernel {os.uname().release}")
    rows = [(label, ours, op, theirs, tp) for label, ours, op, theirs, tp in PAIRS]
    rows += [(label, ours, prefix, None, None) for label, ours, prefix in ALONE]
    for label, ours, ours_prefix, theirs, theirs_prefix in rows:
        commands = [(ours, ours_prefix)]
        if theirs:
            commands.append((theirs, theirs_prefix))
        if BEFORE:
            commands.append((before_argv(ours), ours_prefix))
        medians = timed_rounds(commands)
        line = f"{label:14} ours {medians[0]:6.1f} ms"
        if theirs:
            line += f"   libbpf-tools {medians[1]:6.1f} ms   ratio ours/libbpf-tools {medians[0] / medians[1]:.2f}"
        if BEFORE:
            line += f"   before {medians[-1]:6.1f} ms   ratio ours/before {medians[0] / medians[-1]:.2f}"
        print(line)


if __name__ == "__main__":
    main()
