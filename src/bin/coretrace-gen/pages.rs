//! What a man page says beyond the options clap knows: for each tool its description,
//! requirements, output fields, cost and exit statuses, from the README and docs/benchmarks.md.
//! Paragraphs are plain text (escaped when written); `coretrace-gen` adds NAME, SYNOPSIS,
//! OPTIONS and EXAMPLES from the tool's command line.

pub struct Page {
    pub tool: &'static str,
    pub description: &'static [&'static str],
    /// Minimum kernel and why; the capabilities, by mode.
    pub requirements: &'static [&'static str],
    /// (column, meaning with its unit)
    pub fields: &'static [(&'static str, &'static str)],
    pub overhead: &'static [&'static str],
    /// Exit statuses beyond the ones every tool shares.
    pub exit_status: &'static [(&'static str, &'static str)],
    /// The tools of BCC and libbpf-tools that do the same job.
    pub see_also: &'static [&'static str],
}

/// Every tool's kernel needs BTF.
pub const BTF: &str = "A kernel with BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y); \
no kernel headers and no compiler. If tracefs is not mounted, the tool mounts it, which needs \
CAP_SYS_ADMIN once. Run the tool with --check first on an unfamiliar host: it prints what the \
kernel offers and exits 1 with the reason when the tool cannot run.";

pub const SHARED_EXIT: &[(&str, &str)] = &[
    ("0", "Success (also when stdout is a pipe that was closed, as in TOOL | head)."),
    ("1", "An error, printed as one line naming the problem and the fix; with --check: the tool cannot run here."),
    ("2", "A usage error: an unknown option or an invalid value."),
    ("3", "With --fail-on-loss: events were lost (the causes are printed at exit either way)."),
];

