#!/usr/bin/env bash
# Builds coretrace's Debian source package as Debian builds it (docs/packaging.md): in a clean
# Debian unstable chroot that has only the package's Build-Depends, with the network cut
# (`unshare -n`), every crate from Debian's librust-*-dev packages (/usr/share/cargo/registry)
# plus the one carried in debian/carried/, against Debian's libbpf. For each architecture asked
# (the build machine's natively, any other with `dpkg-buildpackage -a`), then lintian on the
# source and binary packages (no error, no warning; a tag we accept would be overridden, with
# its reason, in debian/*lintian-overrides), then
# the install test (tests/install/run.sh) on the amd64 package, in the same unstable system
# (the package depends on unstable's libc and libbpf) on this machine's kernel.
#
# The chroot: debootstrap'd once into $cache/base-unstable (kept 7 days; apt's lists and the
# downloaded .debs are kept too, so a second run downloads nothing new); each run works in an
# overlay on it, thrown away after. The source: `git archive HEAD` (uncommitted changes are
# not built).
# Results: target/distro/<arch>/ (.deb, .dsc, .tar.xz, .buildinfo, .changes, build.log), and
# for arm64 target/distro/arm64/matrix/, the kernel matrix's arm64 guest (the package's binary).
# Each stage prints `stage NAME: Ns`.
#
# usage: sudo tools/distro-build.sh [--arch amd64,arm64] [--no-lintian] [--no-install-test]
#                                   [--repro] [--check-only ARCH,...]
#   --no-build         lintian and the install test only, on what target/distro holds
#   --repro            build the first architecture a second time in another directory and
#                      compare the .debs byte for byte
#   --check-only LIST  for architectures Debian does not need a full build of here
#                      (ppc64el, s390x, riscv64): the BPF objects and `cargo check`, offline
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd -P)

die() { printf 'distro-build: %s\n' "$*" >&2; exit 1; }
log() { printf 'distro-build: %s\n' "$*" >&2; }
# stage NAME COMMAND...: runs it and prints how long it took.
stage() {
    local name=$1 t0=$SECONDS
    shift
    "$@"
    echo "stage $name: $((SECONDS - t0))s"
}

archs=amd64,arm64 lintian=1 install_test=1 repro=0 check_only= no_build=0
while [ $# -gt 0 ]; do
    case $1 in
        --arch) archs=${2:?--arch needs a list, e.g. amd64,arm64}; shift ;;
        --no-lintian) lintian=0 ;;
        --no-install-test) install_test=0 ;;
        --repro) repro=1 ;;
        --no-build) no_build=1 ;;
        --check-only) check_only=${2:?--check-only needs a list, e.g. ppc64el,s390x}; shift ;;
        --in-namespace) in_ns=1 ;;
        *) die "unknown argument '$1' (see the usage at the top of $0)" ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot, unshare)"

# Everything below runs in a mount namespace of its own: the chroot's mounts end with it.
if [ -z "${in_ns:-}" ]; then
    exec unshare --mount --propagation private -- "$0" --in-namespace "$@" \
        --arch "$archs" $([ $lintian = 0 ] && echo --no-lintian) \
        $([ $install_test = 0 ] && echo --no-install-test) $([ $repro = 1 ] && echo --repro) \
        $([ $no_build = 1 ] && echo --no-build) \
        ${check_only:+--check-only "$check_only"}
fi

cache=${CORETRACE_DISTRO_CACHE:-/var/cache/coretrace-distro}
suite=unstable
base=$cache/base-$suite
out=$src/target/distro
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version 2>/dev/null ||
    sed -n '1s/^coretrace (\([^)]*\)).*/\1/p' "$src/debian/changelog")
native=$(dpkg --print-architecture)
mkdir -p "$cache/archives/partial" "$cache/lists/partial" "$out"

# The Debian archive the host's apt sources name (the chroot's own sources list points there).
archive() {
    apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$2 !~ /-/ && $1 !~ /security/ { print $1; exit }'
}

