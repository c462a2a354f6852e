#!/bin/busybox sh
# The checks the kernel matrix runs inside each guest (busybox sh, as root, /tmp on tmpfs;
# /bin/sh, echo, sleep, true and cat are the host's, as in the host tests).
#
# For each tool of the suite found in /coretrace/bin: `TOOL --check` when the tool has it, then the
# same checks the host tests make, on processes and files this script makes itself.
# Then every tool's BTF-less run (the kernel's BTF hidden, a copy given with --btf), the tools'
# integration test binaries, and last a second pass of every tool's own checks with
# CORETRACE_TRANSPORT=perf (the perf-buffer transport forced), whose check names end in "@perf".
# Each check prints exactly one line on the console, which run.sh reads:
#   PASS <tool> <check> [method=<attach method>] [transport=ringbuf|perf]
#   FAIL <tool> <check> <reason>
#   SKIP <tool> <check> <reason>     (only: no binary, or no --check option)
# Under a FAIL, the tool's own output follows, indented with "  | ", for the reader.
# `guest-checks.sh --list` prints every check this script defines ("TOOL CHECK" lines, both
# passes): run.sh fails a kernel on which any of them printed no PASS or FAIL line.
#
# Under TCG everything is slow (BPF loading, uprobes): waits are long, but each one is bounded.

# CTM_BIN, CTM_PROGS and CTM_ONLY="check_x check_y" let a developer try checks on the host.
BIN=${CTM_BIN:-/coretrace/bin}
PROGS=${CTM_PROGS:-/coretrace/progs}
WORK=/tmp/ctm
# Safety net for every tool run: it is stopped with SIGINT long before this.
TOOL_TIMEOUT=150
# How long a tool may take to load and attach (seconds).
READY_WAIT=90
mkdir -p "$WORK"

# The checks of each tool (its own checks; "btf-*" only in the first pass). A check added below
# must be named here too, or run.sh counts it as unexpected; one named here that does not run
# fails the kernel.
checks_of() {
    case $1 in
        kernel) echo "btf dmesg" ;;
        execsnoop) echo "check sigint exec exec-fail agrees" ;;
        exitsnoop) echo "check sigint exit-code exit-signal agrees btf-missing btf-file" ;;
        unlinksnoop) echo "check unlink-fentry unlink-kprobe unlink-tracepoint agrees btf-env" ;;
        uprobe-lat) echo "check calls agrees" ;;
        kmemleak-lite) echo "check user kernel agrees" ;;
    esac
}
# The suite's tools: the registry's, as the multicall binary lists them (run.sh points CTM_BIN at
# its build for --list). A tool listed there without checks above fails (see tool_pass).
TOOLS=$("$BIN/coretrace" --list-tools 2>/dev/null) || TOOLS=""
[ -n "$TOOLS" ] || TOOLS="execsnoop exitsnoop unlinksnoop uprobe-lat kmemleak-lite"

if [ "${1:-}" = --list ]; then
    for c in $(checks_of kernel); do echo "kernel $c"; done
    for t in $TOOLS; do
        for c in $(checks_of $t); do echo "$t $c"; done
        for c in $(checks_of $t); do case $c in btf-*) ;; *) echo "$t $c@perf" ;; esac; done
    done
    exit 0
fi

# "@perf" in the second pass (CORETRACE_TRANSPORT=perf), after every check name.
SUFFIX=""
pass() { echo "PASS $1 $2$SUFFIX${3:+ method=$3}${4:+ transport=$4}"; }
skip() { echo "SKIP $1 $2$SUFFIX $3"; }
fail() {
    echo "FAIL $1 $2$SUFFIX $3"
    shift 3
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "  | --- $(basename "$f")"
        tail -n 25 "$f" | cut -c 1-600 | sed 's/^/  | /'
    done
}

have() { [ -x "$BIN/$1" ]; }

# The attach method tool $1 names in its -v output (file $2), on its line "TOOL: attached ...",
# e.g. "unlinksnoop: attached with fentry/fexit to do_unlinkat" gives fentry; "-" if none.
method_of() {
    m=$(grep -E "^$1: attach" "$2" 2>/dev/null |
        grep -oE 'fentry|fexit|kretprobe|kprobe|tp_btf|raw_tp|raw_tracepoint|tracepoint|uretprobe|uprobe' | head -n1)
    echo "${m:--}"
}

# has MARK FILE: FILE has a line containing MARK. The mark goes through the environment, not
# argv: busybox runs its applets with exec, and execsnoop must not see the mark in grep's argv.
has() { MARK=$1 awk 'index($0, ENVIRON["MARK"]) { found = 1; exit } END { exit !found }' "$2"; }

# line_with MARK FILE: the first line of FILE containing MARK.
line_with() { MARK=$1 awk 'index($0, ENVIRON["MARK"]) { print; exit }' "$2"; }

