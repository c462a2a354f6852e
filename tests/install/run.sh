#!/usr/bin/env bash
# The Debian package as a user gets it: builds it (tools/build-deb.sh), checks that it shares no
# file with libbpf-tools or bpfcc-tools and that lintian finds no error in it and nothing about
# its man pages, installs it with dpkg -i next to libbpf-tools, runs every tool by each of its
# installed names (TOOL-coretrace, `coretrace TOOL`, and TOOL with /usr/lib/coretrace/bin on
# PATH) for a real event of its own, checks the binary and its links stay within the 3 MB the
# README states, runs libbpf-tools' execsnoop afterwards, checks the man
# and completion lookups, then removes and purges the package and checks nothing is left.
#
# usage: sudo tests/install/run.sh [DEB]   (root: dpkg -i, and the tools load BPF)
#   DEB: the package to test, e.g. the one tools/distro-build.sh built in Debian unstable (it
#   runs this script there); without it, tools/build-deb.sh builds one from this tree.
set -euo pipefail
deb_arg=${1:+$(realpath -m "$1")}
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"

fail() { printf 'install test: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'install test: ok: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || fail "run as root (dpkg -i, and the tools load BPF)"
dpkg-query -W -f='${Status}' libbpf-tools 2>/dev/null | grep -q "install ok installed" ||
    fail "libbpf-tools is not installed (tools/setup-debian.sh installs it)"
if dpkg-query -W -f='${Status}' coretrace 2>/dev/null | grep -q "installed"; then
    fail "a coretrace package is already installed: dpkg --purge coretrace first"
fi

if [ -n "$deb_arg" ]; then
    deb=$deb_arg
    [ -f "$deb" ] || fail "no package at $deb"
else
    deb=$(tools/build-deb.sh)
fi
work=$(mktemp -d /tmp/coretrace-install.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
ours=$work/ours.txt
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | sort >"$ours"

# No file in common with libbpf-tools (installed) or bpfcc-tools (its package, downloaded).
dpkg -L libbpf-tools | sort >"$work/libbpf-tools.txt"
(cd "$work" && apt-get download -q bpfcc-tools >/dev/null 2>&1) ||
    fail "cannot download bpfcc-tools to compare its files (apt-get update?)"
dpkg-deb -c "$work"/bpfcc-tools_*.deb | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | sort >"$work/bpfcc-tools.txt"
for other in libbpf-tools bpfcc-tools; do
    # Directories are shared by design (/usr/sbin): compare what is not a directory of ours.
    common=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort |
        comm -12 - "$work/$other.txt")
    [ -z "$common" ] || fail "files also in $other: $common"
done
ok "no file in common with libbpf-tools or bpfcc-tools"

# Tags only ("E: coretrace: tag ..."), not lintian's own notices (running as root).
tags=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -E '^[EWIPXO]: ' || true)
if grep -E '^E: ' <<<"$tags"; then fail "lintian errors (above)"; fi
if grep -iE 'manpage|man-page' <<<"$tags"; then fail "lintian on the man pages (above)"; fi
ok "lintian: no errors, nothing about the man pages; $(grep -c . <<<"$tags") other tags${tags:+: $tags}"

# libbpf-tools' execsnoop: /usr/sbin/execsnoop in Debian 12, /usr/sbin/execsnoop-libbpf in unstable.
lx=$(dpkg -L libbpf-tools | grep -m1 -E '^/usr/sbin/execsnoop(-libbpf)?$') ||
    fail "libbpf-tools has no execsnoop"
libbpf_execsnoop=$(md5sum "$lx")
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
[ "$(md5sum "$lx")" = "$libbpf_execsnoop" ] || fail "$lx changed"
[ "$(dpkg -S "$lx" | cut -d: -f1)" = libbpf-tools ] || fail "$lx is not libbpf-tools' any more"
ok "installed beside libbpf-tools: $(dpkg-query -W -f='${Installed-Size}' coretrace) KiB"

# The README's size claim (issue 13's goal): the binary and its links, as installed, <= 3 MB.
bin_bytes=$(dpkg -L coretrace | grep -E '^/usr/(sbin|lib/coretrace)/' |
    xargs -d '\n' stat -c '%F %s' | awk '$1 != "directory" {s += $NF} END {print s}')
[ "$bin_bytes" -le 3000000 ] || fail "the binary and its links take $bin_bytes bytes, over 3 MB"
ok "binary and links: $bin_bytes bytes (at most 3,000,000)"

# Starts a tracer (its command line in "$@", plus -v) in the background with its output in
# $work/$name.{out,err}, and waits until it has attached (or the tool says so in its own way).
start() {
    local name=$1; shift
    "$@" -v >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    for _ in $(seq 300); do
        grep -q ': attached' "$work/$name.err" && return 0
        kill -0 $pid 2>/dev/null || fail "$name exited before attaching: $(cat "$work/$name.err")"
        sleep 0.1
    done
    fail "$name did not attach within 30 s: $(cat "$work/$name.err")"
}
# Waits until $work/$name.out contains $2, then stops the tracer with SIGINT.
expect() {
    local name=$1 needle=$2
    for _ in $(seq 100); do
        grep -qF -- "$needle" "$work/$name.out" && break
        sleep 0.1
    done
    kill -INT $pid 2>/dev/null || true
    wait $pid || true
    grep -qF -- "$needle" "$work/$name.out" || fail "$name did not show '$needle': $(cat "$work/$name.out" "$work/$name.err")"
    ok "$name showed its event"
}

