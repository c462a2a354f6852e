/*
 * A process with its own allocator (a bump allocator in the executable, so kmemleak-lite probes
 * it), one call of which can be held: a thread sits inside malloc(HOLD) while main makes N
 * allocations, so with kmemleak-lite --max-threads 1 each of them finds the table of calls in
 * progress full. Nothing is ever reused; free only counts. Ends by printing on stderr
 * "allocs A frees F": how many allocation calls it made and how many non-NULL blocks it freed.
 *   heldalloc N
 * Build: cc -O0 -g -fno-omit-frame-pointer -fno-inline -pthread -o heldalloc heldalloc.c
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLD 4242
#define ARENA (16 << 20)

static char arena[ARENA] __attribute__((aligned(16)));
static atomic_size_t used;
static atomic_long allocs, frees;
static atomic_int inside, released;
static void *volatile sink;

static void *bump(size_t n)
{
	size_t off;

	n = (n + 15) & ~(size_t)15;
	off = atomic_fetch_add(&used, n);
	return off + n <= ARENA ? arena + off : NULL;
}

void *malloc(size_t n)
{
	atomic_fetch_add(&allocs, 1);
	if (n == HOLD) {
		atomic_store(&inside, 1);
		while (!atomic_load(&released))
			usleep(1000);
	}
	return bump(n);
}

void *calloc(size_t a, size_t b)
{
	atomic_fetch_add(&allocs, 1);
	return bump(a * b); /* the arena starts zeroed and is never reused */
}

void *realloc(void *p, size_t n)
{
	void *q;

	atomic_fetch_add(&allocs, 1);
	if (p)
		atomic_fetch_add(&frees, 1);
	q = bump(n);
	if (q && p) {
		size_t room = (size_t)(arena + ARENA - (char *)p);
		memcpy(q, p, n < room ? n : room);
	}
	return q;
}

void free(void *p)
{
	if (p)
		atomic_fetch_add(&frees, 1);
}

static void *holder(void *arg)
{
	(void)arg;
	sink = malloc(HOLD);
	return NULL;
}

static char *decimal(char *end, long v)
{
	*--end = '\0';
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0)
		_exit(2);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0;
	pthread_t t;
	char a[24], f[24];

	if (pthread_create(&t, NULL, holder, NULL))
		return 2;
	while (!atomic_load(&inside))
		usleep(1000);
	for (int i = 0; i < n; i++)
		sink = malloc(64);
	atomic_store(&released, 1);
	pthread_join(t, NULL);
	say("allocs ");
	say(decimal(a + sizeof(a), atomic_load(&allocs)));
	say(" frees ");
	say(decimal(f + sizeof(f), atomic_load(&frees)));
	say("\n");
	_exit(0);
}
