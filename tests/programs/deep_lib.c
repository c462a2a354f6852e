/*
 * The library of deep_dl.c: it calls back into the program, so that a leak's stack crosses it.
 * Built with the compiler's defaults (-O2: no frame pointers).
 * Build: cc -O2 -shared -fPIC -o deep_lib deep_lib.c
 */
static volatile unsigned long work;

__attribute__((noinline)) void through_lib(void (*callback)(int), int i)
{
	callback(i);
	work = work + 1;
}
