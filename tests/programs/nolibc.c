/* A static program with no libc at all (built with -static -nostdlib): it only pauses. */
void _start(void)
{
	for (;;)
		__asm__ volatile("mov $34, %%eax\n\tsyscall" ::: "rax", "rcx", "r11", "memory");
}
