/*
 * One leak through each allocator function kmemleak-lite follows, each from a function of its
 * own (leak_NAME), for the allocator-family tests:
 *   malloc 100, calloc 3 x 70 (210), realloc to 300, posix_memalign 400, aligned_alloc 512,
 *   memalign 600, valloc 700, pvalloc 800 (a page: the tool counts it rounded up), mmap 3 pages.
 * churn() makes the same calls and frees each block (free, realloc to 0, munmap): never reported.
 * Builds with glibc (all of them) or musl (-DNO_GLIBC_EXTRAS: no pvalloc). Lingers SECS (argv[1],
 * default 1.2) so the leaks age, then exits.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void *volatile keep[16];

void leak_malloc(void) { keep[0] = malloc(100); }
void leak_calloc(void) { keep[1] = calloc(3, 70); }
void leak_realloc(void) { keep[2] = realloc(malloc(16), 300); }
void leak_posix_memalign(void)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, 400) == 0)
		keep[3] = p;
}
void leak_aligned_alloc(void) { keep[4] = aligned_alloc(64, 512); }
void leak_memalign(void) { keep[5] = memalign(64, 600); }
void leak_valloc(void) { keep[6] = valloc(700); }
#ifndef NO_GLIBC_EXTRAS
void leak_pvalloc(void) { keep[7] = pvalloc(800); }
#endif
void leak_mmap(void)
{
	void *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		keep[8] = p;
}

void churn(void)
{
	for (int i = 0; i < 200; i++) {
		void *p = NULL;

		free(malloc(100));
		free(calloc(3, 70));
		free(realloc(malloc(16), 300));
		free(realloc(malloc(32), 0)); /* glibc frees and gives NULL; musl a new block */
		if (posix_memalign(&p, 64, 400) == 0)
			free(p);
		free(aligned_alloc(64, 512));
		free(memalign(64, 600));
		free(valloc(700));
		p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			munmap(p, 3 * 4096);
	}
}

int main(int argc, char **argv)
{
	double linger = argc > 1 ? atof(argv[1]) : 1.2;
	struct timespec ts = { (time_t)linger, (long)((linger - (time_t)linger) * 1e9) };

	leak_malloc();
	leak_calloc();
	leak_realloc();
	leak_posix_memalign();
	leak_aligned_alloc();
	leak_memalign();
	leak_valloc();
#ifndef NO_GLIBC_EXTRAS
	leak_pvalloc();
#endif
	leak_mmap();
	churn();
	nanosleep(&ts, NULL);
	churn();
	return 0;
}
