/*
 * The library dlleak.c loads with dlopen once it runs: built with -shared -fPIC by the test.
 * plugin_leak leaks 4 x 1000 bytes.
 */
#include <stdlib.h>
#include <string.h>

static void *keep[4];

void plugin_leak(void)
{
	for (int i = 0; i < 4; i++) {
		keep[i] = malloc(1000);
		memset(keep[i], 3, 1000);
	}
}
