/*
 * Execs with arguments that are string literals the program never touched before the exec, so
 * the pages of .rodata that hold them are not resident yet: a tracer that reads argv at
 * sys_enter finds them unreadable (a BPF program cannot fault a page in). usage:
 *   literal_exec m   execl from the main thread
 *   literal_exec t   execl from a second thread
 *   literal_exec f   fexecve (execveat with AT_EMPTY_PATH) of /bin/true
 *   literal_exec x   an exec that fails (no such program)
 *   literal_exec e   an exec whose argv pointer is bad (fails with EFAULT: no argument is readable)
 * The mode is compared as one character (an immediate, not a string in .rodata). Each run
 * first sleeps 20 ms, so that it outlives execsnoop -d 1.
 * Build: cc -O1 -pthread -o literal_exec literal_exec.c
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void exec_literals(void)
{
	execl("/bin/true", "true", "coretrace-literal-one", "coretrace literal two", (char *)0);
	_exit(127);
}

static void *from_thread(void *unused)
{
	(void)unused;
	exec_literals();
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec pause_20ms = {0, 20 * 1000 * 1000};
	pthread_t thread;
	int fd;

	if (argc < 2)
		return 2;
	nanosleep(&pause_20ms, 0);
	switch (argv[1][0]) {
	case 'm':
		exec_literals();
		break;
	case 't':
		if (pthread_create(&thread, 0, from_thread, 0))
			return 1;
		for (;;)
			pause(); /* the exec in the other thread ends this one */
	case 'f': {
		char *const args[] = {"true", "coretrace-literal-fd", 0};

		fd = open("/bin/true", O_RDONLY);
		if (fd < 0)
			return 1;
		fexecve(fd, args, environ);
		_exit(127);
	}
	case 'x':
		execl("/nonexistent/coretrace-literal-missing", "missing", "coretrace-literal-failed",
		      (char *)0);
		return 0; /* the exec failed, as meant */
	case 'e':
		syscall(SYS_execve, "/bin/true", (char **)1, (char **)0);
		return 0; /* EFAULT, as meant */
	}
	return 2;
}
