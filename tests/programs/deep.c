/*
 * The C variant of issue 24's program, built with the compiler's defaults (-O2 -g: no frame
 * pointers): each request leaks a block through main -> serve -> handle_request -> store ->
 * malloc, and one more through qsort's comparison callback inside libc (a libc frame, without
 * frame pointers, between two of ours); handle_request's scratch block is freed (not a leak).
 * noinline and work after each call keep every frame.
 * Run: deep_c [requests [marker]]: with a marker, it says "deep: leaked" on stdout once it has
 * leaked, then stays until the file MARKER exists (at most 60 s), so that a test can let the
 * tool read its maps while it is there.
 * Build: cc -O2 -g -o deep deep.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile kept[100000];
static volatile unsigned long work;
static int stored;

__attribute__((noinline)) void store(int i)
{
	kept[stored++] = malloc(64 + i % 8);
	work = work + 1;
}

__attribute__((noinline)) void handle_request(int i)
{
	char *scratch = malloc(32); /* freed: never reported */

	store(i);
	work = work + (scratch != NULL);
	free(scratch);
}

/* qsort calls it from libc: the leak's stack crosses libc's frames. */
__attribute__((noinline)) int compare_and_leak(const void *a, const void *b)
{
	static int leaked;

	if (leaked < 10) {
		leaked++;
		kept[stored++] = malloc(24);
	}
	work = work + 1;
	return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) void sort_requests(void)
{
	int v[16];

	for (int i = 0; i < 16; i++)
		v[i] = (i * 7) % 16;
	qsort(v, 16, sizeof(v[0]), compare_and_leak);
	work = work + v[0];
}

__attribute__((noinline)) void serve(int requests)
{
	for (int i = 0; i < requests && stored < 90000; i++)
		handle_request(i);
	sort_requests();
	work = work + 3;
}

/* Says it has leaked, then waits for the file `marker` to exist. */
static void wait_for(const char *marker)
{
	printf("deep: leaked\n");
	fflush(stdout);
	for (int i = 0; i < 6000 && access(marker, F_OK) != 0; i++)
		usleep(10000);
}

int main(int argc, char **argv)
{
	serve(argc > 1 ? atoi(argv[1]) : 100);
	work = work + 4;
	if (argc > 2)
		wait_for(argv[2]);
	return 0;
}