# now: seconds since boot, for the CTM TIME lines that say where the guest's time went.
now() { cut -d' ' -f1 /proc/uptime; }

# start NAME TOOL ARGS...: runs a tool in the background, output in $WORK/NAME.out and .err.
start() {
    name=$1 tool=$2
    shift 2
    OUT=$WORK/$name.out ERR=$WORK/$name.err
    : >"$OUT"; : >"$ERR"
    "$BIN/$tool" "$@" >"$OUT" 2>"$ERR" &
    TOOL_PID=$!
}

# stop: SIGINT to the tool started last, as a user's Ctrl-C; sets STOP_RC (its exit status,
# "hung" if it did not end within 20 s).
stop() {
    kill -INT "$TOOL_PID" 2>/dev/null
    i=0
    while kill -0 "$TOOL_PID" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.5; i=$((i + 1)); done
    if kill -0 "$TOOL_PID" 2>/dev/null; then
        kill -KILL "$TOOL_PID" 2>/dev/null
        wait "$TOOL_PID" 2>/dev/null
        STOP_RC=hung
    else
        wait "$TOOL_PID"
        STOP_RC=$?
    fi
}

# alive: the tool started last is still running.
alive() { kill -0 "$TOOL_PID" 2>/dev/null; }

# until_seen SECS CMD...: runs CMD (a shell function) every half second until it succeeds, for
# at most SECS seconds, or until the tool dies. CMD is how the tool proves it is attached.
until_seen() {
    limit=$(($1 * 2)); shift
    i=0
    while [ $i -lt $limit ]; do
        "$@" && return 0
        alive || return 1
        sleep 0.5
        i=$((i + 1))
    done
    return 1
}

# not_ready TOOL CHECK: the tool started last never showed the warm-up events.
not_ready() {
    if alive; then
        stop
        fail "$1" "$2" "no events within ${READY_WAIT}s of starting (exit $STOP_RC after SIGINT)" "$OUT" "$ERR"
    else
        stop
        fail "$1" "$2" "exited with status $STOP_RC before showing any event" "$OUT" "$ERR"
    fi
}

# tool_check TOOL [ARGS]: `TOOL --check [ARGS]` when the tool has the option.
tool_check() {
    if ! "$BIN/$1" --help 2>&1 | grep -q -- '--check'; then
        skip "$1" check "no --check option"
        return
    fi
    timeout 120 "$BIN/$@" --check >"$WORK/$1-check.out" 2>&1
    rc=$?
    echo $rc >"$WORK/$1-check.rc"
    if [ $rc -eq 0 ]; then
        pass "$1" check "$(check_method "$1")" "$(check_transport "$1")"
    else
        fail "$1" check "exit status $rc" "$WORK/$1-check.out"
    fi
}

# What `TOOL --check` (run last by tool_check) said it would use: the method on "would use:",
# and the transport on "transport: ring buffer|perf buffer" (where --check has no such line,
# the ring buffer its "needs" line names: the only transport there is).
check_method() { sed -n 's/^  would use: *\([a-z]*\).*/\1/p' "$WORK/$1-check.out" | head -n1; }
check_transport() {
    if grep -q '^ *transport: perf buffer' "$WORK/$1-check.out"; then echo perf
    elif grep -q '^ *transport: ring buffer' "$WORK/$1-check.out"; then echo ringbuf
    elif grep -q '^  needs .*ring buffer' "$WORK/$1-check.out"; then echo ringbuf
    else echo unknown; fi
}
# Whether `TOOL --check` said method $2 works ("  METHOD  yes  works: ...").
check_says_works() { grep -qE "^  $2 +yes " "$WORK/$1-check.out"; }

# transport_of PID: the transport the running tool really has, from the kernel's own account of
# its BPF maps (/proc/PID/fdinfo: map_type 27 is BPF_MAP_TYPE_RINGBUF, 4 PERF_EVENT_ARRAY):
# "ringbuf" or "perf" when it holds exactly one of the two kinds, else what it holds.
transport_of() {
    types=$(cat /proc/$1/fdinfo/* 2>/dev/null | sed -n 's/^map_type:[[:space:]]*//p' | sort -u | tr '\n' ' ')
    case " $types" in
        *" 27 "*" 4 "*|*" 4 "*" 27 "*) echo "ringbuf+perf" ;;
        *" 27 "*) echo ringbuf ;;
        *" 4 "*) echo perf ;;
        *) echo "none" ;;
    esac
}

# ran TOOL MODE METHOD: notes a run that worked, for check_agrees; MODE is "auto" (the tool
# chose the method, as --check does) or "forced"; the transport is read while it runs (note it
# with RUN_TRANSPORT=$(transport_of $TOOL_PID) once the tool is attached).
ran() { echo "$2 $3 ${RUN_TRANSPORT:-none}" >>"$WORK/$1.runs"; }