make_base() {
    if [ -e "$base/.complete" ] && [ -z "$(find "$base/.complete" -mtime +7)" ]; then
        log "chroot: reusing $base"
        return 0
    fi
    command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y -q debootstrap >/dev/null; }
    local mirror
    mirror=$(archive)
    [ -n "$mirror" ] || die "the host's apt sources name no Debian archive to debootstrap $suite from"
    rm -rf "$base" "$base.new"
    log "chroot: debootstrap $suite from the host's Debian archive"
    debootstrap --variant=minbase --include=build-essential,ca-certificates \
        --cache-dir="$cache/archives" "$suite" "$base.new" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        die "debootstrap failed: $cache/debootstrap.log"
    # This archive's Release files can be older than their Valid-Until (a fixed snapshot of the
    # archive is served here): apt would refuse them. The signatures are still checked.
    printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\nAPT::Get::Assume-Yes "true";\nquiet "2";\n' \
        >"$base.new/etc/apt/apt.conf.d/90coretrace"
    echo "deb $mirror $suite main" >"$base.new/etc/apt/sources.list"
    # A throw-away system: dpkg need not sync every file it unpacks (as sbuild's chroots).
    echo force-unsafe-io >"$base.new/etc/dpkg/dpkg.cfg.d/coretrace-unsafe-io"
    # Nor rebuild man-db's index at every install (debhelper pulls man-db in).
    echo 'man-db man-db/auto-update boolean false' | chroot "$base.new" debconf-set-selections
    rm -rf "$base.new/var/cache/apt/archives"/*.deb
    touch "$base.new/.complete"
    mv "$base.new" "$base"
}

# A fresh copy of the base for this run, with apt's lists and downloads from the cache.
root= work=
make_root() {
    work=$(mktemp -d /var/tmp/coretrace-distro.XXXXXX)
    root=$work/root
    trap remove_root EXIT
    # The base stays as it is: this run writes to an overlay (instant, where a copy took minutes).
    mkdir -p "$work/upper" "$work/overlay-work" "$root"
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/overlay-work" "$root"
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    mount --rbind /sys "$root/sys"
    mount --bind "$cache/archives" "$root/var/cache/apt/archives"
    mount --bind "$cache/lists" "$root/var/lib/apt/lists"
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    mkdir -p "$root/build"
    git -C "$src" archive --format=tar --prefix="coretrace-$version/" HEAD | tar -x -C "$root/build"
    [ -z "$(git -C "$src" status --porcelain --untracked-files=no)" ] ||
        log "note: uncommitted changes are not built (the source is git archive HEAD)"
    in_root apt-get update
}
remove_root() {
    local m
    for m in var/lib/apt/lists var/cache/apt/archives sys dev/pts dev proc ""; do
        umount -R -l "$root/$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$work"
}
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"; }

# add_arch ARCH: ARCH's packages installable in the chroot (dpkg's foreign architectures).
add_arch() {
    in_root dpkg --print-foreign-architectures | grep -qx "$1" && return 0
    in_root dpkg --add-architecture "$1"
    in_root apt-get update
}

# build ARCH [DIR]: installs the Build-Depends for ARCH, then dpkg-buildpackage with no network.
build() {
    local arch=$1 dir=${2:-/build/coretrace-$version} opts=(-us -uc)
    if [ "$arch" = "$native" ]; then
        in_root apt-get build-dep "$dir" >/dev/null
        [ "$dir" = "/build/coretrace-$version" ] || opts+=(-b)
    else
        add_arch "$arch"
        in_root apt-get install "crossbuild-essential-$arch" >/dev/null
        in_root apt-get build-dep -a "$arch" "$dir" >/dev/null
        opts+=(-B -a "$arch")
    fi
    local logf=$out/$arch/build.log
    mkdir -p "$out/$arch"
    log "$arch: dpkg-buildpackage ${opts[*]} (network cut; log: $logf)"
    unshare --net -- chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent \
        LC_ALL=C.UTF-8 DEB_BUILD_OPTIONS="parallel=$(nproc)" \
        sh -c "cd $dir && dpkg-buildpackage ${opts[*]}" >"$logf" 2>&1 ||
        { tail -n 40 "$logf" >&2; die "$arch: dpkg-buildpackage failed (log: $logf)"; }
    local parent
    parent=$(dirname "$root$dir")
    cp "$parent"/coretrace*_"$arch".* "$out/$arch/"
    [ "$arch" != "$native" ] || cp "$parent/coretrace_$version".{dsc,tar.xz} "$out/$arch/" 2>/dev/null || true
    rm -f "$parent"/coretrace*_"$arch".deb
    log "$arch: $(ls "$out/$arch"/*.deb)"
}

# The arm64 guest of the kernel matrix, from this build (tools/test.sh's kernel-matrix stage:
# run.sh --kernels arm64 with CORETRACE_ARM64_DIR=target/distro/arm64/matrix): the package's
# own binary, and the guest's programs and libraries made in this chroot (arm64-guest-files.sh).
arm64_guest() {
    local m=$out/arm64/matrix dir=/build/coretrace-$version deb=coretrace_${version}_arm64.deb
    rm -rf "$m" "$work/deb-arm64"
    mkdir -p "$m/aarch64-unknown-linux-gnu/release"
    dpkg-deb -x "$out/arm64/$deb" "$work/deb-arm64"
    add_arch arm64
    cp "$work/deb-arm64/usr/sbin/coretrace" "$m/aarch64-unknown-linux-gnu/release/coretrace"
    # What the package depends on, for arm64 (libbpf1, libelf, zlib, libc), as apt would bring it.
    local depends
    depends=$(dpkg-deb -f "$out/arm64/$deb" Depends | tr ',' '\n' |
        sed 's/|.*//; s/(.*)//; s/[[:space:]]//g; /^$/d; s/$/:arm64/')
    in_root bash "$dir/tests/kernel-matrix/arm64-guest-files.sh" "$dir" /build/arm64-guest $depends ||
        die "arm64: the guest's files could not be made"
    cp -a "$root/build/arm64-guest" "$m/guest"
    echo "$deb" >"$m/guest/package-build"
    log "arm64: the kernel matrix's arm64 guest is ready in $m"
}

