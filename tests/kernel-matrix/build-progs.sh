#!/bin/sh
# Builds the test programs of tests/programs/*.c into OUT-DIR with the C compiler CC, for the
# kernel-matrix guests (they have no compiler: guest-checks.sh runs these, and the integration
# tests, which build them with `cc` as they run, get them from the guest's cc, guest-cc.sh).
# Flags: those of the program's "Build: cc FLAGS -o NAME NAME.c" comment, else the ones that
# keep stacks walkable; a program without main (its own _start) is linked -static -nostdlib,
# unless it is a library (-shared in its Build comment). For a cross compiler, TRIPLET (e.g.
# aarch64) replaces x86_64 in multiarch paths of the flags (musl-gcc's specs). A program that
# does not build is reported and left out: it fails the checks that need it, in the guest.
#
# usage: build-progs.sh CC OUT-DIR SRC-DIR [TRIPLET]
set -u
cc=$1 out=$2 srcdir=$3 triplet=${4:-}
mkdir -p "$out"
for src in "$srcdir"/*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    flags=$(sed -n 's/.*Build: *cc \(.*\)/\1/p' "$src" | head -n1 |
        sed "s/-o  *[^ ]*//; s/[^ ]*\.c\b//g")
    [ -n "$(echo "$flags" | tr -d ' ')" ] || flags="-O0 -g -fno-omit-frame-pointer -fno-inline"
    [ -z "$triplet" ] || flags=$(echo "$flags" | sed "s,/x86_64-linux-,/$triplet-linux-,g")
    grep -q '\bmain *(' "$src" || case $flags in *-shared*) ;; *) flags="$flags -static -nostdlib" ;; esac
    # shellcheck disable=SC2086 # flags are words
    $cc $flags -o "$out/$name" "$src" || echo "[matrix] WARNING: could not build $src" >&2
done