# check_agrees TOOL: `TOOL --check` and the runs above agree: it exited 0 and the runs worked;
# the runs that let the tool choose used the method it named; each forced method worked where
# it said yes; every run had the transport it named.
check_agrees() {
    t=$1
    [ -f "$WORK/$t-check.rc" ] || { fail $t agrees "no --check result to compare with"; return; }
    rc=$(cat "$WORK/$t-check.rc") cm=$(check_method $t) ct=$(check_transport $t)
    if [ ! -s "$WORK/$t.runs" ]; then
        if [ "$rc" = 0 ]; then fail $t agrees "--check exited 0 (would use ${cm:-?}), but no run worked" "$WORK/$t-check.out"
        else fail $t agrees "--check exited $rc and no run worked: nothing ran to agree on" "$WORK/$t-check.out"; fi
        return
    fi
    why=""
    [ "$rc" = 0 ] || why="--check exited $rc but the tool ran"
    while read -r mode m tr; do
        if [ "$mode" = auto ] && [ "$m" != "$cm" ]; then why="$why; --check would use ${cm:-nothing}, the run used $m"; fi
        if [ "$mode" = forced ] && ! check_says_works $t "$m"; then why="$why; --check says $m does not work, the forced run worked"; fi
        [ "$tr" = "$ct" ] || why="$why; --check names transport $ct, the run (--attach $m) had $tr"
    done <"$WORK/$t.runs"
    # Where methods were forced one by one, each that --check said works must have worked.
    if grep -q '^forced ' "$WORK/$t.runs"; then
        for m in $(sed -n 's/^  \([a-z]*\) *yes  works:.*/\1/p' "$WORK/$t-check.out"); do
            grep -q "^forced $m " "$WORK/$t.runs" || why="$why; --check says $m works, the run forced to it did not"
        done
    fi
    if [ -n "$why" ]; then fail $t agrees "${why#; }" "$WORK/$t-check.out" "$WORK/$t.runs"
    else pass $t agrees "$cm" "$ct"; fi
}

# --- the kernel itself ---------------------------------------------------------------------------

check_kernel() {
    if [ -s /sys/kernel/btf/vmlinux ]; then pass kernel btf; else fail kernel btf "no /sys/kernel/btf/vmlinux"; fi
}

# The kernel's own complaints in its log since boot: a WARN() (e.g. 5.7-6.0's "trace type BPF
# program uses run-time allocation" for a tracing program with a BPF_F_NO_PREALLOC hash map), a
# BUG or an oops. A tool that works but makes the kernel warn does not pass (panic_on_warn
# machines would go down). Only messages that begin so, after the time stamp: others mention the
# word ("Speculative Return Stack Overflow: WARNING: See ..." at boot).
DMESG_BAD='^(\[[ 0-9.]*\] )?(WARNING: |BUG: |kernel BUG at |Oops)'
dmesg_bad() { dmesg 2>/dev/null | grep -cE "$DMESG_BAD"; }

# dmesg_after WHAT: notes the first group of checks after which the log had a complaint, so that
# the final check can say where it came from (the tool and test binary running at the time).
DMESG_FIRST=""
dmesg_after() { [ -z "$DMESG_FIRST" ] && [ "$(dmesg_bad)" -gt 0 ] && DMESG_FIRST=$1; }

check_dmesg() {
    dmesg >"$WORK/dmesg.txt" 2>&1
    if [ ! -s "$WORK/dmesg.txt" ]; then fail kernel dmesg "dmesg printed nothing" ; return; fi
    n=$(grep -cE "$DMESG_BAD" "$WORK/dmesg.txt")
    if [ "$n" -eq 0 ]; then pass kernel dmesg; return; fi
    fail kernel dmesg "$n WARNING/BUG/Oops line(s) in the kernel log, first after ${DMESG_FIRST:-the boot}"
    # Each complaint with the line before (WARN_ONCE's message) and the next few (the "Comm:"
    # line names the process; the first frames name the code).
    awk -v re="$DMESG_BAD" '
        $0 ~ re && shown < 4 { shown++; if (NR > 1 && NR - 1 > last) print prev; want = NR + 6 }
        NR <= want { print; last = NR }
        { prev = $0 }' "$WORK/dmesg.txt" | head -n 40 | cut -c 1-300 | sed 's/^/  | /'
}

# --- execsnoop: PCOMM PID PPID RET ARGS ----------------------------------------------------------

execsnoop_ready() {
    /bin/true "ctm-ready-$$"
    has "ctm-ready-$$" "$OUT"
}

