/*
 * The library dlleak.c loads with dlopen once it runs. plugin_leak leaks 4 x 1000 bytes.
 * Build: cc -shared -fPIC -o dlplugin dlplugin.c
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
