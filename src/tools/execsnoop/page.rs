//! What the man page of execsnoop says beyond the options (coretrace-gen).

pub const PAGE: crate::tools::Page = crate::tools::Page {
    description: &[
        "execsnoop traces exec() calls: which programs start, by whom, with what arguments, and whether the exec worked. Every exec that succeeds is one row, whichever thread of a process called it; with -x failed execs are shown too, with the negative errno.",
        "With -d MS it reports instead, when each process exits, the processes that lived at least MS milliseconds, with their age and exit status: the programs that mattered, without the noise of short-lived ones.",
        "Filters (-u, -c) run in the kernel. Nothing is lost silently: every event that cannot be shown is counted by cause and reported at exit with the option that fixes it.",
    ],
    requirements: &[
        "Before Linux 6.1, -d keeps its table preallocated.",
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
        "A few tracepoint programs per exec in the kernel, and one record per exec to user space. On an exec storm execsnoop uses much less CPU per traced exec than libbpf-tools' execsnoop (the measured figures are in the README's Performance section and docs/benchmarks.md).",
    ],
    exit_status: &[],
    see_also: &["execsnoop-bpfcc(8)"],
};

