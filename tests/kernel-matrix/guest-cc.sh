#!/bin/busybox sh
# `cc` inside the kernel-matrix guests, which have no compiler. The integration tests build
# tests/programs/NAME.c with cc as they run; run.sh built every one of them on the host, and
# this hands over that build: `cc FLAGS -o OUT .../NAME.c` copies /coretrace/progs/NAME to OUT.
# Anything else fails, saying so.
out='' src=''
while [ $# -gt 0 ]; do
    case $1 in
        -o) out=$2; shift ;;
        *.c) src=$1 ;;
    esac
    shift
done
name=$(basename "$src" .c)
if [ -z "$out" ] || [ -z "$src" ] || [ ! -x "/coretrace/progs/$name" ]; then
    echo "cc (kernel-matrix guest): no prebuilt program for '$src' (run.sh builds tests/programs/*.c)" >&2
    exit 1
fi
cp "/coretrace/progs/$name" "$out"
