#!/bin/busybox sh
# `cc`, `g++`, `c++` and `rustc` inside the kernel-matrix guests, which have no compiler (one
# script under each name). The integration tests build tests/programs/NAME.c (or NAME.cc,
# NAME.rs) as they run; run.sh built every one of them on the host, with the flags of its
# "Build:" comment (the tests' own), and this hands over that build:
# `COMPILER FLAGS -o OUT .../NAME.EXT` copies /coretrace/progs/NAME to OUT. Anything else fails,
# saying so.
out='' src=''
while [ $# -gt 0 ]; do
    case $1 in
        -o) out=$2; shift ;;
        *.c|*.cc|*.rs) src=$1 ;;
    esac
    shift
done
name=$(basename "$src")
name=${name%.*}
if [ -z "$out" ] || [ -z "$src" ] || [ ! -x "/coretrace/progs/$name" ]; then
    echo "$(basename "$0") (kernel-matrix guest): no prebuilt program for '$src' (run.sh builds tests/programs/*.c, *.cc, *.rs)" >&2
    exit 1
fi
cp "/coretrace/progs/$name" "$out"