repro_check() {
    local arch=${archs%%,*} a b
    a=$(sha256sum "$out/$arch/coretrace_${version}_$arch.deb" | cut -d' ' -f1)
    mkdir -p "$root/build2"
    git -C "$src" archive --format=tar --prefix="coretrace-$version/" HEAD | tar -x -C "$root/build2"
    mv "$out/$arch" "$out/$arch.first"
    build "$arch" "/build2/coretrace-$version"
    b=$(sha256sum "$out/$arch/coretrace_${version}_$arch.deb" | cut -d' ' -f1)
    rm -rf "$out/$arch"
    mv "$out/$arch.first" "$out/$arch"
    [ "$a" = "$b" ] || die "repro: the two $arch builds differ ($a, $b)"
    log "repro: the same .deb twice, from /build and /build2 ($a)"
}

run_lintian() {
    in_root apt-get install lintian >/dev/null
    local files=() f
    for f in "$out"/*/coretrace_"$version"*.changes; do
        mkdir -p "$root/lintian"
        cp "$(dirname "$f")"/coretrace*"$version"* "$root/lintian/"
    done
    # --fail-on warning: an error or a warning fails; a tag we accept would be overridden (with
    # its reason) in debian/coretrace.lintian-overrides or debian/source/lintian-overrides.
    for f in "$root"/lintian/*.changes; do files+=("/lintian/$(basename "$f")"); done
    in_root lintian --fail-on error,warning --display-info --tag-display-limit 0 "${files[@]}" ||
        die "lintian: errors or warnings (above)"
    log "lintian: no error, no warning on ${files[*]}"
}

install_test() {
    in_root apt-get install libbpf-tools man-db bash-completion lintian gcc libc6-dev apt >/dev/null
    mkdir -p "$root/install"
    cp "$out/$native/coretrace_${version}_$native.deb" "$root/install/"
    # What the package depends on (libbpf1 ...), as apt would bring it: run.sh uses dpkg -i.
    in_root apt-get satisfy "$(dpkg-deb -f "$out/$native/coretrace_${version}_$native.deb" Depends)" >/dev/null
    in_root "/build/coretrace-$version/tests/install/run.sh" "/install/coretrace_${version}_$native.deb"
}

# check_arch ARCH: the BPF objects and `cargo check` for ARCH, offline, with Debian's crates
# (the registry the native build set up) and Debian's standard library for ARCH.
check_arch() {
    local arch=$1 dir=/build/coretrace-$version triple
    case $arch in
        ppc64el) triple=powerpc64le-unknown-linux-gnu ;;
        s390x) triple=s390x-unknown-linux-gnu ;;
        riscv64) triple=riscv64gc-unknown-linux-gnu ;;
        arm64) triple=aarch64-unknown-linux-gnu ;;
        *) die "$arch: no Rust target known for it here" ;;
    esac
    [ -e "$root$dir/debian/cargo_home/config.toml" ] || die "$arch: --check-only needs a native build first"
    add_arch "$arch"
    in_root apt-get install "libstd-rust-dev:$arch" >/dev/null
    log "$arch: cargo check --target $triple (network cut)"
    unshare --net -- chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent \
        LC_ALL=C.UTF-8 CARGO_HOME="$dir/debian/cargo_home" CARGO_TARGET_DIR="$dir/debian/target" \
        sh -c "cd $dir && cargo check --offline --locked --no-default-features --bin coretrace --target $triple" \
        >"$out/check-$arch.log" 2>&1 ||
        { tail -n 30 "$out/check-$arch.log" >&2; die "$arch: cargo check failed (log: $out/check-$arch.log)"; }
    log "$arch: the BPF objects built and cargo check passed"
}

stage distro-chroot make_base
stage distro-root make_root
IFS=, read -r -a arch_list <<<"$archs"
for arch in "${arch_list[@]}"; do
    [ $no_build = 0 ] || break
    rm -rf "${out:?}/$arch"
    stage "distro-build-$arch" build "$arch"
done
[[ ,$archs, != *,arm64,* ]] || stage distro-arm64-guest arm64_guest
[ $repro = 0 ] || stage distro-repro repro_check
[ $lintian = 0 ] || stage distro-lintian run_lintian
if [ $install_test = 1 ] && [[ ,$archs, == *,$native,* ]]; then
    stage distro-install-test install_test
fi
if [ -n "$check_only" ]; then
    IFS=, read -r -a check_list <<<"$check_only"
    for arch in "${check_list[@]}"; do stage "distro-check-$arch" check_arch "$arch"; done
fi
log "done: $(cd "$out" && ls ./*/*.deb | tr '\n' ' ')"