check_execsnoop() {
    t=execsnoop
    # -x: failed exec()s too.
    start exec "$t" -x -v --timeout $TOOL_TIMEOUT
    if ! until_seen $READY_WAIT execsnoop_ready; then
        not_ready $t exec
        return
    fi
    RUN_TRANSPORT=$(transport_of $TOOL_PID)
    ok_marker=ctm-ok-$$-$RANDOM
    /bin/sh -c 'exit 0' "$ok_marker" &
    ok_pid=$!
    wait $ok_pid
    bad_marker=ctm-enoent-$$-$RANDOM
    "/tmp/$bad_marker" 2>/dev/null &
    bad_pid=$!
    wait $bad_pid
    # The marked processes must show; allow the last events a few seconds to cross the buffer.
    i=0
    while ! { has "$ok_marker" "$OUT" && has "$bad_marker" "$OUT"; } && [ $i -lt 20 ]; do
        sleep 0.5; i=$((i + 1))
    done
    stop
    method=$(method_of $t "$ERR")
    if [ "$STOP_RC" = 0 ]; then pass $t sigint; else fail $t sigint "exit status $STOP_RC after SIGINT" "$OUT" "$ERR"; fi
    [ -n "$(line_with "$ok_marker" "$OUT")" ] && ran $t auto "$method"
    # The successful exec: the right pid and parent, RET 0.
    row=$(line_with "$ok_marker" "$OUT")
    if [ -z "$row" ]; then
        fail $t exec "no row for '/bin/sh -c exit 0 $ok_marker' (pid $ok_pid)" "$OUT" "$ERR"
    else
        set -- $row
        if [ "$1" != sh ] || [ "$2" != "$ok_pid" ] || [ "$3" != "$$" ] || [ "$4" != 0 ]; then
            fail $t exec "want 'sh $ok_pid $$ 0 /bin/sh -c exit 0 $ok_marker', got: $row" "$OUT"
        else
            pass $t exec "$method" "$RUN_TRANSPORT"
        fi
    fi
    # The failed exec: RET is -ENOENT.
    row=$(line_with "$bad_marker" "$OUT")
    if [ -z "$row" ]; then
        fail $t exec-fail "no row for the failed exec of /tmp/$bad_marker (pid $bad_pid)" "$OUT" "$ERR"
    else
        set -- $row
        if [ "$2" != "$bad_pid" ] || [ "$4" != -2 ]; then
            fail $t exec-fail "want pid $bad_pid and RET -2, got: $row" "$OUT"
        else
            pass $t exec-fail "$method" "$RUN_TRANSPORT"
        fi
    fi
}

# --- exitsnoop: PCOMM PID PPID TID AGE(s) EXIT ---------------------------------------------------

# row_of PID: the exitsnoop row of that process.
row_of() { awk -v p="$1" '$2 == p { print; exit }' "$OUT"; }

exitsnoop_ready() {
    /bin/true &
    ready_pid=$!
    wait $ready_pid
    sleep 0.2
    [ -n "$(row_of $ready_pid)" ]
}

check_exitsnoop() {
    t=exitsnoop
    start exit "$t" -v --timeout $TOOL_TIMEOUT
    if ! until_seen $READY_WAIT exitsnoop_ready; then
        not_ready $t exit-code
        return
    fi
    RUN_TRANSPORT=$(transport_of $TOOL_PID)
    /bin/sh -c 'exit 7' "ctm-exit-$$" &
    code_pid=$!
    wait $code_pid
    /bin/sh -c 'kill -KILL $$' "ctm-kill-$$" &
    kill_pid=$!
    wait $kill_pid 2>/dev/null
    i=0
    while { [ -z "$(row_of $code_pid)" ] || [ -z "$(row_of $kill_pid)" ]; } && [ $i -lt 20 ]; do
        sleep 0.5; i=$((i + 1))
    done
    stop
    method=$(method_of $t "$ERR")
    if [ "$STOP_RC" = 0 ]; then pass $t sigint; else fail $t sigint "exit status $STOP_RC after SIGINT" "$OUT" "$ERR"; fi
    [ -n "$(row_of $code_pid)" ] && ran $t auto "$method"
    # exit 7: right pid, parent and thread id, and the code.
    row=$(row_of $code_pid)
    if [ -z "$row" ]; then
        fail $t exit-code "no row for pid $code_pid (sh -c 'exit 7')" "$OUT" "$ERR"
    else
        set -- $row
        if [ "$1" != sh ] || [ "$3" != "$$" ] || [ "$4" != "$code_pid" ] || [ "$6 $7" != "code 7" ]; then
            fail $t exit-code "want 'sh $code_pid $$ $code_pid AGE code 7', got: $row" "$OUT"
        else
            pass $t exit-code "$method" "$RUN_TRANSPORT"
        fi
    fi
    # killed by SIGKILL: the signal is named.
    row=$(row_of $kill_pid)
    if [ -z "$row" ]; then
        fail $t exit-signal "no row for pid $kill_pid (killed by SIGKILL)" "$OUT" "$ERR"
    else
        set -- $row
        if [ "$2" = "$kill_pid" ] && [ "$6 $7 $8" = "signal 9 (SIGKILL)" ]; then
            pass $t exit-signal "$method" "$RUN_TRANSPORT"
        else
            fail $t exit-signal "want 'sh $kill_pid ... signal 9 (SIGKILL)', got: $row" "$OUT"
        fi
    fi
}

