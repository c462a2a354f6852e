/*
 * A program for uprobe-lat's many-functions tests: 1000 functions fn_0000 .. fn_0999 that do
 * nothing, each called CALLS times once the test says go (a line on stdin). Tests trace all of
 * them or a glob's worth (fn_00[0-2]? is 30).
 *
 *   many_funcs CALLS   prints "ready PID", waits for a line, calls each function CALLS times
 *                      (in order, fn_0000 first), prints "done"
 *
 * Build: cc -O1 -o many_funcs many_funcs.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* fn_ followed by four digits, from the digits pasted together. */
#define DEF(n) \
	__attribute__((noinline)) void fn_##n(void) { __asm__ volatile("" ::: "memory"); }
#define REF(n) fn_##n,
#define D10(F, p) F(p##0) F(p##1) F(p##2) F(p##3) F(p##4) F(p##5) F(p##6) F(p##7) F(p##8) F(p##9)
#define D100(F, p)                                                                               \
	D10(F, p##0) D10(F, p##1) D10(F, p##2) D10(F, p##3) D10(F, p##4) D10(F, p##5)            \
	D10(F, p##6) D10(F, p##7) D10(F, p##8) D10(F, p##9)
#define D1000(F)                                                                                 \
	D100(F, 00) D100(F, 01) D100(F, 02) D100(F, 03) D100(F, 04) D100(F, 05) D100(F, 06)       \
	D100(F, 07) D100(F, 08) D100(F, 09)

D1000(DEF)

static void (*const all[])(void) = { D1000(REF) };

int main(int argc, char **argv)
{
	long calls = argc >= 2 ? atol(argv[1]) : 1;
	char line[64];
	unsigned i;
	long k;

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 2;
	for (k = 0; k < calls; k++)
		for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			all[i]();
	printf("done\n");
	return 0;
}
