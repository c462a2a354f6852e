/*
 * The main thread ends first (pthread_exit); another thread ends the process 300 ms later with
 * exit(7). The process ends then, not when its main thread did.
 * Build: cc -O1 -pthread -o leader_exits_first leader_exits_first.c
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *last_thread(void *unused)
{
	(void)unused;
	usleep(300 * 1000);
	exit(7);
}

int main(void)
{
	pthread_t thread;

	if (pthread_create(&thread, NULL, last_thread, NULL))
		return 1;
	pthread_exit(NULL);
}