# wait_attached SECS: until the tool started last says "TOOL: attached" (-v), as the host tests
# wait; fails if it does not within SECS or dies first.
attached() { grep -q "^$tool: attached" "$ERR"; }
wait_attached() { until_seen "$1" attached; }

# json_field NAME LINE: the value of a number or string field of a one-line JSON object.
json_field() {
    echo "$2" | sed -n "s/.*\"$1\":\(\"[^\"]*\"\|-\{0,1\}[0-9.]*\).*/\1/p" | head -n1 | tr -d '"'
}

# --- unlinksnoop: each attach method on files this script removes ----------------------------------

check_unlinksnoop() {
    tool=unlinksnoop
    for method in fentry kprobe tracepoint; do
        check_unlinksnoop_with $method
    done
}

# One method: an unlink by absolute path, one by a path relative to the working directory, an
# rmdir, and an rmdir that fails with ENOENT; each must show with its pid, full path and result.
check_unlinksnoop_with() {
    m=$1 c=unlink-$1 dir=$WORK/u-$1-$$
    mkdir -p "$dir"
    start "unlink-$m" unlinksnoop --attach "$m" --json -v --timeout $TOOL_TIMEOUT
    if ! wait_attached $READY_WAIT; then not_ready unlinksnoop "$c"; return; fi
    RUN_TRANSPORT=$(transport_of $TOOL_PID)
    got=$(method_of unlinksnoop "$ERR")
    : >"$dir/abs"; : >"$dir/rel"; mkdir "$dir/sub"
    rm "$dir/abs" & p_abs=$!; wait $p_abs
    (cd "$dir" && exec rm rel) & p_rel=$!; wait $p_rel
    rmdir "$dir/sub" & p_dir=$!; wait $p_dir
    rmdir "$dir/missing" 2>/dev/null & p_bad=$!; wait $p_bad
    i=0
    while ! has "\"$dir/missing\"" "$OUT" && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    stop
    if [ "$STOP_RC" != 0 ]; then fail unlinksnoop "$c" "exit status $STOP_RC after SIGINT" "$OUT" "$ERR"; return; fi
    if [ "$got" != "$m" ]; then fail unlinksnoop "$c" "asked for --attach $m, -v says: $(grep '^unlinksnoop: attached' "$ERR")" "$ERR"; return; fi
    why=""
    for want in "$p_abs unlink 0 $dir/abs" "$p_rel unlink 0 $dir/rel" "$p_dir rmdir 0 $dir/sub" "$p_bad rmdir -2 $dir/missing"; do
        set -- $want
        row=$(line_with "\"file.path\":\"$4\"" "$OUT")
        if [ -z "$row" ]; then why="$why; no event for $2 of $4"; continue; fi
        [ "$(json_field process.pid "$row")" = "$1" ] || why="$why; $4: pid $(json_field process.pid "$row"), want $1"
        [ "$(json_field op "$row")" = "$2" ] || why="$why; $4: op $(json_field op "$row"), want $2"
        [ "$(json_field ret "$row")" = "$3" ] || why="$why; $4: ret $(json_field ret "$row"), want $3"
    done
    if [ -n "$why" ]; then fail unlinksnoop "$c" "${why#; }" "$OUT" "$ERR"
    else ran unlinksnoop forced "$m"; pass unlinksnoop "$c" "$m" "$RUN_TRANSPORT"; fi
}

# --- uprobe-lat: functions of tests/programs/uprobe_target.c with known call counts -----------------

