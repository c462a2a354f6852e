//! What the man page of kmemleak-lite says beyond the options (coretrace-gen).

pub const PAGE: crate::tools::Page = crate::tools::Page {
    description: &[
        "kmemleak-lite reports outstanding (never freed) allocations by call stack, in the format of BCC's memleak. In kernel mode (the default) it hooks the kmem tracepoints (kmalloc, kmem_cache_alloc and their frees; --pages adds page allocations). In user mode (-p PID or -c COMMAND) it hooks the process's allocator with uprobes: malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, mmap and munmap.",
        "Frames are named from kallsyms for the kernel and from the ELF and DWARF of the mapped files for user code (function+offset, and file:line where there is debug information). User stacks are walked by frame pointer where the code keeps them, and from the binaries' own unwind tables (.eh_frame, .debug_frame) on a copy of the stack where it does not (--unwind auto, the default): programs and libraries built without frame pointers need no rebuild. Code with no unwind tables (JIT-compiled code, assembly without CFI directives) is crossed only by its frame pointers, and a stack deeper than the copy (--stack-bytes) is marked cut, never silently short.",
        "With -c, the command is started held before its exec until the probes are in; it cannot outlive the tool, and its exit status becomes the tool's.",
    ],
    requirements: &[
        "User mode needs uprobes (CONFIG_UPROBE_EVENTS).",
        "Kernel mode: root, or CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH and CAP_SYSLOG (kernel symbol addresses in /proc/kallsyms). User mode: CAP_SYS_ADMIN (the kernel allows uprobes only with it), and CAP_SYS_PTRACE for another user's process.",
    ],
    fields: &[
        ("[HH:MM:SS] Top N stacks", "One report, every -i seconds and at exit."),
        ("BYTES bytes in N allocations from stack", "What one call stack holds: bytes allocated and not freed, and the number of those allocations."),
        ("frame", "One stack frame per line, innermost first: function+offset, (file:line) where known, [module]."),
        ("addr/size/age", "With -a: each outstanding allocation's address, size in bytes and age in milliseconds."),
    ],
    overhead: &[
        "Kernel mode captures a kernel stack on every allocation, which slows an allocation-heavy workload several times (about what bpftrace capturing only the stacks costs); -s N (sample) and -z/-Z (size range) cut it (the measured figures are in the README's Performance section and docs/benchmarks.md).",
    ],
    exit_status: &[
        ("N", "With -c: the command's status as a shell gives it (exit code N: N; killed by signal S: 128+S), unless the tool itself failed."),
    ],
    see_also: &["memleak-bpfcc(8)"],
};
