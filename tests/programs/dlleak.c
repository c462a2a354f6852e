/*
 * A process that leaks from a library it loads with dlopen after it has started, for
 * kmemleak-lite's tests: `dlleak LIBRARY [wait]`. With "wait", it first says "ready" and waits
 * for SIGUSR1 (so a tracer can attach with -p before the library is mapped). It then dlopens
 * LIBRARY, calls its plugin_leak (4 x 1000 bytes, see dlplugin.c), lingers 0.3 s (the library
 * stays mapped: no dlclose) and exits.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (argc > 2 && strcmp(argv[2], "wait") == 0) {
		signal(SIGUSR1, on_usr1);
		printf("ready %d\n", getpid());
		fflush(stdout);
		while (!go)
			pause();
	}
	void *lib = dlopen(argv[1], RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "dlleak: %s\n", dlerror());
		return 3;
	}
	void (*leak)(void) = (void (*)(void))dlsym(lib, "plugin_leak");
	if (!leak)
		return 4;
	leak();
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	return 0;
}