check_uprobe_lat() {
    tool=uprobe-lat c=calls prog=$PROGS/uprobe_target
    if [ ! -x "$prog" ]; then fail uprobe-lat $c "no test program $prog"; return; fi
    # The target waits for a line on stdin: a FIFO, held open here, says go once the tool attached.
    rm -f "$WORK/go"; mkfifo "$WORK/go"
    exec 3<>"$WORK/go"
    # Emptied here, before the target starts: its own redirection happens in the background,
    # and a grep could otherwise read the file before that (or an earlier run's).
    : >"$WORK/target.out"
    "$prog" run <&3 >"$WORK/target.out" 2>&1 &
    target=$!
    i=0
    while ! grep -q '^ready' "$WORK/target.out" && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
    start uprobe "uprobe-lat" --json -v --timeout $TOOL_TIMEOUT -p $target \
        "$prog:work_sleep" "$prog:recurse" "$prog:parse_*"
    if ! wait_attached $READY_WAIT; then
        kill $target 2>/dev/null; exec 3>&-
        not_ready uprobe-lat $c; return
    fi
    RUN_TRANSPORT=$(transport_of $TOOL_PID)
    m=$(method_of uprobe-lat "$ERR")
    echo go >&3
    wait $target
    exec 3>&-
    stop
    if [ "$STOP_RC" != 0 ]; then fail uprobe-lat $c "exit status $STOP_RC after SIGINT" "$OUT" "$ERR"; return; fi
    # One JSON histogram per function; its call count is the "count" after the buckets.
    why=""
    for want in work_sleep:20 recurse:24 parse_alpha:3 parse_beta:7; do
        f=${want%:*} n=${want#*:}
        row=$(line_with "\"code.function.name\":\"$f\"" "$OUT")
        got=$(echo "$row" | sed -n 's/.*\],"count":\([0-9]*\).*/\1/p')
        [ "$got" = "$n" ] || why="$why; $f: ${got:-no} calls, want $n"
    done
    # work_sleep sleeps 5 ms: no call can be faster.
    row=$(line_with '"code.function.name":"work_sleep"' "$OUT")
    p50=$(json_field p50_ns "$row")
    [ -n "$p50" ] && [ "$p50" -ge 5000000 ] 2>/dev/null || why="$why; work_sleep p50 ${p50:-missing} ns, want >= 5 ms"
    if [ -n "$why" ]; then fail uprobe-lat $c "${why#; }" "$OUT" "$ERR" "$WORK/target.out"
    else ran uprobe-lat auto "$m"; pass uprobe-lat $c "$m" "$RUN_TRANSPORT"; fi
}

# --- kmemleak-lite: kernel mode, and user mode on tests/programs/leaky.c ----------------------------

# stacks FILE: one line per reported stack of the last report, "BYTES ALLOCATIONS frames...".
# (The last line of a --json run is the loss record, not a report.)
stacks() {
    grep '"stacks":' "$1" | tail -n 1 | awk '{ n = split($0, a, /\{"bytes":/); for (i = 2; i <= n; i++) print a[i] }' |
        sed 's/^\([0-9]*\),"allocations":\([0-9]*\),/\1 \2 /'
}

check_kmemleak_lite() {
    tool=kmemleak-lite
    # User mode: leaky leaks 8 x 64 KiB from leak_big and 3 x 100 bytes from leak_small, and
    # frees everything churn allocates.
    c=user prog=$PROGS/leaky
    if [ ! -x "$prog" ]; then
        fail kmemleak-lite $c "no test program $prog"
    else
        start kml-user kmemleak-lite --json -v --timeout $TOOL_TIMEOUT -c "$prog x 1"
        i=0
        while alive && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done
        # It reports and ends when the command ends.
        if alive; then stop; else wait "$TOOL_PID"; STOP_RC=$?; fi
        stacks "$OUT" >"$WORK/kml-user.stacks"
        why=""
        [ "$STOP_RC" = 0 ] || why="exit status $STOP_RC"
        grep -q '^524288 8 .*leak_big' "$WORK/kml-user.stacks" || why="$why; no stack of 524288 bytes in 8 allocations through leak_big"
        grep -q '^300 3 .*leak_small' "$WORK/kml-user.stacks" || why="$why; no stack of 300 bytes in 3 allocations through leak_small"
        grep -q 'churn' "$WORK/kml-user.stacks" && why="$why; churn frees all it allocates but was reported"
        if [ -n "$why" ]; then fail kmemleak-lite $c "${why#; }" "$OUT" "$ERR"; else pass kmemleak-lite $c uprobe; fi
    fi
    # Kernel mode: 32 pipes held open while the tool reports hold the kernel's pipe buffers,
    # allocated through alloc_pipe_info (-T: they are small beside what starting processes takes).
    c=kernel
    start kml-kernel kmemleak-lite --json -v --timeout $TOOL_TIMEOUT -i 3 -T 1000
    if ! wait_attached $READY_WAIT; then not_ready kmemleak-lite $c; return; fi
    RUN_TRANSPORT=$(transport_of $TOOL_PID)
    m=$(method_of kmemleak-lite "$ERR")
    sh -c 'i=0; while [ $i -lt 32 ]; do sleep 30 | sleep 30 & i=$((i + 1)); done; wait' &
    holder=$!
    i=0
    while [ "$(grep -c '"stacks"' "$OUT")" -lt 2 ] && alive && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
    stop
    pkill -P $holder 2>/dev/null; kill $holder 2>/dev/null; wait $holder 2>/dev/null
    stacks "$OUT" >"$WORK/kml-kernel.stacks"
    why=""
    [ "$STOP_RC" = 0 ] || why="exit status $STOP_RC"
    grep -q 'alloc_pipe_info' "$WORK/kml-kernel.stacks" || why="$why; no outstanding allocation through alloc_pipe_info"
    # --check (without -p/-c) answers for kernel mode: this run is the one to compare.
    if [ -n "$why" ]; then fail kmemleak-lite $c "${why#; }" "$OUT" "$ERR"
    else ran kmemleak-lite auto "$m"; pass kmemleak-lite $c "$m" "$RUN_TRANSPORT"; fi
}

# --- the host's integration tests, run here as they are ------------------------------------------

# run_tests NAME: runs the test binary of tests/NAME.rs one test at a time; one line per test,
# "TOOL test:TEST", or "TOOL test:REST::TEST" for tests/TOOL_REST.rs (run.sh's test_checks
# expects the same names).
run_tests() {
    name=$1 out=$WORK/tests-$1.out tool="" sub=""
    for each in $TOOLS; do
        u=$(echo "$each" | tr - _)
        case $name in
            "$u") tool=$each; break ;;
            "$u"_*) tool=$each sub=${name#"$u"_}; break ;;
        esac
    done
    [ -n "$tool" ] || tool=$(echo "$name" | tr _ -)
    CORETRACE_REQUIRE_BPF=1 RUST_BACKTRACE=0 timeout 900 "/coretrace/tests/$name" --include-ignored --test-threads=1 >"$out" 2>&1
    rc=$?
    # libtest: "test some_name ... ok" / "... FAILED" / "... ignored"
    awk -v tool="$tool" -v prefix="${sub:+$sub::}" '
        /^test .* \.\.\. ok$/ { print "PASS " tool " test:" prefix $2 }
        /^test .* \.\.\. FAILED$/ { print "FAIL " tool " test:" prefix $2 " assertion failed (output below)" }
        /^test .* \.\.\. ignored/ { print "SKIP " tool " test:" prefix $2 " ignored" }' "$out"
    if grep -q '\.\.\. FAILED$' "$out"; then
        # The failures' own output, as libtest prints it after the list.
        sed -n '/^failures:$/,/^test result/p' "$out" | head -n 120 | cut -c 1-600 | sed 's/^/  | /'
    fi
    if ! grep -q '^test result: ' "$out"; then
        fail "$tool" "tests${sub:+:$sub}" "the test binary ended without a result (exit $rc)" "$out"
        return
    fi
    # A run cannot pass by doing less: the binary's own verdict and counts must agree with the
    # lines read above (a test's output can split its "... FAILED" line, which then counts as
    # neither a pass nor a failure).
    passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed.*/\1/p' "$out" | tail -n 1)
    seen=$(grep -c '^test .* \.\.\. ok$' "$out")
    if [ "$rc" != 0 ]; then
        fail "$tool" "tests${sub:+:$sub}" "the test binary failed (exit $rc)" "$out"
    elif [ "$passed" != "$seen" ]; then
        fail "$tool" "tests${sub:+:$sub}" "libtest says $passed passed, $seen pass lines were read" "$out"
    fi
}

