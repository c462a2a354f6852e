/*
 * A program for uprobe-lat's tests and benchmark: functions of known duration, called a known
 * number of times once the test says go (a line on stdin), so the tool can attach first.
 *
 *   uprobe_target run      prints "ready PID", waits for a line, then runs the scenario below
 *   uprobe_target loop N   prints "ready PID", waits for a line, calls noop_fn N times and
 *                          prints "elapsed_ns T"
 *   uprobe_target jump     prints "ready PID", waits for a line, then calls jump_outer
 *                          JUMP_CALLS times: each calls jump_inner, which never returns
 *                          (it sleeps 1 ms and longjmps back into jump_outer)
 *   uprobe_target deep D N prints "ready PID", waits for a line, then calls recurse(D) N times:
 *                          D + 1 nested calls each
 *   uprobe_target threads T N  prints "ready PID", waits for a line, then starts T threads that
 *                          each call noop_fn N times; none ends before all have made their calls
 *
 * Build: cc -O1 -g -fno-inline -pthread -o uprobe_target uprobe_target.c
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLEEP_CALLS 20
#define SLEEP_MS 5
#define RECURSE_CALLS 4
#define RECURSE_DEPTH 5 /* recurse(5) is 6 calls: depths 5..0 */
#define BUSY_CALLS 10
#define ALPHA_CALLS 3
#define BETA_CALLS 7
#define JUMP_CALLS 5

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

__attribute__((noinline)) void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* At least SLEEP_MS ms. */
__attribute__((noinline)) void work_sleep(void)
{
	sleep_ms(SLEEP_MS);
}

/* About 200 us of spinning, measured by the program itself. */
__attribute__((noinline)) unsigned long work_busy(void)
{
	unsigned long long end = now_ns() + 200000;
	volatile unsigned long n = 0;

	while (now_ns() < end)
		n++;
	return n;
}

/* Each level takes at least 1 ms: the innermost sleeps, the outer ones wait for it. */
__attribute__((noinline)) int recurse(int depth)
{
	if (depth == 0) {
		sleep_ms(1);
		return 0;
	}
	return recurse(depth - 1) + 1;
}

__attribute__((noinline)) void parse_alpha(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void parse_beta(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void noop_fn(void)
{
	__asm__ volatile("" ::: "memory");
}

static jmp_buf jump_back;

__attribute__((noinline)) void jump_inner(void)
{
	sleep_ms(1);
	longjmp(jump_back, 1);
}

/* At least 1 ms; its callee's return probe never fires (the kernel drops it). */
__attribute__((noinline)) int jump_outer(void)
{
	if (setjmp(jump_back) == 0)
		jump_inner();
	return 1;
}

static pthread_barrier_t all_called;
static long thread_calls;

static void *call_noop(void *arg)
{
	long i;

	(void)arg;
	for (i = 0; i < thread_calls; i++)
		noop_fn();
	/* Stay alive until every thread has made its calls. */
	pthread_barrier_wait(&all_called);
	return NULL;
}

static void wait_for_go(void)
{
	char line[64];

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		exit(2);
}

int main(int argc, char **argv)
{
	int i;

	if (argc >= 2 && !strcmp(argv[1], "run")) {
		/* With "run slow", spread the work over about 2.5 s (for interval tests). */
		int spread = argc >= 3 && !strcmp(argv[2], "slow");

		wait_for_go();
		for (i = 0; i < SLEEP_CALLS; i++) {
			work_sleep();
			if (spread)
				sleep_ms(120);
		}
		for (i = 0; i < RECURSE_CALLS; i++)
			recurse(RECURSE_DEPTH);
		for (i = 0; i < BUSY_CALLS; i++)
			work_busy();
		for (i = 0; i < ALPHA_CALLS; i++)
			parse_alpha();
		for (i = 0; i < BETA_CALLS; i++)
			parse_beta();
		printf("done\n");
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "loop")) {
		long n = atol(argv[2]);
		unsigned long long start;

		wait_for_go();
		start = now_ns();
		for (i = 0; i < n; i++)
			noop_fn();
		printf("elapsed_ns %llu\n", now_ns() - start);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "jump")) {
		wait_for_go();
		for (i = 0; i < JUMP_CALLS; i++)
			jump_outer();
		printf("done\n");
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "deep")) {
		int depth = atoi(argv[2]), n = atoi(argv[3]);

		wait_for_go();
		for (i = 0; i < n; i++)
			recurse(depth);
		printf("done\n");
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "threads")) {
		int t = atoi(argv[2]);
		pthread_t tids[64];

		if (t < 1 || t > 64)
			return 2;
		thread_calls = atol(argv[3]);
		pthread_barrier_init(&all_called, NULL, t);
		wait_for_go();
		for (i = 0; i < t; i++)
			pthread_create(&tids[i], NULL, call_noop, NULL);
		for (i = 0; i < t; i++)
			pthread_join(tids[i], NULL);
		printf("done\n");
		return 0;
	}
	fprintf(stderr, "usage: %s run [slow] | loop N | jump | deep D N | threads T N\n", argv[0]);
	return 2;
}
