/*
 * An unlink storm: creates and removes a file in the current directory COUNT times, as fast as
 * it can (or at RATE removals per second), with unlinkat(AT_FDCWD, relative name), the call
 * `rm` makes. Prints how many removals it made and how long they took.
 *
 * usage: unlink-storm COUNT [RATE] [MARKER]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 100000;
	double rate = argc > 2 ? atof(argv[2]) : 0;
	const char *name = argc > 3 ? argv[3] : "unlink-storm-file";
	double start = now();
	long i;

	for (i = 0; i < count; i++) {
		int fd = openat(AT_FDCWD, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

		if (fd < 0 || close(fd) || unlinkat(AT_FDCWD, name, 0)) {
			perror(name);
			return 1;
		}
		if (rate > 0 && (i & 255) == 255) {
			double ahead = (i + 1) / rate - (now() - start);

			if (ahead > 0)
				usleep(ahead * 1e6);
		}
	}
	double secs = now() - start;
	printf("%ld %.3f\n", count, secs);
	return 0;
}
