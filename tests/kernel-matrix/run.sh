#!/usr/bin/env bash
# Kernel matrix: one build of the suite, several kernels.
#
# Boots Debian's 5.10, 6.1 and 6.12 cloud kernels (x86-64) and trixie's 6.12 arm64 cloud kernel
# under QEMU (TCG; KVM hangs on these machines) with an initramfs, one per architecture,
# holding busybox, the suite's release binaries, the test programs of tests/programs (C, C++
# and Rust, built on the host by build-progs.sh; the guest's cc, g++ and rustc hand them to the
# tests), the integration test binaries of the tracing tools (tests/TOOL.rs and
# tests/TOOL_*.rs: cargo test --release --no-run) and the shared libraries of all of them
# (libstdc++, libgcc_s, ...); runs guest-checks.sh inside (its own checks, then those test binaries);
# reads the PASS/FAIL/SKIP lines and the kernel version from the serial console; prints a
# summary and writes docs/kernel-matrix.md (keeping, as it is, whatever follows its line
# "<!-- kernel-matrix:kept -->": runs made by hand on kernels outside the default set) and, for
# the default set, the table in README.md.
#
# Exit status: 0 when every kernel booted, ran all checks and every check passed; 1 otherwise
# (the failing kernel and check are named); 2 for a usage or set-up error (an unknown kernel
# series, one that cannot be fetched). "All checks" is what the suite defines, counted on the
# host before booting: every check guest-checks.sh lists (`guest-checks.sh --list`: the
# default pass and the second pass with CORETRACE_TRANSPORT=perf), and every test each
# integration test binary lists (`--list`). A kernel that reports fewer (or others) fails. Test
# binaries that are missing are built (cargo test --release --no-run); if that fails, so does
# the run.
#
# Usage: tests/kernel-matrix/run.sh [--kernels "5.10 6.1 6.12 arm64"] [--keep]
#
# Kernel series: 5.10, 6.1, 6.12 and arm64, the default set, which CI boots, two guests at a
# time. 5.10 is Debian 11's
# cloud kernel, fetched from bullseye and bullseye-security through an apt sources list of the
# matrix's own (under the cache directory, used only to download, never to install); 6.1 and
# 6.12 come from the host's own (Debian 12) sources. arm64 is Debian 13's (trixie's) 6.12 cloud
# kernel for arm64, from a sources list of its own in the same way, booted with
# qemu-system-aarch64 (-M virt -cpu max). Its tools are either the arm64 Debian package's
# binary, which tools/distro-build.sh cross-builds (CI's way: the guest runs guest-checks.sh's
# checks, there are no test binaries in a package build), or build-arm64.sh's build (Debian
# unstable's rustc in a chroot, with the integration test binaries, whose lists are read with
# qemu-aarch64-static), which run.sh runs first when there is neither. `--kernels 6.12` boots one.
#
# Environment:
#   CORETRACE_MATRIX_CACHE    kernel packages, unpacked  (default /var/cache/coretrace-matrix)
#   CORETRACE_MATRIX_KERNELS  kernel series to boot      (default "5.10 6.1 6.12 arm64")
#   CORETRACE_MATRIX_TIMEOUT  seconds per kernel, boot to power-off (default 1200: a safety net; a busy host slows TCG a lot)
#   CORETRACE_MATRIX_JOBS     guests booted at once      (default: the host's CPUs; each guest has one)
#   CORETRACE_MATRIX_RESULTS  markdown table to write    (default docs/kernel-matrix.md)
#   CORETRACE_BIN_DIR         where the tools are        (default $CARGO_TARGET_DIR/release or target/release)
#   CORETRACE_MATRIX_OFFLINE  1: never ask apt, boot the newest kernels already in the cache
#   CORETRACE_ARM64_DIR       the arm64 build          (default target/distro/arm64/matrix when
#                             tools/distro-build.sh made it, else target/arm64: build-arm64.sh)
#   CORETRACE_ARM64_BUILT     1: build-arm64.sh has just run (tools/test.sh's stage): do not run it again
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${CORETRACE_MATRIX_CACHE:-/var/cache/coretrace-matrix}
# The default set: every series the README's table shows.
default_kernels="5.10 6.1 6.12 arm64"
kernels=${CORETRACE_MATRIX_KERNELS:-$default_kernels}
per_kernel_timeout=${CORETRACE_MATRIX_TIMEOUT:-1200}
jobs=${CORETRACE_MATRIX_JOBS:-$(nproc)}
results=${CORETRACE_MATRIX_RESULTS:-$repo/docs/kernel-matrix.md}
bindir=${CORETRACE_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/release}
case $bindir in /*) ;; *) bindir=$PWD/$bindir ;; esac
offline=${CORETRACE_MATRIX_OFFLINE:-0}
# The arm64 build: the Debian package's (tools/distro-build.sh leaves it in
# target/distro/arm64/matrix: guest-checks.sh's checks), else build-arm64.sh's (target/arm64:
# with the integration test binaries), which run.sh makes when it is missing.
arm64_dir=${CORETRACE_ARM64_DIR:-}
if [ -z "$arm64_dir" ]; then
    arm64_dir=$repo/target/arm64
    [ ! -e "$repo/target/distro/arm64/matrix/guest/package-build" ] || arm64_dir=$repo/target/distro/arm64/matrix
fi
case $arm64_dir in /*) ;; *) arm64_dir=$PWD/$arm64_dir ;; esac
keep=0

# The host's own programs that the tests run by path, put in the guests at the same paths (in
# place of busybox's applets), so that the processes the tests watch behave as on the host
# (busybox sh, for one, execs the last command of `sh -c` in place of itself; dash does not).
host_progs="/bin/sh /bin/echo /bin/sleep /bin/true /bin/cat"


while [ $# -gt 0 ]; do
    case $1 in
        --kernels) [ $# -ge 2 ] || { echo "run.sh: --kernels needs a list, e.g. --kernels \"5.10 6.1 6.12\"" >&2; exit 2; }
            kernels=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option: $1" >&2; exit 2 ;;
    esac
done

log() { printf '[matrix] %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 2; }

known_series="5.10 6.1 6.12 arm64"
# Checked here, in the main shell: a die() inside a $(...) would end only that subshell.
for series in $kernels; do
    case " $known_series " in *" $series "*) ;; *) die "unknown kernel series '$series' (known: $known_series)" ;; esac
done
[ -n "${kernels// /}" ] || die "no kernel series to boot (known: $known_series)"

# The architecture of a kernel series: arm64, or x86 (x86-64) for the others.
arch_of() { case $1 in arm64) echo arm64 ;; *) echo x86 ;; esac; }

# --- host tools ----------------------------------------------------------------------------------

# apt for a kernel series: the host's own sources for 6.1 and 6.12 (Debian 12's), a sources
# list of the matrix's own for 5.10 (Debian 11's; see bullseye_apt).
apt_updated=""   # the apt set-ups ("host", "bullseye") already updated in this run

# apt_opts SERIES: sets the array apt_o to the options that point apt at the series' sources.
apt_opts() {
    case $1 in
        5.10) bullseye_apt; apt_o=("${bullseye_o[@]}") ;;
        arm64) trixie_apt; apt_o=("${trixie_o[@]}") ;;
        *) apt_o=() ;;
    esac
}

# apt_update_once SERIES: `apt-get update` of the series' sources, once per run.
apt_update_once() {
    local which=host
    [ "$1" = 5.10 ] && which=bullseye
    [ "$1" = arm64 ] && which=trixie
    case " $apt_updated " in *" $which "*) return 0 ;; esac
    apt_opts "$1"
    log "apt-get update ($which sources)"
    apt-get "${apt_o[@]}" update -qq >&2 || log "apt-get update of the $which sources failed; going on with the lists we have"
    apt_updated="$apt_updated $which"
}

# Debian 11 (bullseye) for the 5.10 kernel, without touching the host's apt: a sources list, lists
# and package cache of its own under $cache/apt-bullseye, given to apt-get/apt-cache with -o. Its
# archives are those of the host's Debian sources (the archive and its -security sibling), with
# the host's Debian archive keyring (which has bullseye's keys). Only ever used to download.
bullseye_o=()
bullseye_apt() {
    [ ${#bullseye_o[@]} -gt 0 ] && return 0
    local dir=$cache/apt-bullseye archive security keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    # "URI RELEASE" of every index the host's apt sources name, e.g. "<archive>/ bookworm".
    archive=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$2 !~ /-/ { print $1; exit }')
    security=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$2 ~ /-security$/ { print $1; exit }')
    [ -n "$archive" ] && [ -n "$security" ] ||
        die "5.10: the host's apt sources name no Debian archive and -security archive to take bullseye from"
    [ -r "$keyring" ] || die "5.10: no $keyring (apt-get install debian-archive-keyring)"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    printf '%s\n' \
        "deb [signed-by=$keyring] $archive bullseye main" \
        "deb [signed-by=$keyring] $security bullseye-security main" >"$dir/sources.list"
    bullseye_o=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache")
}

# Debian 13 (trixie) for the arm64 kernel, the same way: a sources list, lists and cache of its
# own under $cache/apt-trixie-arm64, arm64 packages only. Only ever used to download.
trixie_o=()
trixie_apt() {
    [ ${#trixie_o[@]} -gt 0 ] && return 0
    local dir=$cache/apt-trixie-arm64 archive security keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    archive=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$2 !~ /-/ { print $1; exit }')
    security=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$2 ~ /-security$/ { print $1; exit }')
    [ -n "$archive" ] || die "arm64: the host's apt sources name no Debian archive to take trixie from"
    [ -r "$keyring" ] || die "arm64: no $keyring (apt-get install debian-archive-keyring)"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    {
        echo "deb [signed-by=$keyring] $archive trixie main"
        [ -z "$security" ] || echo "deb [signed-by=$keyring] $security trixie-security main"
    } >"$dir/sources.list"
    trixie_o=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Architectures::=arm64
        -o Acquire::Check-Valid-Until=false)
}

ensure_host_tools() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    case " $archs " in *" arm64 "*)
        command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm)
        command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static) ;;
    esac
    [ -x /bin/busybox ] || missing+=(busybox-static)
    command -v cpio >/dev/null || missing+=(cpio)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
    log "installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
        apt_update_once host
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    } || die "could not install ${missing[*]}"
    # The busybox in the initramfs must not need any library.
    file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
        ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || die "/bin/busybox is not static (install busybox-static)"
}

# --- kernels -------------------------------------------------------------------------------------

# The package-name pattern of one kernel series.
series_regex() {
    case $1 in
        6.1) echo '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' ;;
        6.12) echo '^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64$' ;;
        5.10) echo '^linux-image-5\.10\.0-[0-9]+-cloud-amd64$' ;;
        arm64) echo '^linux-image-6\.12\.[0-9]+\+deb13-cloud-arm64$' ;;
        *) die "unknown kernel series '$1' (known: $known_series)" ;;
    esac
}

# Newest package of a series that apt knows (empty if none).
newest_in_apt() {
    apt_opts "$1"
    apt-cache "${apt_o[@]}" search --names-only "$(series_regex "$1")" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1
}

# Newest package of a series already unpacked in the cache (empty if none).
newest_in_cache() {
    ls "$cache/kernels" 2>/dev/null | grep -E "$(series_regex "$1")" | sort -V | tail -n1 || true
}

# Prints the path of the kernel image of the newest package of series $1, fetching it if needed.
fetch_kernel() {
    local series=$1 pkg="" dir tmp
    if [ "$offline" != 1 ]; then
        pkg=$(newest_in_apt "$series")
        if [ -z "$pkg" ]; then apt_update_once "$series"; pkg=$(newest_in_apt "$series"); fi
    fi
    [ -n "$pkg" ] || pkg=$(newest_in_cache "$series")
    [ -n "$pkg" ] || die "no linux-image package for $series in apt or in $cache/kernels"
    dir=$cache/kernels/$pkg
    if ! ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then
        log "fetching $pkg"
        mkdir -p "$cache/kernels"
        tmp=$(mktemp -d "$cache/fetch.XXXXXX")
        # apt-get download writes into the current directory.
        apt_opts "$series"
        if ! (cd "$tmp" && apt-get "${apt_o[@]}" download -qq "$pkg" >&2 2>/dev/null) ||
                ! dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/root"; then
            rm -rf "$tmp"
            die "could not download and unpack $pkg"
        fi
        # Only the image and its config are needed: the guests load no modules.
        rm -rf "$tmp/root/lib/modules" "$tmp/root/usr/lib/modules" "$dir"
        mv "$tmp/root" "$dir"
        rm -rf "$tmp"
        # Older builds of the same series are not booted any more.
        ls "$cache/kernels" | grep -E "$(series_regex "$series")" | grep -vxF "$pkg" |
            while read -r old; do log "removing $old from the cache"; rm -rf "${cache:?}/kernels/$old"; done
    fi
    ls "$dir"/boot/vmlinuz-* | head -n1
}

# --- initramfs -----------------------------------------------------------------------------------

# Copies ELF file $1 into the tree at $2 (to $2$3, default its own path) with every library
# ldd names and the dynamic loader, each at the path ldd gives.
copy_elf() {
    local src=$1 root=$2 dest=${3:-$1} lib
    if [ "$arch" = arm64 ]; then copy_elf_arm64 "$@"; return; fi
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$src" "$root$dest"
    # ldd lines: "libelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x...)" and
    # "/lib64/ld-linux-x86-64.so.2 (0x...)"; static binaries: "not a dynamic executable".
    for lib in $(ldd "$src" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\//{print $1}'); do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

# The same for an arm64 program, which ldd cannot read here: the libraries its ELF header names
# (NEEDED, recursively) and its loader, from the arm64 build's sysroot (arm64-guest-files.sh's
# copy of the chroot's arm64 libraries), all put in /usr/lib/aarch64-linux-gnu of the guest.
copy_elf_arm64() {
    local src=$1 root=$2 dest=${3:-$1} lib dir found interp
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$src" "$root$dest"
    interp=$(readelf -lW "$src" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
    if [ -n "$interp" ] && [ ! -e "$root$interp" ]; then
        mkdir -p "$root$(dirname "$interp")"
        cp -L "$arm64_sysroot$interp" "$root$interp"
    fi
    for lib in $(readelf -dW "$src" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [ -e "$root/usr/lib/aarch64-linux-gnu/$lib" ] && continue
        found=""
        for dir in /usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu; do
            [ -e "$arm64_sysroot$dir/$lib" ] && { found=$arm64_sysroot$dir/$lib; break; }
        done
        if [ -z "$found" ]; then log "WARNING: $lib, which $src needs, is not in $arm64_sysroot"; continue; fi
        copy_elf_arm64 "$found" "$root" "/usr/lib/aarch64-linux-gnu/$lib"
    done
}

# Builds the test programs of tests/programs (*.c, *.cc, *.rs) into $1 (a directory), for the
# x86 guests, with the compilers the tests use (build-progs.sh says how; build-arm64.sh builds
# the arm64 guest's).
build_test_progs() {
    sh "$here/build-progs.sh" cc "$1" "$repo/tests/programs"
}

# tool_test NAME: whether tests/NAME.rs holds integration tests of a tracing tool: it is named
# after the tool (tests/kmemleak_lite.rs) or starts with its name and "_"
# (tests/kmemleak_lite_unwind.rs). The others (coretrace-gen's, the JSON schema's) do not touch
# a kernel.
tool_test() {
    local tool
    for tool in $all_tools; do
        case $1 in "${tool//-/_}"|"${tool//-/_}"_*) return 0 ;; esac
    done
    return 1
}

# test_checks NAME BIN: the checks of test binary BIN (tests/NAME.rs), as guest-checks.sh's
# run_tests reports them: "TOOL test:TEST", or "TOOL test:REST::TEST" for tests/TOOL_REST.rs.
test_checks() {
    local name=$1 bin=$2 tool prefix=""
    for tool in $all_tools; do
        case $name in
            "${tool//-/_}") break ;;
            "${tool//-/_}"_*) prefix="${name#"${tool//-/_}"_}::"; break ;;
        esac
    done
    run_arch "$bin" --list 2>/dev/null | sed -n "s/^\(.*\): test\$/$tool test:$prefix\1/p"
}

# The integration tests of the tracing tools (tests/<tool>.rs, tests/<tool>_*.rs) as cargo built
# them into $bindir/deps: prints "name path" for each, the newest build of each that was made
# against the tools in $bindir (the tests find the tools by the absolute path cargo gave them at
# build time).
find_test_bins() {
    local bindir=$1 src name bin
    for src in "$repo"/tests/*.rs; do
        [ -e "$src" ] || continue
        name=$(basename "$src" .rs)
        tool_test "$name" || continue
        for bin in $(ls -t "$bindir"/deps/"$name"-???????????????? 2>/dev/null); do
            [ -x "$bin" ] || continue
            # A test harness, not the bin target of the same name, built against $bindir.
            grep -q RUST_TEST_THREADS "$bin" && grep -qF "$bindir/" "$bin" || continue
            echo "$name $bin"
            break
        done
    done
}

# Builds the initramfs of architecture $arch, for the tools in $present (built in $bindir, their
# test binaries $test_bins), into $1. arm64: busybox, the host's programs (arm64 builds of them)
# and the test programs come from the arm64 build's guest directory (arm64-guest-files.sh).
build_initramfs() {
    local img=$1 stage=$work/initramfs-$arch tool prog applet dest busybox=/bin/busybox progs
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,run,root,etc,coretrace/bin,coretrace/progs}
    [ "$arch" = arm64 ] && busybox=$arm64_dir/guest/bin/busybox
    cp "$busybox" "$stage/bin/busybox"
    for applet in $(run_arch "$busybox" --list); do
        [ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
    done
    for prog in $host_progs; do
        rm -f "$stage$prog"
        if [ "$arch" = arm64 ]; then copy_elf "$arm64_dir/guest/bin/$(basename "$prog")" "$stage" "$prog"
        else copy_elf "$prog" "$stage"; fi
    done
    # The kernel opens /dev/console for init before anything is mounted.
    mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
    mknod -m 666 "$stage/dev/null" c 1 3 2>/dev/null || true
    # The multicall binary, and a link named after each tool (as the package installs them).
    [ -z "$present" ] || copy_elf "$bindir/coretrace" "$stage" "/coretrace/bin/coretrace"
    # Where the integration tests look for them. /tmp and /run get a tmpfs over them at boot:
    # what goes there waits in /coretrace/overlay, which init copies in after mounting.
    case $bindir/ in
        /tmp/*|/run/*) dest=$stage/coretrace/overlay$bindir ;;
        *) dest=$stage$bindir ;;
    esac
    mkdir -p "$dest"
    [ -z "$present" ] || ln -s /coretrace/bin/coretrace "$dest/coretrace"
    for tool in $present; do
        ln -s coretrace "$stage/coretrace/bin/$tool"
        ln -s coretrace "$dest/$tool"
    done
    mkdir -p "$stage/coretrace/tests"
    while read -r name bin; do
        [ -n "$name" ] || continue
        copy_elf "$bin" "$stage" "/coretrace/tests/$name"
    done <<<"$test_bins"
    progs=$arm64_dir/guest/progs
    [ "$arch" = arm64 ] || { progs=$work/progs; build_test_progs "$progs"; }
    for prog in "$progs"/*; do
        [ -e "$prog" ] || continue
        copy_elf "$prog" "$stage" "/coretrace/progs/$(basename "$prog")"
    done
    cp "$here/guest-checks.sh" "$stage/coretrace/guest-checks.sh"
    # The compilers the tests call, each handing over run.sh's build (guest-cc.sh).
    mkdir -p "$stage/coretrace/shim"
    cp "$here/guest-cc.sh" "$stage/coretrace/shim/cc"
    chmod 755 "$stage/coretrace/shim/cc"
    for prog in g++ c++ rustc; do ln -s cc "$stage/coretrace/shim/$prog"; done
    cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
# initramfs init of the kernel matrix: mount, run the checks, power off.
export PATH=/coretrace/bin:/coretrace/progs:/coretrace/shim:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
[ -d /coretrace/overlay ] && cp -a /coretrace/overlay/. /
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# Keep kernel messages off the console so that they do not break the result lines.
echo 1 >/proc/sys/kernel/printk
echo "CTM BEGIN"
echo "CTM UNAME $(uname -r)"
cd /tmp
/bin/busybox sh /coretrace/guest-checks.sh
echo "CTM END rc=$?"
poweroff -f
EOF
    chmod 755 "$stage/init" "$stage/coretrace/guest-checks.sh"
    (cd "$stage" && find . | cpio -o -H newc --quiet) | gzip -1 >"$img"
}

# --- boot and read ------------------------------------------------------------------------------

# Boots kernel $1 of architecture $4 with initramfs $2, console to $3.
boot() {
    local kernel=$1 initrd=$2 console=$3 qemu=(qemu-system-x86_64 -accel tcg -cpu max) tty=ttyS0
    # arm64: QEMU's virt board, its PL011 UART the console; pointer authentication with QEMU's
    # own cheap algorithm (the architected one costs TCG dearly; the guest cannot tell).
    [ "$4" = arm64 ] && qemu=(qemu-system-aarch64 -M virt -accel tcg -cpu max,pauth-impdef=on) tty=ttyAMA0
    # -no-reboot: a panic (panic=-1 reboots at once) ends QEMU instead of looping.
    timeout -k 10 "$per_kernel_timeout" "${qemu[@]}" -smp 1 -m 1G \
        -nodefaults -display none -no-reboot \
        -serial "file:$console" \
        -kernel "$kernel" -initrd "$initrd" \
        -append "console=$tty panic=-1 oops=panic" \
        </dev/null >"$console.qemu" 2>&1
}

# run_arch PROGRAM ARGS...: runs a program of architecture $arch on this host (arm64 ones with
# qemu-aarch64-static, their libraries from the arm64 sysroot).
run_arch() {
    if [ "$arch" = arm64 ]; then qemu-aarch64-static -L "$arm64_sysroot" "$@"; else "$@"; fi
}

# --- main ----------------------------------------------------------------------------------------

# The architectures of the kernels to boot: each gets its build, test list and initramfs.
archs=""
for series in $kernels; do
    case " $archs " in *" $(arch_of "$series") "*) ;; *) archs="$archs $(arch_of "$series")" ;; esac
done
ensure_host_tools
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/coretrace-matrix.XXXXXX")
if [ "$keep" = 1 ]; then log "work directory: $work"; else trap 'rm -rf "$work"' EXIT; fi

# Every tool of the suite: the registry's (src/tools/mod.rs), as the built multicall binary lists
# them. Without a build there is no one to ask: the names below only let the run say, for each,
# that its binary is missing.
all_tools=$("$bindir/coretrace" --list-tools 2>/dev/null | paste -sd' ')
[ -n "$all_tools" ] || all_tools="execsnoop exitsnoop unlinksnoop uprobe-lat kmemleak-lite"

# Which tools the repository has.
repo_tools=""
for tool in $all_tools; do
    [ -e "$repo/src/bin/coretrace.rs" ] && repo_tools="$repo_tools $tool"
done
failures=()

# Cached kernels first, so that a failed download fails fast.
declare -A image
# 5.10's and arm64's apt set-ups here, in the main shell: fetch_kernel runs in a subshell.
case " $kernels " in *" 5.10 "*) [ "$offline" = 1 ] || bullseye_apt ;; esac
case " $kernels " in *" arm64 "*) [ "$offline" = 1 ] || trixie_apt ;; esac
for series in $kernels; do
    image[$series]=$(fetch_kernel "$series")
done

# The integration tests of the tracing tools (tests/<tool>.rs, tests/<tool>_*.rs) that have no
# test binary yet.
missing_test_bins() {
    local src name
    for src in "$repo"/tests/*.rs; do
        [ -e "$src" ] || continue
        name=$(basename "$src" .rs)
        tool_test "$name" || continue
        printf '%s\n' "$test_bins" | awk -v n="$name" '$1 == n { found = 1 } END { exit !found }' || echo "$name"
    done
}

# The arm64 build (Debian unstable's rustc in a chroot; a no-op when it is up to date).
arm64_sysroot=$arm64_dir/guest/sysroot
if [ "${archs/arm64/}" != "$archs" ] && [ "${CORETRACE_ARM64_BUILT:-0}" != 1 ] &&
    [ ! -e "$arm64_dir/guest/package-build" ]; then
    log "building for arm64 (tests/kernel-matrix/build-arm64.sh)"
    t0=$SECONDS
    if CORETRACE_ARM64_DIR=$arm64_dir "$here/build-arm64.sh" >&2; then
        log "arm64 build ready in $((SECONDS - t0))s"
    else
        failures+=("arm64: the arm64 build failed (tests/kernel-matrix/build-arm64.sh)")
    fi
fi

# prepare_arch: for architecture $arch, the tools built ($present), their test binaries
# ($test_bins), every check the suite defines ($work/expected-$arch) and the initramfs
# ($work/initramfs-$arch.cpio.gz). x86's test binaries are built here if missing.
declare -A bindir_of present_of test_bins_of
bindir_of[x86]=$bindir
bindir_of[arm64]=$arm64_dir/aarch64-unknown-linux-gnu/release
prepare_arch() {
    local tool name bin build
    bindir=${bindir_of[$arch]}
    build="cargo build --release"
    [ "$arch" = arm64 ] && build=tests/kernel-matrix/build-arm64.sh
    present=""
    for tool in $all_tools; do
        [ -x "$bindir/coretrace" ] && present="$present $tool"
    done
    for tool in $repo_tools; do
        case " $present " in *" $tool "*) ;; *) failures+=("$arch kernels: $tool: no binary at $bindir/coretrace ($build)") ;; esac
    done
    log "$arch: tools in the repository:${repo_tools:- none}; built:${present:- none}"

    test_bins=$(find_test_bins "$bindir")
    missing=$(missing_test_bins)
    if [ -n "$missing" ] && [ "$arch" = x86 ]; then
        # Built here rather than left out: a run without them would pass having done less.
        cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
        log "building the integration tests (no test binary for: $(echo $missing))"
        case $bindir in
            */release) (cd "$repo" && CARGO_TARGET_DIR=$(dirname "$bindir") "$cargo" test --release --no-run >&2) ||
                failures+=("x86 kernels: building the integration tests failed (cargo test --release --no-run)") ;;
            *) failures+=("x86 kernels: cannot build the integration tests into $bindir (not a cargo release directory)") ;;
        esac
        test_bins=$(find_test_bins "$bindir")
    fi
    if [ "$arch" = arm64 ] && [ -e "$arm64_dir/guest/package-build" ]; then
        # The package's binary (tools/distro-build.sh): a package build makes no test binaries,
        # so this guest runs guest-checks.sh's own checks, every one of them.
        log "arm64: the package's binary ($(cat "$arm64_dir/guest/package-build")): guest-checks.sh's checks only"
        test_bins=""
    else
        for name in $(missing_test_bins); do
            failures+=("$arch kernels: no test binary for tests/$name.rs in $bindir/deps (cargo test --release --no-run; arm64: build-arm64.sh)")
        done
    fi
    [ -n "$test_bins" ] && log "$arch: integration tests to run in the guests: $(echo "$test_bins" | awk '{printf "%s%s", sep, $1; sep=" "}')"

    # Every check the suite defines, "tool check" a line: guest-checks.sh's own (for the kernel
    # and the tools of the repository) and each test of the test binaries, as they will report
    # them (an arm64 test binary lists its tests under qemu-aarch64-static).
    {
        CTM_BIN=$bindir /bin/busybox sh "$here/guest-checks.sh" --list | while read -r tool check; do
            case " kernel $repo_tools " in *" $tool "*) echo "$tool $check" ;; esac
        done
        while read -r name bin; do
            [ -n "$name" ] || continue
            test_checks "$name" "$bin"
        done <<<"$test_bins"
    } | sort -u >"$work/expected-$arch"
    log "$arch: checks defined by the suite: $(wc -l <"$work/expected-$arch") per kernel ($(grep -c '@perf$' "$work/expected-$arch") of them with the perf transport forced)"

    build_initramfs "$work/initramfs-$arch.cpio.gz"
    log "$arch: initramfs: $(du -h "$work/initramfs-$arch.cpio.gz" | cut -f1)"
    present_of[$arch]=$present
    test_bins_of[$arch]=$test_bins
}
for arch in $archs; do prepare_arch; done

