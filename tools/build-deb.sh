#!/usr/bin/env bash
# Builds the Debian package target/debian/coretrace_<version>_<arch>.deb with dpkg-deb, from the
# `dist` profile (LTO, stripped): the multicall binary /usr/sbin/coretrace, a link
# /usr/sbin/TOOL-coretrace for each tool (Debian's libbpf-tools and bpfcc-tools own
# /usr/sbin/execsnoop and friends, so the short names are links in /usr/lib/coretrace/bin to put
# on PATH), man pages and bash/zsh/fish completions written by coretrace-gen, README and
# copyright. Prints the path of the .deb.
#
# usage: tools/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The generator is not shipped: built as the tests build it, without the dist environment.
cargo build --release --locked --quiet --features gen --bin coretrace-gen
gen=${CARGO_TARGET_DIR:-target}/release/coretrace-gen
(
    . tools/dist-env.sh
    cargo build --profile dist --locked --quiet --bin coretrace
)
. tools/dist-env.sh

target=${CARGO_TARGET_DIR:-target}
bin=$target/dist/coretrace
tools=$("$bin" --list-tools)
[ -n "$tools" ] || { echo "build-deb: no tools listed by $bin --list-tools" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
suffix=-coretrace

out=$target/debian
root=$out/root
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/usr/lib/coretrace/bin" \
    "$root/usr/share/man/man8" "$root/usr/share/doc/coretrace" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"

install -m 0755 "$bin" "$root/usr/sbin/coretrace"
for tool in $tools; do
    ln -s coretrace "$root/usr/sbin/$tool$suffix"
    ln -s ../../../sbin/coretrace "$root/usr/lib/coretrace/bin/$tool"
done

"$gen" man "$out/man" --suffix "$suffix" >/dev/null
for page in "$out"/man/*.8; do
    gzip -9n <"$page" >"$root/usr/share/man/man8/$(basename "$page").gz"
done
"$gen" completions bash "$out/bash" --suffix "$suffix" >/dev/null
"$gen" completions zsh "$out/zsh" --suffix "$suffix" >/dev/null
"$gen" completions fish "$out/fish" --suffix "$suffix" >/dev/null
for f in "$out"/bash/*.bash; do
    install -m 0644 "$f" "$root/usr/share/bash-completion/completions/$(basename "$f" .bash)"
done
install -m 0644 "$out"/zsh/_* "$root/usr/share/zsh/vendor-completions/"
install -m 0644 "$out"/fish/*.fish "$root/usr/share/fish/vendor_completions.d/"

doc=$root/usr/share/doc/coretrace
gzip -9n <README.md >"$doc/README.md.gz"
cat >"$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: coretrace
Source: https://github.com/coretrace/coretrace

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) coretrace maintainers
License: GPL-2
 This program is free software; you can redistribute it and/or modify it under the terms of
 the GNU General Public License version 2 as published by the Free Software Foundation.
 .
 On Debian systems, the complete text of the GNU General Public License version 2 can be found
 in /usr/share/common-licenses/GPL-2.
COPYRIGHT
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
maintainer="coretrace maintainers <maintainers@users.noreply.h-seed-6204ccd5.example>"
printf 'coretrace (%s) unstable; urgency=medium\n\n  * Release %s (commit %s).\n\n -- %s  %s\n' \
    "$version" "$version" "$CORETRACE_COMMIT" "$maintainer" "$date" | gzip -9n >"$doc/changelog.gz"

# Shared-library dependencies as dpkg-shlibdeps finds them (libc, libelf, zlib, libgcc).
shlib=$out/shlibdeps
rm -rf "$shlib"
mkdir -p "$shlib/debian"
printf 'Source: coretrace\n\nPackage: coretrace\nArchitecture: any\n' >"$shlib/debian/control"
shipped=$(realpath "$root/usr/sbin/coretrace")
depends=$(cd "$shlib" && dpkg-shlibdeps -O "$shipped" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -k -s --apparent-size "$root/usr" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: coretrace
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/coretrace/coretrace
Description: CO-RE eBPF tracing tools in one small binary
 execsnoop, exitsnoop, unlinksnoop, kmemleak-lite and uprobe-lat: BPF
 programs compiled once and relocated at load time against the running
 kernel's types (CO-RE), so they run on any kernel with BTF from 5.8 on,
 without kernel headers or a compiler. Every event that cannot be shown is
 counted by cause.
 .
 The tools install as /usr/sbin/TOOL-coretrace, beside libbpf-tools and
 bpfcc-tools; put /usr/lib/coretrace/bin on PATH to run them by their short
 names.
CONTROL
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$out/coretrace_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
