/*
 * deep.c built as a fixed-address (non-PIE) executable, with the compiler's defaults otherwise
 * (no frame pointers). A file of its own so that the kernel-matrix guests get this build.
 * Build: cc -O2 -g -no-pie -o deep_nopie deep_nopie.c
 */
#include "deep.c"
