#!/usr/bin/env bash
# Builds the suite for arm64 with Debian's own toolchain, for the arm64 guest of the kernel
# matrix (run.sh --kernels arm64): rustup cannot fetch targets on these machines, and trixie's
# rustc (1.85) is below the crates' minimum (1.88), so the build runs in a Debian unstable chroot
# (rustc 1.97, cross-compiling with libstd-rust-dev:arm64 and gcc-aarch64-linux-gnu; libelf and
# zlib for arm64), crates from crates.io (this is a test build with the network; the offline
# package build is tools/distro-build.sh's).
#
# Makes, under OUT (default target/arm64, a CARGO_TARGET_DIR of its own):
#   aarch64-unknown-linux-gnu/release/coretrace        the multicall binary
#   aarch64-unknown-linux-gnu/release/deps/<test>-*    the integration test binaries (--no-run)
#   guest/progs/                                       tests/programs/*.c for arm64 (musl too)
#   guest/bin/, guest/sysroot/                         busybox, sh, echo, sleep, true, cat for
#                                                      arm64 and the arm64 libraries
#                                                      (arm64-guest-files.sh)
# The chroot is cached (CORETRACE_MATRIX_CACHE, default /var/cache/coretrace-matrix, under
# arm64/unstable); delete that directory to start afresh. It is made once with debootstrap from
# the Debian archive the host's apt sources name, and gets the packages below when the list
# changes. The source tree is bind-mounted at its own path, so the test binaries name the tools
# at the paths run.sh puts them in the guest.
#
# Usage: tests/kernel-matrix/build-arm64.sh        (as root: debootstrap, chroot, mounts)
# Environment: CORETRACE_MATRIX_CACHE, CORETRACE_ARM64_DIR (OUT)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${CORETRACE_MATRIX_CACHE:-/var/cache/coretrace-matrix}
root=$cache/arm64/unstable
out=${CORETRACE_ARM64_DIR:-$repo/target/arm64}
case $out in /*) ;; *) out=$PWD/$out ;; esac
triple=aarch64-unknown-linux-gnu
# What the build needs (Build-Depends of a cross build, in effect), and the arm64 libraries the
# guest's programs link (coreutils' and libstdc++ for tests/programs/cxxleak.c).
# libelf and zlib for both: the build script (amd64) links libbpf too, through libbpf-cargo.
packages=(rustc cargo libstd-rust-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
    libc6-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64 libelf-dev zlib1g-dev musl-dev:arm64 clang llvm pkg-config make
    ca-certificates libstdc++6:arm64 libacl1:arm64 libattr1:arm64 libselinux1:arm64
    libgmp10:arm64 libcap2:arm64 libssl3t64:arm64)

log() { printf '[arm64] %s\n' "$*" >&2; }
die() { printf 'build-arm64.sh: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run it as root (debootstrap, chroot and bind mounts need it)"
for cmd in debootstrap unshare chroot readelf; do
    command -v "$cmd" >/dev/null || die "no $cmd: apt-get install debootstrap util-linux coreutils binutils"
done

# The Debian archive of the host's apt sources (the one whose release has no "-").
archive=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk '$2 !~ /-/ { print $1; exit }')
[ -n "$archive" ] || die "the host's apt sources name no Debian archive to take unstable from"

# in_root CMD...: runs CMD in the chroot, in a mount namespace of its own (the mounts go with it),
# with /proc, /dev, the source tree and OUT mounted.
in_root() {
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root$repo" "$out" "$root$out"
    unshare --mount --propagation private -- bash -c '
        set -e
        r=$1 repo=$2 out=$3; shift 3
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mount --bind "$repo" "$r$repo"
        mount --bind "$out" "$r$out"
        exec chroot "$r" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "$@"
    ' _ "$root" "$repo" "$out" "$@"
}

make_root() {
    [ -x "$root/usr/bin/apt-get" ] && return 0
    log "debootstrap --variant=minbase unstable (cached in $root)"
    rm -rf "$root.new"
    mkdir -p "$(dirname "$root")"
    debootstrap --variant=minbase unstable "$root.new" "$archive" >&2 ||
        die "debootstrap of unstable failed (see above)"
    mv "$root.new" "$root"
}

install_packages() {
    local want
    want=$(printf '%s\n' "${packages[@]}")
    [ "$(cat "$root/.coretrace-packages" 2>/dev/null)" = "$want" ] && return 0
    log "installing the build's packages in the chroot"
    echo "deb $archive unstable main" >"$root/etc/apt/sources.list"
    # The archive these machines reach may serve a Release file past its Valid-Until date.
    echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99coretrace"
    in_root dpkg --add-architecture arm64
    in_root apt-get update -qq >&2
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2 ||
        die "could not install the build's packages in the chroot"
    printf '%s\n' "$want" >"$root/.coretrace-packages"
}

build() {
    log "$(in_root rustc --version), cross to $triple"
    # The host's trusted certificates, for crates.io (a machine may trust a CA the chroot's
    # ca-certificates does not have).
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/coretrace-host-ca.crt"
    # The chroot has no git: the commit `coretrace --version` names comes from here.
    local commit
    commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    local env=(CORETRACE_COMMIT="$commit" CARGO_TARGET_DIR="$out" CARGO_HTTP_CAINFO=/etc/ssl/coretrace-host-ca.crt CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc PKG_CONFIG_ALLOW_CROSS=1
        PKG_CONFIG_PATH=/usr/lib/aarch64-linux-gnu/pkgconfig)
    in_root env "${env[@]}" bash -c "cd '$repo' && cargo build --locked --release --target $triple --bin coretrace && cargo test --locked --release --no-run --target $triple" >&2 ||
        die "the arm64 build failed (see above)"
}

guest_files() {
    in_root bash "$repo/tests/kernel-matrix/arm64-guest-files.sh" "$repo" "$out/guest"
    for f in "$out"/guest/bin/* "$out/$triple/release/coretrace"; do
        readelf -h "$f" 2>/dev/null | grep -q 'AArch64' || die "$f is not an arm64 program"
    done
}

t0=$SECONDS
make_root
install_packages
log "chroot ready in $((SECONDS - t0))s"
t1=$SECONDS
build
log "cargo build and test --no-run for $triple in $((SECONDS - t1))s"
guest_files
log "arm64 build done in $((SECONDS - t0))s: $out/$triple/release/coretrace, $out/guest"
