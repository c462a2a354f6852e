#!/bin/bash
# The arm64 guest's own files, made inside a Debian unstable chroot that has arm64 as a foreign
# architecture and apt's network (build-arm64.sh's chroot, or tools/distro-build.sh's after the
# package's cross build): what run.sh --kernels arm64 puts in the guest beside the tools.
#
# Makes, under OUT:
#   bin/      busybox (static), sh (dash), echo, sleep, true, cat (coreutils): arm64 builds
#   progs/    tests/programs/*.c built for arm64 (glibc, musl and libstdc++ ones)
#   sysroot/  the arm64 shared libraries of the chroot and the dynamic loader, from which run.sh
#             copies what each program of the guest needs (readelf's NEEDED, recursively)
#
# usage (in the chroot): arm64-guest-files.sh SRC-DIR OUT [PACKAGE...]
#   PACKAGE: more arm64 packages whose libraries the guest needs (the tools' own: libbpf1:arm64)
set -euo pipefail
src=$1 out=$2
shift 2
die() { printf 'arm64-guest-files.sh: %s\n' "$*" >&2; exit 2; }
log() { printf '[arm64] %s\n' "$*" >&2; }

# The compilers and the libraries the test programs link (musl for allocfamily_musl.c,
# libstdc++ for cxxleak.c) or coreutils' programs load, and the programs the guest runs
# (unpacked, not installed).
packages=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev:arm64 musl-dev:arm64
    libstdc++6:arm64 libacl1:arm64 libattr1:arm64 libselinux1:arm64 libgmp10:arm64
    libcap2:arm64 libssl3t64:arm64 "$@")
guest_debs=(busybox-static:arm64 dash:arm64 coreutils:arm64)

dpkg --print-foreign-architectures | grep -qx arm64 || die "arm64 is not a foreign architecture here (dpkg --add-architecture arm64)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null ||
    die "could not install ${packages[*]}"

rm -rf "$out/bin" "$out/progs" "$out/sysroot" "$out/debs"
mkdir -p "$out/bin" "$out/progs" "$out/debs" "$out/sysroot/usr/lib/aarch64-linux-gnu"
debs=$(mktemp -d)
(cd "$debs" && apt-get download -qq "${guest_debs[@]}") || die "could not download ${guest_debs[*]}"
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$out/debs"; done
rm -rf "$debs"
# first_of NAME DIR...: the first DIR/NAME of the unpacked packages (merged /usr or not).
first_of() {
    local name=$1 dir
    shift
    for dir in "$@"; do [ -e "$out/debs/$dir/$name" ] && { echo "$out/debs/$dir/$name"; return; }; done
    die "no $name in ${guest_debs[*]}"
}
cp -L "$(first_of busybox bin usr/bin)" "$out/bin/busybox"
cp -L "$(first_of dash usr/bin bin)" "$out/bin/sh"
for prog in echo sleep true cat; do cp -L "$(first_of "$prog" usr/bin bin)" "$out/bin/$prog"; done
rm -rf "$out/debs"
chmod 755 "$out"/bin/*

sh "$src/tests/kernel-matrix/build-progs.sh" aarch64-linux-gnu-gcc "$out/progs" "$src/tests/programs" aarch64

# The arm64 libraries (with their symlinks) and the loader; run.sh takes what it needs from here.
cp -a /usr/lib/aarch64-linux-gnu/*.so* "$out/sysroot/usr/lib/aarch64-linux-gnu/"
cp -L /usr/lib/ld-linux-aarch64.so.1 "$out/sysroot/usr/lib/"
ln -s usr/lib "$out/sysroot/lib"
log "guest files in $out: $(ls "$out/bin" | wc -l) programs, $(ls "$out/progs" | wc -l) test programs, sysroot $(du -sh "$out/sysroot" | cut -f1)"
