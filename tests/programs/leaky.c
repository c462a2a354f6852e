/*
 * A process that leaks known amounts from named functions, for kmemleak-lite's tests:
 * leak_big: 8 x 64 KiB, leak_small: 3 x 100 bytes, while churn allocates and frees
 * thousands of times (all freed: it must never be reported).
 * With an argument "wait", it first waits for SIGUSR1 (so a tracer can attach with -p).
 * It then lingers SECS (second argument, default 1.5) so the leaks age, and exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void *keep[16];
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

void leak_big(void)
{
	for (int i = 0; i < 8; i++) {
		keep[i] = malloc(64 * 1024);
		memset(keep[i], 1, 64 * 1024);
	}
}

void leak_small(void)
{
	for (int i = 0; i < 3; i++) {
		keep[8 + i] = malloc(100);
		memset(keep[8 + i], 2, 100);
	}
}

void churn(void)
{
	for (int i = 0; i < 5000; i++) {
		char *p = malloc(32 + (i % 512));
		p[0] = (char)i;
		char *q = calloc(4, 16);
		q = realloc(q, 256);
		free(p);
		free(q);
	}
}

int main(int argc, char **argv)
{
	double linger = argc > 2 ? atof(argv[2]) : 1.5;

	if (argc > 1 && strcmp(argv[1], "wait") == 0) {
		signal(SIGUSR1, on_usr1);
		printf("ready %d\n", getpid());
		fflush(stdout);
		while (!go)
			pause();
	}
	leak_big();
	leak_small();
	churn();
	struct timespec ts = { (time_t)linger, (long)((linger - (time_t)linger) * 1e9) };
	nanosleep(&ts, NULL);
	churn();
	printf("done\n");
	fflush(stdout);
	return 0;
}
