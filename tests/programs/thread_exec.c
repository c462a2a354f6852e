/*
 * Execs from a thread that is not the process's main thread: the kernel then gives the calling
 * thread the process id (the old leader dies), which a tracer that looks exec up by thread id
 * misses. usage: thread_exec PROGRAM [ARGS...]
 * Build: cc -O1 -pthread -o thread_exec thread_exec.c
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static char **exec_argv;

static void *exec_from_thread(void *unused)
{
	(void)unused;
	execv(exec_argv[0], exec_argv);
	perror("execv");
	_exit(127);
}

int main(int argc, char **argv)
{
	pthread_t thread;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
		return 2;
	}
	exec_argv = argv + 1;
	if (pthread_create(&thread, NULL, exec_from_thread, NULL))
		return 1;
	for (;;)
		pause(); /* the exec in the other thread ends this thread */
}