rows=()   # "kernel|tool|pass|check|method|transport|result|detail"
declare -A counts   # series -> "N of M checks ran (...)"
# Every guest, $jobs at a time (each has one virtual CPU, and TCG keeps a host core busy), the
# slowest first (arm64's TCG); each leaves "QEMU-EXIT SECONDS" in $work/boot-SERIES.
boot_all() {
    local series running=0 order
    order=$(printf '%s\n' $kernels | awk '{ print ($1 == "arm64" ? 0 : 1), $1 }' | sort -s -k1,1n | cut -d' ' -f2)
    for series in $order; do
        if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
        log "booting $(basename "$(dirname "$(dirname "${image[$series]}")")")"
        (
            t0=$SECONDS
            boot "${image[$series]}" "$work/initramfs-$(arch_of "$series").cpio.gz" \
                "$work/console-$series.log" "$(arch_of "$series")" && qrc=0 || qrc=$?
            echo "$qrc $((SECONDS - t0))" >"$work/boot-$series"
        ) &
        running=$((running + 1))
    done
    wait
}
start_all=$SECONDS
boot_all
for series in $kernels; do
    arch=$(arch_of "$series")
    present=${present_of[$arch]}
    expected=$work/expected-$arch
    kernel=${image[$series]}
    pkg=$(basename "$(dirname "$(dirname "$kernel")")")
    console=$work/console-$series.log
    read -r qrc secs <"$work/boot-$series" || { qrc=unknown secs=0; }
    tr -d '\r' <"$console" >"$console.txt"
    uname=$(sed -n 's/^CTM UNAME //p' "$console.txt" | head -n1)
    name=${uname:-$pkg}
    if [ -z "$uname" ]; then
        failures+=("$name: did not boot (qemu exit $qrc after ${secs}s)")
    elif ! grep -q '^CTM END' "$console.txt"; then
        failures+=("$name: checks did not finish (qemu exit $qrc after ${secs}s; timeout ${per_kernel_timeout}s)")
    fi
    # Result lines: "PASS tool check [method=M] [transport=T]", "FAIL tool check reason",
    # "SKIP tool check reason"; a check name ending in "@perf" is of the second pass.
    : >"$work/ran-$series"
    while read -r verdict tool check rest; do
        # Tools that neither the repository nor the build has yet: nothing to report.
        case " $all_tools " in *" $tool "*)
            case " $repo_tools $present " in *" $tool "*) ;; *) continue ;; esac ;;
        esac
        method=$(printf '%s\n' "$rest" | sed -n 's/.*method=\([^ ]*\).*/\1/p')
        transport=$(printf '%s\n' "$rest" | sed -n 's/.*transport=\([^ ]*\).*/\1/p')
        case $check in *@perf) pass=perf ;; *) pass=default ;; esac
        rows+=("$name|$tool|$pass|${check%@perf}|${method:--}|${transport:--}|$verdict|$rest")
        # A SKIP is the guest's own call (a tool without --check, a binary not built; the
        # missing binaries of tools in src/bin/ are failures, counted above); it does not
        # count as run.
        [ "$verdict" = FAIL ] && failures+=("$name: $tool $check: $rest")
        [ "$verdict" = SKIP ] || echo "$verdict $tool $check" >>"$work/ran-$series"
    done < <(grep -E '^(PASS|FAIL|SKIP) ' "$console.txt" || true)
    # The count: every check the suite defines must have run (passed or failed), once; a pass
    # of a check it does not define means the list is out of date. (A FAIL of a check it does
    # not define, such as a whole test binary's, is a failure already.)
    cut -d' ' -f2- "$work/ran-$series" | sort -u >"$work/ran-$series.names"
    { cut -d' ' -f2- "$work/ran-$series" | sort | uniq -d | sed 's/^/twice: /'
      comm -23 "$expected" "$work/ran-$series.names" | sed 's/^/did not run: /'
      sed -n 's/^PASS //p' "$work/ran-$series" | sort -u | comm -13 "$expected" - | sed 's/^/not defined by the suite: /'
    } >"$work/odd-$series"
    ran_n=$(comm -12 "$expected" "$work/ran-$series.names" | wc -l)
    ran_perf=$(comm -12 "$expected" "$work/ran-$series.names" | grep -c '@perf$' || true)
    counts[$series]="$ran_n of $(wc -l <"$expected") checks ran ($((ran_n - ran_perf)) in the default pass, $ran_perf with CORETRACE_TRANSPORT=perf)"
    if [ -s "$work/odd-$series" ]; then
        odd=$(head -n 5 "$work/odd-$series" | paste -sd ';' | sed 's/;/; /g')
        [ "$(wc -l <"$work/odd-$series")" -le 5 ] || odd="$odd; ..."
        failures+=("$name: ${counts[$series]}; $odd")
    fi
    log "$name: ${counts[$series]}: $(grep -cE '^PASS ' "$console.txt" || true) passed, $(grep -cE '^FAIL ' "$console.txt" || true) failed, $(grep -cE '^SKIP ' "$console.txt" || true) skipped in ${secs}s"
    # "CTM TIME tool start end": seconds since boot, to see where a slow guest spends its time.
    times=$(awk '/^CTM TIME / { printf "%s%s %.0fs", sep, $3, $5 - $4; sep = ", " }' "$console.txt")
    [ -n "$times" ] && log "$name: time per tool: $times"
    if grep -qE '^FAIL ' "$console.txt" || ! grep -q '^CTM END' "$console.txt"; then
        # The guest indents the tools' own output under a failing check; show it, and the last words.
        log "--- console of $name ---"
        if grep -q '^CTM BEGIN' "$console.txt"; then
            sed -n '/^CTM BEGIN/,$p' "$console.txt" | tail -n 200 >&2
        else
            tail -n 40 "$console.txt" >&2
        fi
        log "--- end of console ---"
    fi
    if [ "$keep" = 1 ]; then log "console: $console.txt"; fi