# --- a kernel without BTF: the kernel's own hidden, a copy of it given with --btf -----------------

# The kernel's BTF is copied to a file, then hidden (an empty directory bound over
# /sys/kernel/btf) for these checks only: without --btf a tool must fail naming both fixes;
# with --btf (exitsnoop) or CORETRACE_BTF (unlinksnoop, which then cannot use fentry: that needs
# the kernel's own BTF) it must trace as usual, and --check must say what the run does.
check_btf_hidden() {
    btf=$WORK/vmlinux.btf
    mkdir -p "$WORK/no-btf"
    if ! cp /sys/kernel/btf/vmlinux "$btf" || ! mount -o bind "$WORK/no-btf" /sys/kernel/btf ||
            [ -e /sys/kernel/btf/vmlinux ]; then
        for c in "exitsnoop btf-missing" "exitsnoop btf-file" "unlinksnoop btf-env"; do
            fail $c "could not copy and hide /sys/kernel/btf/vmlinux"
        done
        return
    fi
    check_btf_missing
    check_btf_file
    check_btf_env
    umount /sys/kernel/btf
}

check_btf_missing() {
    timeout 60 "$BIN/exitsnoop" --timeout 5 >"$WORK/no-btf.out" 2>"$WORK/no-btf.err"
    rc=$?
    if [ $rc = 1 ] && [ "$(grep -c . "$WORK/no-btf.err")" = 1 ] &&
            grep -qF -- '--btf FILE or CORETRACE_BTF=FILE' "$WORK/no-btf.err" &&
            grep -qF 'CONFIG_DEBUG_INFO_BTF=y' "$WORK/no-btf.err"; then
        pass exitsnoop btf-missing
    else
        fail exitsnoop btf-missing "want exit 1 and one line naming --btf/CORETRACE_BTF and CONFIG_DEBUG_INFO_BTF, got exit $rc" "$WORK/no-btf.out" "$WORK/no-btf.err"
    fi
}

