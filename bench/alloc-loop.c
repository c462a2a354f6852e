/* The workload of bench/kmemleak-unwind.sh: N malloc/free pairs made DEPTH calls deep (each
 * frame with a little stack of its own, as real code has), built with the compiler's defaults
 * (no frame pointers), and KEEP of them never freed. Prints the elapsed nanoseconds of the
 * loop. usage: alloc-loop N [DEPTH] [KEEP] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile unsigned long sink;
static void *kept[1024];

__attribute__((noinline)) static void loop(long n, long keep)
{
	for (long i = 0; i < n; i++) {
		char *p = malloc(64);

		p[0] = (char)i;
		sink += (unsigned char)p[0];
		if (i < keep && i < 1024)
			kept[i] = p;
		else
			free(p);
	}
}

__attribute__((noinline)) static void descend(int depth, long n, long keep)
{
	volatile char frame[96];

	memset((char *)frame, depth, sizeof(frame));
	if (depth > 0)
		descend(depth - 1, n, keep);
	else
		loop(n, keep);
	sink += frame[depth % sizeof(frame)];
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	int depth = argc > 2 ? atoi(argv[2]) : 30;
	long keep = argc > 3 ? atol(argv[3]) : 100;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	descend(depth, n, keep);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	return 0;
}