done
total=$((SECONDS - start_all))

# --- summary and results table -------------------------------------------------------------------

# One line per kernel, tool and pass: "kernel|tool|pass|methods|transports|passed/total|result",
# result "pass", "skip" or the failed checks.
summarize() {
    printf '%s\n' "${rows[@]}" | awk -F'|' '
        NF < 7 { next }
        { key = $1 "|" $2 "|" $3 }
        !(key in n) { order[++keys] = key; n[key] = 0; pass[key] = 0; meth[key] = ""; tr[key] = ""; failed[key] = "" }
        { n[key]++ }
        $7 == "PASS" { pass[key]++ }
        $7 == "FAIL" { failed[key] = failed[key] (failed[key] == "" ? "" : ", ") $4 }
        $5 != "-" && index(", " meth[key] ", ", ", " $5 ", ") == 0 { meth[key] = meth[key] (meth[key] == "" ? "" : ", ") $5 }
        $6 != "-" && index(", " tr[key] ", ", ", " $6 ", ") == 0 { tr[key] = tr[key] (tr[key] == "" ? "" : ", ") $6 }
        END {
            for (i = 1; i <= keys; i++) {
                k = order[i]
                r = failed[k] != "" ? "FAIL: " failed[k] : (pass[k] == 0 ? "skip" : "pass")
                print k "|" (meth[k] == "" ? "-" : meth[k]) "|" (tr[k] == "" ? "-" : tr[k]) "|" pass[k] "/" n[k] "|" r
            }
        }'
}
summary=$(summarize)
pass_name() { case $1 in perf) echo "CORETRACE_TRANSPORT=perf" ;; *) echo default ;; esac; }

