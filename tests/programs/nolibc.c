/* A static program with no libc at all (built with -static -nostdlib): it only pauses.
 * x86-64: pause(2); arm64 has no pause, so ppoll(NULL, 0, NULL, NULL), which waits the same way. */
void _start(void)
{
	for (;;) {
#if defined(__x86_64__)
		__asm__ volatile("mov $34, %%eax\n\tsyscall" ::: "rax", "rcx", "r11", "memory");
#elif defined(__aarch64__)
		register long x8 __asm__("x8") = 73; /* __NR_ppoll */
		register long x0 __asm__("x0") = 0;
		register long x1 __asm__("x1") = 0;
		register long x2 __asm__("x2") = 0;
		register long x3 __asm__("x3") = 0;
		__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
#else
#error "nolibc.c: add this architecture's pause"
#endif
	}
}