check_btf_file() {
    t=exitsnoop
    start btf-file $t --btf "$btf" -v --timeout $TOOL_TIMEOUT
    if ! until_seen $READY_WAIT exitsnoop_ready; then not_ready $t btf-file; return; fi
    /bin/sh -c 'exit 7' "ctm-btf-$$" &
    code_pid=$!
    wait $code_pid
    i=0
    while [ -z "$(row_of $code_pid)" ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    stop
    row=$(row_of $code_pid)
    set -- $row
    if [ "$STOP_RC" = 0 ] && [ "$2" = "$code_pid" ] && [ "$6 $7" = "code 7" ]; then
        pass $t btf-file "$(method_of $t "$ERR")"
    else
        fail $t btf-file "want the row 'sh $code_pid ... code 7' and exit 0, got exit $STOP_RC and: $row" "$OUT" "$ERR"
    fi
}

check_btf_env() {
    t=unlinksnoop tool=unlinksnoop
    export CORETRACE_BTF=$btf
    timeout 120 "$BIN/$t" --check >"$WORK/btf-env-check.out" 2>&1
    crc=$?
    cm=$(sed -n 's/^  would use: *\([a-z]*\).*/\1/p' "$WORK/btf-env-check.out")
    start btf-env $t --json -v --timeout $TOOL_TIMEOUT
    unset CORETRACE_BTF
    if ! wait_attached $READY_WAIT; then not_ready $t btf-env; return; fi
    m=$(method_of $t "$ERR")
    f=$WORK/btf-env-$$
    : >"$f"
    rm "$f" & p=$!; wait $p
    i=0
    while ! has "\"$f\"" "$OUT" && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    stop
    row=$(line_with "\"file.path\":\"$f\"" "$OUT")
    why=""
    [ "$STOP_RC" = 0 ] || why="exit status $STOP_RC after SIGINT"
    [ -n "$row" ] && [ "$(json_field process.pid "$row")" = "$p" ] || why="$why; no event with pid $p for the unlink of $f"
    [ "$m" != fentry ] && [ "$m" != - ] || why="$why; attached with '$m' (fentry needs the kernel's own BTF)"
    [ "$crc" = 0 ] && [ "$cm" = "$m" ] || why="$why; --check exited $crc saying it would use '${cm:-nothing}', the run used $m"
    if [ -n "$why" ]; then fail $t btf-env "${why#; }" "$OUT" "$ERR" "$WORK/btf-env-check.out"
    else pass $t btf-env "$m"; fi
}

# One pass of every tool's own checks: --check, the checks on real processes and files, and
# whether --check agreed with them.
tool_pass() {
    for tool in $TOOLS; do
        if ! have $tool; then
            skip $tool all "no binary in the initramfs"
            continue
        fi
        t0=$(now)
        rm -f "$WORK/$tool.runs" "$WORK/$tool-check.rc"
        case $tool in
            # uprobe-lat's --check wants a target (it checks that it can probe that one).
            uprobe-lat) tool_check $tool "$PROGS/uprobe_target:noop_fn" ;;
            *) tool_check $tool ;;
        esac
        case $tool in
            execsnoop) check_execsnoop ;;
            exitsnoop) check_exitsnoop ;;
            unlinksnoop) check_unlinksnoop ;;
            uprobe-lat) check_uprobe_lat ;;
            kmemleak-lite) check_kmemleak_lite ;;
            # A tool of the suite without checks here would pass unchecked.
            *) fail $tool all "guest-checks.sh has no checks for it" ;;
        esac
        check_agrees $tool
        echo "CTM TIME $tool$SUFFIX $t0 $(now)"
        dmesg_after "the $tool$SUFFIX checks"
    done
}

# --- the run -------------------------------------------------------------------------------------

if [ -n "${CTM_ONLY:-}" ]; then
    for f in $CTM_ONLY; do $f; done
    exit 0
fi
check_kernel
dmesg_after "the boot"
tool_pass
if have exitsnoop && have unlinksnoop; then
    t0=$(now)
    check_btf_hidden
    echo "CTM TIME btf-hidden $t0 $(now)"
    dmesg_after "the checks without kernel BTF"
fi
for bin in /coretrace/tests/*; do
    [ -x "$bin" ] || continue
    t0=$(now)
    run_tests "$(basename "$bin")"
    echo "CTM TIME tests/$(basename "$bin") $t0 $(now)"
    dmesg_after "tests/$(basename "$bin")"
done
# The second pass: every tool's own checks again, with the perf-buffer transport forced.
export CORETRACE_TRANSPORT=perf
SUFFIX=@perf
tool_pass
unset CORETRACE_TRANSPORT
SUFFIX=""
# Last: whatever ran above must have left the kernel's log clean.
check_dmesg