echo
echo "kernel matrix: ${#rows[@]} results on $(echo $kernels | wc -w) kernels in ${total}s"
for series in $kernels; do echo "  $series: ${counts[$series]:-did not run}"; done
printf '%-28s %-14s %-24s %-26s %-16s %-7s %s\n' KERNEL TOOL PASS "ATTACH METHOD" TRANSPORT PASSED RESULT
while IFS='|' read -r k t p m tr c r; do
    [ -n "$k" ] && printf '%-28s %-14s %-24s %-26s %-16s %-7s %s\n' "$k" "$t" "$(pass_name "$p")" "$m" "$tr" "$c" "$r"
done <<<"$summary"

mkdir -p "$(dirname "$results")"
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit with local changes"
table=$work/table.md
{
    echo "Last run: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, ${total}s (QEMU TCG, \`tests/kernel-matrix/run.sh\`)."
    echo
    for series in $kernels; do echo "- $series: ${counts[$series]:-did not run}"; done
    echo
    echo "| kernel | tool | pass | attach method | transport | checks passed | result |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    while IFS='|' read -r k t p m tr c r; do
        [ -n "$k" ] || continue
        case $r in FAIL*) r="**$r**" ;; esac
        echo "| $k | $t | $(pass_name "$p") | $m | $tr | $c | $r |"
    done <<<"$summary"
    # Honest about a forced pass the tools ignored (they had no perf-buffer transport yet).
    if printf '%s\n' "${rows[@]}" | awk -F'|' '$3 == "perf" && $6 == "ringbuf" { found = 1 } END { exit !found }'; then
        echo
        echo "In the CORETRACE_TRANSPORT=perf pass, the rows with transport ringbuf ran on the ring buffer all the same: that build of the tools has no perf-buffer transport to force."
    fi
    for f in "${failures[@]}"; do echo; echo "- **failure**: $f"; done
} >"$table"
{
    echo "<!-- generated by tests/kernel-matrix/run.sh; do not edit -->"
    echo "# Kernel matrix"
    echo
    cat <<'TEXT'
The same commit of the suite, run on Debian's cloud kernels under QEMU: x86-64 (5.10, 6.1,
6.12: the release build and its integration test binaries) and arm64 (trixie's 6.12,
`qemu-system-aarch64 -M virt -cpu max`). In CI the arm64 guest runs the arm64 Debian package's
own binary (`tools/distro-build.sh`: Debian unstable's rustc, crates and libbpf, cross-compiling
in a chroot) with guest-checks.sh's checks: a package build has no test binaries. By hand,
`tests/kernel-matrix/build-arm64.sh` makes an arm64 build with its integration test binaries,
which the guest then runs too.