cc -O1 -g -fno-omit-frame-pointer -fno-inline -o "$work/leaky" tests/programs/leaky.c
cc -O1 -g -fno-inline -pthread -o "$work/uprobe_target" tests/programs/uprobe_target.c

n=0
for form in suffixed subcommand path; do
    case $form in
        # exec: the tracer's pid is the one `start` records (call it in a subshell otherwise).
        suffixed) run() { local t=$1; shift; exec "/usr/sbin/$t-coretrace" "$@"; } ;;
        subcommand) run() { exec coretrace "$@"; } ;;
        path) run() { local t=$1; shift; PATH=/usr/lib/coretrace/bin:$PATH exec "$t" "$@"; } ;;
    esac
    n=$((n + 1))
    marker=ctm-install-$form-$$

    start "execsnoop-$form" run execsnoop
    /bin/echo "$marker" >/dev/null
    expect "execsnoop-$form" "$marker"

    start "exitsnoop-$form" run exitsnoop -x
    sh -c "exit $((40 + n))" & child=$!; wait $child || true
    expect "exitsnoop-$form" " $child "
    grep -F " $child " "$work/exitsnoop-$form.out" | grep -q "code $((40 + n))" || fail "exitsnoop-$form: wrong exit code"

    start "unlinksnoop-$form" run unlinksnoop
    touch "$work/$marker"; rm "$work/$marker"
    expect "unlinksnoop-$form" "$work/$marker"

    # User mode needs frame pointers and a leak of known functions: tests/programs/leaky.c.
    (run kmemleak-lite -c "$work/leaky run 0.5") >"$work/kmemleak-$form.out" 2>"$work/kmemleak-$form.err" ||
        fail "kmemleak-lite ($form): $(cat "$work/kmemleak-$form.err")"
    grep -q "leak_big" "$work/kmemleak-$form.out" || fail "kmemleak-lite ($form) did not show leak_big: $(cat "$work/kmemleak-$form.out")"
    ok "kmemleak-lite-$form showed its event"

    # Calibration too: the shipped binary is stripped.
    start "uprobe-lat-$form" run uprobe-lat --timeout 3 -u "$work/uprobe_target:work_sleep"
    echo go | "$work/uprobe_target" run >/dev/null
    expect "uprobe-lat-$form" "count 20"
    grep -q "probe overhead" "$work/uprobe-lat-$form.out" || fail "uprobe-lat ($form) did not calibrate: $(cat "$work/uprobe-lat-$form.out")"
done

# The shipped build aborts on a panic: the guard must still make it one line and status 1.
set +e
err=$(CORETRACE_TEST_PANIC=1 /usr/sbin/exitsnoop-coretrace 2>&1 >/dev/null); status=$?
set -e
[ "$status" = 1 ] && [ "$(wc -l <<<"$err")" = 1 ] && grep -q "^exitsnoop: internal error" <<<"$err" ||
    fail "a panic in the shipped build: status $status, stderr: $err"
ok "a panic in the shipped build is one line and status 1"

# libbpf-tools' own execsnoop still runs.
"$lx" >"$work/libbpf.out" 2>&1 & pid=$!
marker=ctm-install-libbpf-$$
for _ in $(seq 100); do
    /bin/echo "$marker" >/dev/null
    grep -qF "$marker" "$work/libbpf.out" && break
    sleep 0.1
done
kill -INT $pid; wait $pid || true
grep -qF "$marker" "$work/libbpf.out" || fail "libbpf-tools' execsnoop did not run: $(cat "$work/libbpf.out")"
ok "libbpf-tools' execsnoop runs beside it"

# The suite's tools, as the installed binary lists them (its registry).
tools=$(coretrace --list-tools) || fail "coretrace --list-tools"
[ -n "$tools" ] || fail "coretrace --list-tools lists no tool"
for tool in $tools; do
    [ -L "/usr/lib/coretrace/bin/$tool" ] || fail "no link /usr/lib/coretrace/bin/$tool"
    [ -e "/usr/sbin/$tool-coretrace" ] || fail "no /usr/sbin/$tool-coretrace"
done
ok "every tool of coretrace --list-tools installed as TOOL-coretrace and linked in /usr/lib/coretrace/bin"

for page in coretrace $(printf '%s-coretrace ' $tools); do
    [ "$(man -w "$page")" = "/usr/share/man/man8/$page.8.gz" ] || fail "man -w $page: $(man -w "$page" 2>&1)"
    warnings=$(man --warnings -l "$(man -w "$page")" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man $page warns: $warnings"
done
ok "man pages found and render without a warning"
bash -c '. /usr/share/bash-completion/completions/execsnoop-coretrace && complete -p execsnoop-coretrace' >/dev/null ||
    fail "bash completion for execsnoop-coretrace"
ok "bash completion registers"

dpkg -r coretrace >/dev/null || fail "dpkg -r"
dpkg --purge coretrace >/dev/null || fail "dpkg --purge"
left=$(while read -r f; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    # Shared directories (/usr/sbin ...) stay; ours must be gone.
    if [ -d "$f" ] && [ ! -L "$f" ]; then
        case $f in /usr/lib/coretrace*|/usr/share/doc/coretrace*) echo "$f" ;; esac
    else
        echo "$f"
    fi
done <"$ours")
[ -z "$left" ] || fail "left behind after purge: $left"
[ "$(md5sum "$lx")" = "$libbpf_execsnoop" ] || fail "$lx changed by the removal"
ok "removed and purged: nothing left behind"
echo "install test: all passed" >&2
