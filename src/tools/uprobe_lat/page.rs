//! What the man page of uprobe-lat says beyond the options (coretrace-gen).

pub const PAGE: crate::tools::Page = crate::tools::Page {
    description: &[
        "uprobe-lat times user-space functions: for every function a target matches, a log2 histogram of its latency with count, mean, max and percentiles (p50, p90, p99, p99.9). A uprobe at entry records the time on a small per-thread stack, a uretprobe at return pops it, so recursion and traced functions calling each other are each timed right.",
        "By default every call crosses the ring buffer into an HDR histogram in user space (exact percentiles); --kernel-hist sums log2 histograms in the kernel instead, the cheapest mode for hot functions.",
        "Targets are PATH:FUNC (a program or library by path), LIB:FUNC (a library found as the dynamic loader would: libc:malloc) or :FUNC (the program of -p PID). FUNC may be a glob; each match gets its own histogram.",
        "A uprobe traps into the kernel twice per call. At start-up uprobe-lat measures that cost on an empty function of its own and prints it beside the results (--no-calibrate skips it).",
    ],
    requirements: &[
        "Uprobes (CONFIG_UPROBE_EVENTS). From 5.15 BPF attach cookies let one program pair time any number of functions; before, a program pair per function times at most 64 at once. From 6.6 multi-uprobe links attach many functions at once.",
        "CAP_SYS_ADMIN (the kernel allows uprobes only with it), and CAP_SYS_PTRACE for another user's process with -p.",
    ],
    fields: &[
        ("usecs (nsecs, msecs)", "The histogram's unit (-u, -n, -m): each row is a latency range, low -> high."),
        ("count", "Calls whose latency fell in the range."),
        ("distribution", "The count as a bar, relative to the largest row."),
        ("count mean p50 p90 p99 p99.9 max", "Calls, and their mean, percentiles and maximum latency, with units."),
        ("probe overhead", "Time the probes add per call to the traced program, and how much of it lands inside a measured latency."),
        ("TIME PID TID COMM FUNC LAT", "With --slower-than: one line per call at least that slow."),
        ("stack (indented lines)", "With --stack: under a slow call's line, its caller and that one's callers, one frame a line (function+offset (file:line) [binary]), unwound from a copy of the stack's top with the binaries' unwind tables (no frame pointers needed). [cut: ...] ends a stack deeper than --stack-bytes; [stack lost ...] says its copy found no room in the ring buffer (counted as stack_lost)."),
    ],
    overhead: &[
        "The traced program pays about what libbpf-tools' funclatency costs it, in either mode: the uprobe trap is nearly all of it, microseconds per call. With multi-uprobe links, many functions attach and detach at once (the measured figures are in the README's Performance section and docs/benchmarks.md).",
    ],
    exit_status: &[],
    see_also: &["funclatency-bpfcc(8)", "funcslower-bpfcc(8)"],
};