Each kernel runs two passes. The default pass: every tool's `--check`, its checks on processes
and files the guest makes, the same tools with the kernel's own BTF hidden (a copy given with
`--btf`/`CORETRACE_BTF`), and the tools' integration test binaries (`tests/TOOL.rs` and
`tests/TOOL_*.rs`; a test of `tests/TOOL_REST.rs` is listed as `test:REST::NAME`, e.g.
kmemleak-lite's DWARF unwinding tests as `test:unwind::...`). The test programs those tests build
(C, C++ with g++, Rust with rustc, as in `tests/programs`) are built on the host with the tests'
own flags and handed over by the guest's `cc`, `g++` and `rustc` (`guest-cc.sh`); the guest has
the shared libraries they link (libstdc++, libgcc_s, libc), the host's own, so that a stack
through libstdc++ crosses the same code as on the host. The second pass
(`CORETRACE_TRANSPORT=perf`) runs every tool's own checks again with the perf-buffer transport
forced. In both, a tool's `agrees` check compares what `--check` said (exit status, the attach
method, the transport on its `transport:` line) with what its runs did: the method from `-v`,
the transport from the kernel's own account of the tool's BPF maps (`/proc/PID/fdinfo`,
`map_type`). The *transport* column shows that account.

The perf-buffer transport exists for kernels without BPF ring buffers (before 5.8, such as
Ubuntu 20.04's 5.4). Debian has no 5.4 kernel with BTF in the archives CI reaches (nor can CI
reach Ubuntu's), so the forced pass on these newer kernels is the proof of that path here.

The run fails when a kernel ran fewer checks than the suite defines (guest-checks.sh's list and
each test binary's `--list`), counted below.
TEXT
    echo
    cat "$table"
    echo
    echo "## Every check"
    echo
    echo "| kernel | tool | pass | check | attach method | transport | result |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for row in "${rows[@]}"; do
        IFS='|' read -r k t p c m tr v d <<<"$row"
        case $v in PASS) v=pass ;; FAIL) v="**FAIL** ${d//|/\\|}" ;; SKIP) v="skip: ${d//|/\\|}" ;; esac
        echo "| $k | $t | $p | $c | $m | $tr | $v |"
    done
    # What follows this mark in the old file is kept as it is: runs made by hand on kernels
    # outside the default set, with their date.
    if [ -f "$results" ] && grep -q '^<!-- kernel-matrix:kept -->' "$results"; then
        echo
        sed -n '/^<!-- kernel-matrix:kept -->/,$p' "$results"
    fi
} >"$results.tmp"
mv "$results.tmp" "$results"
# A README that marks a place for the table gets the summary there (not for a run that writes
# its results elsewhere, or boots a part of the matrix).
readme=$repo/README.md
if [ -z "${CORETRACE_MATRIX_RESULTS:-}" ] && [ "$kernels" = "$default_kernels" ] && [ -f "$readme" ] && grep -q '<!-- kernel-matrix:begin -->' "$readme" && grep -q '<!-- kernel-matrix:end -->' "$readme"; then
    awk -v table="$table" '
        /<!-- kernel-matrix:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
        /<!-- kernel-matrix:end -->/ { skip = 0 }
        !skip' "$readme" >"$readme.tmp" && mv "$readme.tmp" "$readme"
    log "README.md: table updated"
fi
log "results written to ${results#$repo/}"

if [ ${#failures[@]} -gt 0 ]; then
    echo
    echo "kernel matrix FAILED:"
    for f in "${failures[@]}"; do echo "  $f"; done
    exit 1
fi
echo
echo "kernel matrix passed"
