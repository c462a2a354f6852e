#!/bin/sh
# Builds the test programs of tests/programs (*.c with the C compiler CC, *.cc with the matching
# C++ compiler, *.rs with rustc) into OUT-DIR, for the kernel-matrix guests (they have no
# compiler: guest-checks.sh runs these, and the integration tests, which build them with cc, g++
# or rustc as they run, get them from the guest's shims of those, guest-cc.sh).
# Flags: those of the program's "Build: COMPILER FLAGS -o NAME NAME.EXT" comment, else (C only)
# the ones that keep stacks walkable; a C program without main (its own _start; main may be in a
# file it #includes "like this") is linked -static -nostdlib, unless it is a library (-shared in
# its Build comment). The C++ and Rust programs link their runtimes (libstdc++, libgcc_s) as the
# tests' own builds do, dynamically: run.sh puts those libraries in the guest.
# For a cross compiler, TRIPLET (e.g. aarch64) replaces x86_64 in multiarch paths of the flags
# (musl-gcc's specs), the C++ compiler is CC's g++ sibling, and rustc targets TRIPLET (a Rust
# program that cannot be built so, without that target's standard library, is left out).
# A program that does not build is reported and left out: it fails the checks that need it, in
# the guest.
#
# usage: build-progs.sh CC OUT-DIR SRC-DIR [TRIPLET]
#   CTM_CXX, CTM_RUSTC: the C++ compiler and rustc (default: g++, or CC's sibling for a cross
#   CC; the rustc on PATH, else ~/.cargo/bin/rustc)
set -u
cc=$1 out=$2 srcdir=$3 triplet=${4:-}
case $cc in
    *-gcc) cxx=${CTM_CXX:-${cc%gcc}g++} ;;
    *) cxx=${CTM_CXX:-g++} ;;
esac
rustc=${CTM_RUSTC:-$(command -v rustc || echo "$HOME/.cargo/bin/rustc")}
rust_target=""
[ -z "$triplet" ] || rust_target="--target $triplet-unknown-linux-gnu -C linker=$cc"
mkdir -p "$out"
built=" "
for src in "$srcdir"/*.c "$srcdir"/*.cc "$srcdir"/*.rs; do
    [ -e "$src" ] || continue
    ext=${src##*.}
    name=$(basename "$src" ".$ext")
    case $built in *" $name "*)
        echo "[matrix] WARNING: two test programs named $name; $src left out" >&2; continue ;;
    esac
    built="$built$name "
    flags=$(sed -n 's/.*Build: *[^ ]* \(.*\)/\1/p' "$src" | head -n1 |
        sed "s/-o  *[^ ]*//; s/[^ ]*\.\(c\|cc\|rs\)\b//g")
    [ -z "$triplet" ] || flags=$(echo "$flags" | sed "s,/x86_64-linux-,/$triplet-linux-,g")
    case $ext in
        c)
            [ -n "$(echo "$flags" | tr -d ' ')" ] || flags="-O0 -g -fno-omit-frame-pointer -fno-inline"
            included=$(sed -n 's/^#include "\(.*\)"/\1/p' "$src" | sed "s,^,$srcdir/,")
            # shellcheck disable=SC2086 # the included files are words
            cat "$src" $included 2>/dev/null | grep -q '\bmain *(' ||
                case $flags in *-shared*) ;; *) flags="$flags -static -nostdlib" ;; esac
            compiler=$cc ;;
        cc) compiler=$cxx ;;
        rs) compiler=$rustc flags="$flags $rust_target" ;;
    esac
    # shellcheck disable=SC2086 # flags are words
    $compiler $flags -o "$out/$name" "$src" || echo "[matrix] WARNING: could not build $src" >&2
done
