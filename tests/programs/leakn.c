/*
 * Known numbers of allocations, for kmemleak-lite's loss-accounting and -c tests. Nothing else
 * in it allocates (no stdio), and it frees nothing, so every allocation is outstanding at exit:
 *   leakn leak N     N x malloc(64) from leak_one
 *   leakn stacks N   N x malloc(64), each from its own call stack (recursion depth i, N <= 100)
 *   leakn sigpipe    writes into a pipe whose reader is gone: dies of SIGPIPE when SIGPIPE has
 *                    its default disposition, else exits 3 (EPIPE)
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile sink;

void leak_one(void)
{
	sink = malloc(64);
}

void leak_at_depth(int depth)
{
	if (depth > 0) {
		leak_at_depth(depth - 1);
		sink = sink; /* not a tail call: each depth keeps its frame */
		return;
	}
	sink = malloc(64);
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 0;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "leak") == 0) {
		for (int i = 0; i < n; i++)
			leak_one();
	} else if (strcmp(argv[1], "stacks") == 0) {
		for (int i = 0; i < n && i < 100; i++)
			leak_at_depth(i);
	} else if (strcmp(argv[1], "sigpipe") == 0) {
		int p[2];

		if (pipe(p))
			return 2;
		close(p[0]);
		if (write(p[1], "x", 1) < 0)
			return 3;
		return 4;
	} else {
		return 2;
	}
	return 0;
}
