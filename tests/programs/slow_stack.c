/*
 * uprobe-lat --stack's program, built with the compiler's defaults (-O2 -g: no frame
 * pointers): main -> outer -> middle -> slow_fn, ten times; the fourth call of slow_fn sleeps
 * 50 ms (the one slow call), the others return at once. noinline and work after each call
 * keep every frame (no inlining, no tail calls).
 * Run: slow_stack [pad]: with pad, main first puts 12 KiB of its own on the stack (a deep copy
 * of the stack, for a test of copies the ring buffer has no room for). Says "ready PID", waits for a line on stdin, makes its calls, says "done",
 * and stays until its stdin closes (so that the tool reads its maps while it is there).
 * Build: cc -O2 -g -o slow_stack slow_stack.c
 */
#include <alloca.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long work;

__attribute__((noinline)) void slow_fn(int slow)
{
	if (slow) {
		struct timespec ts = { 0, 50 * 1000000L };

		nanosleep(&ts, NULL);
	}
	work = work + 1;
}

__attribute__((noinline)) void middle(int i)
{
	slow_fn(i == 3);
	work = work + 2;
}

__attribute__((noinline)) void outer(int i)
{
	middle(i);
	work = work + 3;
}

int main(int argc, char **argv)
{
	char line[16];
	char *pad = alloca(argc > 1 && strcmp(argv[1], "pad") == 0 ? 12288 : 16);

	memset(pad, 1, 16);
	if (argc > 1)
		memset(pad, 1, 12288);
	work = work + pad[0];

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 0; i < 10; i++)
		outer(i);
	printf("done\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
