/*
 * deep.c linked statically against musl (musl-gcc's specs given to cc), with the compiler's
 * defaults otherwise (no frame pointers). A file of its own so that the kernel-matrix guests get
 * this build.
 * Build: cc -specs /usr/lib/x86_64-linux-musl/musl-gcc.specs -static -O2 -g -o deep_musl deep_musl.c
 */
#include "deep.c"
