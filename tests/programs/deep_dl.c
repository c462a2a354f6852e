/*
 * Leaks through a library whose file is gone before it is loaded (as after a package upgrade):
 * it opens LIBRARY, deletes it, and loads it by its descriptor, so that its mapping is of a
 * deleted file from the start and no tool can read its unwind tables or symbols. Each request
 * leaks a block through main -> through_lib (the library) -> store -> malloc.
 * Run: deep_dl LIBRARY REQUESTS MARKER: says "deep: leaked" on stdout once it has leaked, then
 * stays until the file MARKER exists (at most 60 s).
 * Build: cc -O2 -g -o deep_dl deep_dl.c
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *volatile kept[1000];
static volatile unsigned long work;

__attribute__((noinline)) void store(int i)
{
	kept[i % 1000] = malloc(64);
	work = work + 1;
}

int main(int argc, char **argv)
{
	char path[64];
	void (*through)(void (*)(int), int);
	void *lib;
	int fd;

	if (argc < 4)
		return 2;
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || unlink(argv[1]) != 0) {
		perror(argv[1]);
		return 3;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	lib = dlopen(path, RTLD_NOW);
	through = lib ? (void (*)(void (*)(int), int))dlsym(lib, "through_lib") : NULL;
	if (!through) {
		fprintf(stderr, "deep_dl: %s\n", dlerror());
		return 4;
	}
	for (int i = 0; i < atoi(argv[2]) && i < 1000; i++)
		through(store, i);
	printf("deep: leaked\n");
	fflush(stdout);
	for (int i = 0; i < 6000 && access(argv[3], F_OK) != 0; i++)
		usleep(10000);
	return 0;
}
