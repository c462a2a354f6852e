/*
 * allocfamily.c linked statically against musl (Debian's musl-tools): a binary with no glibc,
 * whose allocator is inside the executable itself. musl has no pvalloc. Its main() is
 * allocfamily.c's.
 * Build: cc -specs /usr/lib/x86_64-linux-musl/musl-gcc.specs -static -O0 -g -fno-omit-frame-pointer -fno-inline
 */
#define NO_GLIBC_EXTRAS
#include "allocfamily.c"