pub const PAGES: &[Page] = &[
    Page {
        tool: "execsnoop",
        description: &[
            "execsnoop traces exec() calls: which programs start, by whom, with what arguments, and whether the exec worked. Every exec that succeeds is one row, whichever thread of a process called it; with -x failed execs are shown too, with the negative errno.",
            "With -d MS it reports instead, when each process exits, the processes that lived at least MS milliseconds, with their age and exit status: the programs that mattered, without the noise of short-lived ones.",
            "Filters (-u, -c) run in the kernel. Nothing is lost silently: every event that cannot be shown is counted by cause and reported at exit with the option that fixes it.",
        ],
        requirements: &[
            "Linux 5.8 or later (BPF ring buffer); before 6.1, -d keeps its table preallocated.",
            "Root, or CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH (to read tracepoint ids under /sys/kernel/tracing, mode 0700).",
        ],
        fields: &[
            ("TIME", "With -T: wall-clock time of the exec, HH:MM:SS."),
            ("TIME(s)", "With -t: seconds since execsnoop started."),
            ("UID", "With -U: the user id of the caller."),
            ("PCOMM", "The command name of the process (15 bytes at most, as the kernel keeps it)."),
            ("PID", "The process id."),
            ("PPID", "The parent's process id."),
            ("RET", "0, or the negative errno of a failed exec (with -x)."),
            ("AGE(ms)", "With -d: how long the process lived after the exec, in milliseconds."),
            ("EXIT", "With -d: code N, or signal N (NAME)."),
            ("ARGS", "The path passed to exec, then argv[1..]; \" ...\" marks arguments cut at --max-args or at 3584 bytes in all. [args unreadable] marks an exec whose arguments could not be read (counted at exit). Control characters and invalid UTF-8 are printed as \\xNN."),
        ],
        overhead: &[
            "On an exec storm, measured side by side on the same machine, execsnoop used about 1/14 of the CPU per traced exec of libbpf-tools' execsnoop (docs/benchmarks.md). The kernel-side cost is a few tracepoint programs per exec.",
        ],
        exit_status: &[],
        see_also: &["execsnoop-bpfcc(8)"],
    },
    Page {
        tool: "exitsnoop",
        description: &[
            "exitsnoop traces process exits: who ended, how old it was, and with what exit code or signal. With -T thread exits are shown too; -x keeps only failures (a non-zero code or a death by signal).",
            "Filters (-p, -c, -d) run in the kernel. Events that cannot be shown are counted by cause and reported at exit.",
        ],
        requirements: &[
            "Linux 5.8 or later (BPF ring buffer).",
            "Root, or CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH.",
        ],
        fields: &[
            ("TIME", "With -t: wall-clock time of the exit, HH:MM:SS."),
            ("PCOMM", "The command name of the process."),
            ("PID", "The process id."),
            ("PPID", "The parent's process id."),
            ("TID", "The thread id (the PID for a process)."),
            ("AGE(s)", "How long the process (or thread) lived, in seconds."),
            ("EXIT", "code N, or signal N (NAME), with \", core dumped\" when it dumped core."),
        ],
        overhead: &[
            "One tracepoint program per exiting task; the output is one ring-buffer record per exit. Negligible unless processes end at a very high rate.",
        ],
        exit_status: &[],
        see_also: &["exitsnoop-bpfcc(8)"],
    },
    Page {
        tool: "unlinksnoop",
        description: &[
            "unlinksnoop traces file and directory removals (unlink, unlinkat, rmdir): who removed which file, by its full path, whether it worked, and how long it took.",
            "The path is resolved in the kernel at the time of the call, against the caller's working directory or the directory file descriptor it passed, so it is right even when the process is gone before the line is printed. \"...\" in front marks a path deeper than the 64 levels walked.",
            "It attaches with fentry/fexit on do_unlinkat and do_rmdir where the kernel allows it (this also sees io_uring's removals), else with kprobes on the same functions, else with the syscall tracepoints; -v says which, --attach forces one.",
        ],
        requirements: &[
            "Linux 5.8 or later (BPF ring buffer); kprobes need CONFIG_KPROBES.",
            "Root, or CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH (the last only for the tracepoint method).",
        ],
        fields: &[
            ("TIME", "With -T: wall-clock time, HH:MM:SS; with -t, seconds since start."),
            ("PID", "The process id."),
            ("COMM", "The command name of the process."),
            ("UID", "The user id of the caller."),
            ("RET", "0, or the errno name (ENOENT, EACCES, ...)."),
            ("LAT(us)", "From entry to return of the removal, in microseconds."),
            ("PATH", "The full path removed. Control characters and invalid UTF-8 are printed as \\xNN."),
        ],
        overhead: &[
            "Under an unlink storm unlinksnoop used about a fifth of bpftrace's CPU per event, with nothing lost by either at 400,000 removals, while also resolving full paths in the kernel (docs/benchmarks.md).",
        ],
        exit_status: &[],
        see_also: &["opensnoop-bpfcc(8)", "bpftrace(8)"],
    },
    Page {
        tool: "kmemleak-lite",
        description: &[
            "kmemleak-lite reports outstanding (never freed) allocations by call stack, in the format of BCC's memleak. In kernel mode (the default) it hooks the kmem tracepoints (kmalloc, kmem_cache_alloc and their frees; --pages adds page allocations). In user mode (-p PID or -c COMMAND) it hooks the process's allocator with uprobes: malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, mmap and munmap.",
            "Frames are named from kallsyms for the kernel and from the ELF and DWARF of the mapped files for user code (function+offset, and file:line where there is debug information). User stacks are walked by frame pointer: build the program with -fno-omit-frame-pointer.",
            "With -c, the command is started held before its exec until the probes are in; it cannot outlive the tool, and its exit status becomes the tool's.",
        ],
        requirements: &[
            "Linux 5.8 or later; user mode needs uprobes (CONFIG_UPROBE_EVENTS).",
            "Kernel mode: root, or CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH and CAP_SYSLOG (kernel symbol addresses in /proc/kallsyms). User mode: CAP_SYS_ADMIN (the kernel allows uprobes only with it), and CAP_SYS_PTRACE for another user's process.",
        ],
        fields: &[
            ("[HH:MM:SS] Top N stacks", "One report, every -i seconds and at exit."),
            ("BYTES bytes in N allocations from stack", "What one call stack holds: bytes allocated and not freed, and the number of those allocations."),
            ("frame", "One stack frame per line, innermost first: function+offset, (file:line) where known, [module]."),
            ("addr/size/age", "With -a: each outstanding allocation's address, size in bytes and age in milliseconds."),
        ],
        overhead: &[
            "Kernel mode slowed an allocation-heavy workload about 3.5 times (a kernel stack is captured on every allocation; bpftrace doing only that costs 3.2 times). -s N (sample) and -z/-Z (size range) cut it (docs/benchmarks.md).",
        ],
        exit_status: &[
            ("N", "With -c: the command's status as a shell gives it (exit code N: N; killed by signal S: 128+S), unless the tool itself failed."),
        ],
        see_also: &["memleak-bpfcc(8)"],
    },
    Page {
        tool: "uprobe-lat",
        description: &[
            "uprobe-lat times user-space functions: for every function a target matches, a log2 histogram of its latency with count, mean, max and percentiles (p50, p90, p99, p99.9). A uprobe at entry records the time on a small per-thread stack, a uretprobe at return pops it, so recursion and traced functions calling each other are each timed right.",
            "By default every call crosses the ring buffer into an HDR histogram in user space (exact percentiles); --kernel-hist sums log2 histograms in the kernel instead, the cheapest mode for hot functions.",
            "Targets are PATH:FUNC (a program or library by path), LIB:FUNC (a library found as the dynamic loader would: libc:malloc) or :FUNC (the program of -p PID). FUNC may be a glob; each match gets its own histogram.",
            "A uprobe traps into the kernel twice per call. At start-up uprobe-lat measures that cost on an empty function of its own and prints it beside the results (--no-calibrate skips it).",
        ],
        requirements: &[
            "Linux 5.8 or later with uprobes (CONFIG_UPROBE_EVENTS). From 5.15 BPF attach cookies let one program pair time any number of functions; before, a program pair per function times at most 64 at once. From 6.6 multi-uprobe links attach many functions at once.",
            "CAP_SYS_ADMIN (the kernel allows uprobes only with it), and CAP_SYS_PTRACE for another user's process with -p.",
        ],
        fields: &[
            ("usecs (nsecs, msecs)", "The histogram's unit (-u, -n, -m): each row is a latency range, low -> high."),
            ("count", "Calls whose latency fell in the range."),
            ("distribution", "The count as a bar, relative to the largest row."),
            ("count mean p50 p90 p99 p99.9 max", "Calls, and their mean, percentiles and maximum latency, with units."),
            ("probe overhead", "Time the probes add per call to the traced program, and how much of it lands inside a measured latency."),
            ("TIME PID TID COMM FUNC LAT", "With --slower-than: one line per call at least that slow."),
        ],
        overhead: &[
            "The traced program pays about what libbpf-tools' funclatency costs it (0.96 times in ring-buffer mode, 0.98 with --kernel-hist, same run): the uprobe trap is nearly all of it, about 10 to 15 microseconds per call under nested virtualisation, a few or less on bare metal. 1000 functions attach in 0.04 s and detach in 0.2 s with multi-uprobe links (docs/benchmarks.md).",
        ],
        exit_status: &[],
        see_also: &["funclatency-bpfcc(8)", "funcslower-bpfcc(8)"],
    },
];
