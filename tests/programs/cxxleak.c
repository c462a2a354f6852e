/*
 * C++'s operator new/new[] and delete/delete[], called by their mangled names from C (no C++
 * compiler needed): leak_new 5 x new(48), leak_new_array 2 x new[](1000); churn() news and
 * deletes thousands of blocks (never reported). libstdc++'s operators allocate with malloc.
 * Build: cc -O0 -g -fno-omit-frame-pointer -fno-inline -Wl,--no-as-needed -lstdc++
 */
#include <stddef.h>
#include <time.h>

void *_Znwm(size_t);      /* operator new(size_t) */
void *_Znam(size_t);      /* operator new[](size_t) */
void _ZdlPvm(void *, size_t); /* operator delete(void *, size_t) */
void _ZdaPv(void *);      /* operator delete[](void *) */

static void *volatile keep[8];

void leak_new(void)
{
	for (int i = 0; i < 5; i++)
		keep[i] = _Znwm(48);
}

void leak_new_array(void)
{
	for (int i = 0; i < 2; i++)
		keep[5 + i] = _Znam(1000);
}

void churn(void)
{
	for (int i = 0; i < 2000; i++) {
		_ZdlPvm(_Znwm(48), 48);
		_ZdaPv(_Znam(1000));
	}
}

int main(void)
{
	struct timespec ts = { 1, 200000000 };

	leak_new();
	leak_new_array();
	churn();
	nanosleep(&ts, NULL);
	churn();
	return 0;
}
