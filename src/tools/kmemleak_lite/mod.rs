//! kmemleak-lite: which call stacks hold memory that was never freed, in the kernel (kmem
//! tracepoints) or in one user process (uprobes on its allocator). The BPF side keeps every
//! outstanding allocation in a map; user space reads that map at each report, so no event
//! crosses the ring buffer per allocation (the only records are user mode's rare wake-ups when
//! the dynamic loader maps a library).
//!
//! Here: the options, the loss causes and the hooks. By concern: `target` (which file holds a
//! process's or a command's allocator), `command` (-c's command, held before its exec),
//! `programs` (the BPF side sized, its mode's programs chosen and attached), `sequence` (the
//! driver's phases), `report` (the periodic report), `symbols` and `unwind` (frames named, and
//! stacks walked with unwind tables), `page` (the man page's prose).

mod command;
mod page;
mod programs;
mod report;
mod sequence;
mod target;
mod unwind;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use libbpf_rs::skel::OpenSkel;

use crate::cli::{self, parse_pid, parse_seconds, CommonArgs};
use crate::consumer::LossCause;
use crate::load::driver::Session;
use crate::load::{attach, setup};

/// How an allocation can go unreported (LOSS_* in kmemleak_lite.h). The ring
/// buffer (slot 0) is not among them: no allocation travels it, the reports read the maps. (A
/// lost loader wake-up only delays naming a new library's frames: each report re-reads the maps.)
pub static LOSSES: [LossCause; 4] = [
    LossCause {
        slot: Some(LOSS_ALLOCS_FULL),
        key: "allocs_full",
        what: "allocations not tracked: the table of outstanding allocations was full",
        advice: "raise --max-allocs, or narrow with -z/-Z or -s",
    },
    LossCause {
        slot: Some(LOSS_STACK_LOST),
        key: "stack_id_lost",
        what:
            "allocations shown without their stack: the stack table was full or two stacks collided",
        advice: "raise --max-stacks",
    },
    LossCause {
        slot: Some(LOSS_PENDING_FULL),
        key: "pending_full",
        what: "allocator calls not followed: too many threads were inside the allocator at once",
        advice: "raise --max-threads",
    },
    LossCause {
        slot: Some(LOSS_SAMPLE_LOST),
        key: "stack_copy_lost",
        what: "allocations shown at their call site only: their copy of the stack (--unwind dwarf) did not fit the ring buffer",
        advice: "lower --stacks-per-second or --stack-bytes",
    },
];

/// Kernel mode, counted in user space from the kernel's count of skipped runs of the kmem
/// programs: a tracepoint program does not run while another BPF tracing program is running on
/// that CPU, and interrupts (RCU callbacks, network receive) allocate and free inside such runs
/// all the time. A missed allocation goes untracked; a missed free leaves its allocation listed.
pub static PROBE_SKIPPED: LossCause = LossCause {
    slot: None,
    key: "probe_skipped",
    what: "allocations or frees not seen: the kernel skipped the probe while another BPF program ran on that CPU (a missed free shows as a leak)",
    advice: "trust a leak that persists across several reports",
};

/// The smallest ring (or perf) buffer: the reports read the maps; only the loader's wake-ups
/// (8 bytes each, rare) travel it.
const EVENTS_BYTES: u32 = 4096;

/// The ring (or perf) buffer with --unwind dwarf, where each stack taken travels as a copy of
/// up to --stack-bytes: 512 of 16 KiB, a second's worth at the default budget for a program
/// with a few busy call sites, read as they come.
const SAMPLES_BYTES: u32 = 8 << 20;

/// The shared options kmemleak-lite refuses, with why (see `cli::parse_refusing`).
pub const REFUSED: &[(&str, &str)] = &[(
    "ringbuf_size",
    "--ringbuf-size does not apply to kmemleak-lite: no event travels a ring buffer (the reports read the kernel's tables); size those with --max-allocs, --max-stacks, --max-threads",
)];
use crate::skel::kmemleak_lite::defs::{
    DEFAULT_MAX_STACKS, LOSS_ALLOCS_FULL, LOSS_PENDING_FULL, LOSS_SAMPLE_LOST, LOSS_STACK_LOST,
};
use crate::skel::kmemleak_lite::types::{alloc_info, combined_info, kstack_info};

use programs::{attach_allocator, open_sized};

// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for alloc_info {}
// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for combined_info {}
// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for kstack_info {}


/// --stacks-per-second's default: a call site that allocates less often in a process keeps
/// every stack (a burst of a few hundred leaks has them all); a hot one (an open/close loop
/// allocates 100000-200000 times a second at each of its two) pays for one stack in a hundred
/// or more.
const DEFAULT_STACKS_PER_SECOND: u32 = 1000;

#[derive(Parser, Debug)]
#[command(
    mut_arg("ringbuf_size", |a| a.hide(true)),
    name = TOOL.name,
    version,
    about = "Outstanding (never freed) allocations by call stack, in the kernel or in one process",
    after_help = "Examples:\n  kmemleak-lite                      # kernel allocations (kmalloc, kmem_cache), report every 5 s\n  kmemleak-lite --pages -i 10        # also whole pages, report every 10 s\n  kmemleak-lite -p 181               # allocations of process 181 (malloc, calloc, realloc, mmap ...)\n  kmemleak-lite -c './server --port 8080'   # start a command, report when it exits\n  kmemleak-lite -p 181 -o 5000 -T 5  # only allocations older than 5 s, top 5 stacks\n  kmemleak-lite -p 181 -a            # also list each allocation (address, size, age)\n  kmemleak-lite -z 4096 -s 10        # only allocations of 4 KiB or more, one in 10\n  kmemleak-lite --combined           # per-stack totals kept in the kernel: cheapest to report"
)]
pub struct Args {
    /// Trace the allocator of this process (user mode)
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = parse_pid, conflicts_with = "command")]
    pub pid: Option<u32>,

    /// Start COMMAND, trace its allocator, and report when it exits (user mode)
    #[arg(short = 'c', long = "command", value_name = "COMMAND")]
    pub command: Option<String>,

    /// Report every SECS seconds (and once more at exit)
    #[arg(short = 'i', long = "interval", value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    pub interval: Duration,

    /// Show the N stacks holding the most bytes
    #[arg(short = 'T', long = "top", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub top: u32,

    /// Only count allocations at least MS milliseconds old (default 500; the report made
    /// when the traced process has ended shows every allocation it left, unless -o is given)
    #[arg(short = 'o', long = "older", value_name = "MS", value_parser = parse_older)]
    pub older: Option<u64>,

    /// List every outstanding allocation too (address, size, age)
    #[arg(short = 'a', long = "show-allocs")]
    pub show_allocs: bool,

    /// Ignore allocations smaller than BYTES (filtered in the kernel)
    #[arg(short = 'z', long = "min-size", value_name = "BYTES")]
    pub min_size: Option<u64>,

    /// Ignore allocations larger than BYTES (filtered in the kernel)
    #[arg(short = 'Z', long = "max-size", value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_size: Option<u64>,

    /// Track only one allocation in N (cuts overhead; the counts are then of the sample)
    #[arg(short = 's', long = "sample-rate", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub sample_rate: u32,

    /// Kernel mode, and user mode with --unwind dwarf: take the full stack of at most N
    /// allocations a second per call site and process; the rest are still tracked and counted,
    /// under their call site alone (taking a stack is most of an allocation's cost). 0: take
    /// every stack. Page allocations (--pages) always have theirs [default: 1000]
    #[arg(long = "stacks-per-second", value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub stacks_per_second: Option<u32>,

    /// Keep per-stack totals in the kernel and report from them (no per-allocation scan; ages
    /// are not known per stack, so -o does not apply)
    #[arg(long = "combined", visible_alias = "combined-only")]
    pub combined: bool,

    /// Kernel mode: track whole pages too (kmem:mm_page_alloc / mm_page_free)
    #[arg(long = "pages")]
    pub pages: bool,

    /// Size of the table of outstanding allocations; allocations past it are counted and
    /// reported as not tracked
    #[arg(long = "max-allocs", value_name = "N", default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(1..=(1 << 26)))]
    pub max_allocs: u32,

    /// Distinct call stacks recorded (about 1 KiB each); allocations past it are shown
    /// without their stack, and counted
    #[arg(long = "max-stacks", value_name = "N", default_value_t = DEFAULT_MAX_STACKS, value_parser = clap::value_parser!(u32).range(1..=(1 << 18)))]
    pub max_stacks: u32,

    /// User mode: threads followed inside the allocator at once; calls past it are counted
    /// as not followed
    #[arg(long = "max-threads", value_name = "N", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..=(1 << 22)))]
    pub max_threads: u32,

    /// User mode: how stacks are walked. fp: frame pointers, in the kernel (stops at the first
    /// function built without them); dwarf: the binaries' unwind tables (.eh_frame,
    /// .debug_frame) over a copy of the stack's top (--stack-bytes); auto: dwarf when the
    /// program lacks frame pointers or is C++ (libstdc++ has none), else fp
    #[arg(
        long = "unwind",
        value_name = "HOW",
        value_enum,
        default_value = "auto"
    )]
    pub unwind: unwind::UnwindMode,

    /// User mode with --unwind dwarf: bytes of stack copied from the stack pointer up at each
    /// allocation (1024-32768); a stack deeper than that is shown as far as it goes, marked cut
    #[arg(long = "stack-bytes", value_name = "BYTES", default_value_t = unwind::DEFAULT_STACK_BYTES,
          value_parser = unwind::parse_stack_bytes)]
    pub stack_bytes: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    /// -p or -c: the allocator of one process, not the kernel's.
    fn user_mode(&self) -> bool {
        self.pid.is_some() || self.command.is_some()
    }

    /// The stacks taken a second per call site and process (0: every one; user mode takes
    /// every stack with frame pointers).
    fn stack_budget(&self) -> u32 {
        match self.user_mode() && self.unwind != unwind::UnwindMode::Dwarf {
            true => 0,
            false => self.stacks_per_second.unwrap_or(DEFAULT_STACKS_PER_SECOND),
        }
    }
}

fn parse_older(s: &str) -> Result<u64, String> {
    let ms: u64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number of milliseconds"))?;
    if ms > 86_400_000 {
        return Err(format!("'{s}' is more than a day of milliseconds"));
    }
    Ok(ms)
}

/// What kmemleak-lite hooks in kernel mode. Both methods hook the kmem tracepoints (raw
/// tracepoint programs for the slab events); fentry adds kmem_cache_free_bulk, whose frees
/// (kfree_bulk, kfree_rcu batches, maple tree nodes) pass no tracepoint. Where fentry is
/// refused (`attach::select` falls back to the tracepoints alone), the objects freed out of
/// sight are marked in the report instead (report::kernel::unseen_free).
static KERNEL_HOOK: attach::Hook = attach::Hook {
    methods: &[attach::Method::Fentry, attach::Method::Tracepoint],
    functions: &["kmem_cache_free_bulk"],
    tracepoints: &[
        "kmem/kmalloc",
        "kmem/kfree",
        "kmem/kmem_cache_alloc",
        "kmem/kmem_cache_free",
    ],
    optional_tracepoints: &[
        "kmem/mm_page_alloc",
        "kmem/mm_page_free",
        "kmem/mm_page_free_batched",
    ],
    // The bulk-free program reads its arguments with bpf_get_func_arg (kmemleak_lite.bpf.c).
    also_needs: &[(attach::Method::Fentry, "bpf_get_func_arg (Linux 5.17)")],
};

/// What kmemleak-lite hooks with -p/-c: the process's allocator (for --check).
static USER_HOOK: attach::Hook = attach::Hook {
    methods: &[attach::Method::Uprobe],
    functions: &[],
    tracepoints: &[],
    optional_tracepoints: &[],
    also_needs: &[],
};

/// What is being traced.
/// Runs the tool; returns the exit status to end with: with -c, the command's, as a shell gives
/// it (exit code N: N, killed by signal S: 128+S); else 0.
pub fn run(args: Args) -> Result<u8> {
    if let (Some(min), Some(max)) = (args.min_size, args.max_size) {
        if min > max {
            bail!(
                "--min-size {min} is larger than --max-size {max}: give a range that is not empty"
            );
        }
    }
    let user = args.user_mode();
    if args.pages && user {
        bail!("--pages is for kernel mode: leave out -p/-c to trace kernel pages");
    }
    let mut args = args;
    if user {
        unwind::settle(&mut args)?;
    }
    // The driver's one sequence: see sequence.rs.
    crate::load::driver::sequence(&args)
}

/// What kmemleak-lite needs from the host: in kernel mode the kmem tracepoints and kernel
/// symbol addresses (to name stack frames); with -p/-c uprobes (and, with -p, the process).
fn needs(args: &Args) -> crate::load::needs::Needs {
    let user = args.user_mode();
    crate::load::needs::Needs {
        tracefs: !user,
        uprobes: user,
        kernel_symbols: !user,
        process: args.pid,
    }
}

/// `--check`'s real attempt: loads the programs of the mode asked for (`bulk`: with fentry on
/// kmem_cache_free_bulk) and attaches them (in user mode to the allocator of -p's process, or
/// of -c's program in our own process, which is not started).
fn check_attempt(args: &Args, bulk: bool) -> Result<()> {
    let user = args.user_mode();
    let (open, _) = open_sized(&session(args), args, user, bulk)?;
    let mut skel = open.load().map_err(setup::load_error)?;
    if !user {
        // Only the kernel-mode programs of this method are loaded: attach them all.
        libbpf_rs::skel::Skel::attach(&mut skel).context("attaching to the kmem tracepoints")?;
        return Ok(());
    }
    let (pid, alloc) = match (args.pid, &args.command) {
        (Some(pid), _) => (pid, target::allocator_of_pid(pid)?),
        (None, Some(line)) => {
            let argv = command::split_command(line)?;
            let exe = command::resolve_program(&argv[0])?;
            (std::process::id(), target::allocator_of_command(&exe)?)
        }
        (None, None) => unreachable!("user mode has -p or -c"),
    };
    let mut links = Vec::new();
    attach_allocator(&skel, pid, &alloc, &mut links, false)
}


/// The driver's session for kmemleak-lite: its own buffer size, since only the loader's rare
/// wake-ups travel it (the reports read the maps).
fn session(args: &Args) -> Session<'_> {
    Session {
        buffer_bytes: match args.user_mode() && args.unwind == unwind::UnwindMode::Dwarf {
            true => SAMPLES_BYTES,
            false => EVENTS_BYTES,
        },
        ..Session::new(TOOL.name, &args.common, &LOSSES)
    }
}


/// kmemleak-lite's `main`: it refuses some options with an explanation (`REFUSED`), and with
/// -c its exit status is the command's.
fn main(invoked: &'static str, args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let args = cli::parse_refusing::<Args>(TOOL.name, invoked, REFUSED, args);
    // With -c, the command's status, as a shell would give it; an error of the tool's own wins.
    let mut status = 0u8;
    let code = cli::main_with(TOOL.name, || {
        status = run(args)?;
        Ok(())
    });
    if status != 0 {
        std::process::ExitCode::from(status)
    } else {
        code
    }
}

/// kmemleak-lite in the registry (src/tools/mod.rs).
pub const TOOL: crate::tools::Tool = crate::tools::Tool {
    name: "kmemleak-lite",
    command: <Args as clap::CommandFactory>::command,
    main,
    page: page::PAGE,
    events: &[crate::output::schema::event::LEAK_REPORT],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_takes_zero_and_rejects_junk() {
        assert_eq!(parse_older("0").unwrap(), 0);
        assert_eq!(parse_older("500").unwrap(), 500);
        assert!(parse_older("-1").is_err());
        assert!(parse_older("1s").is_err());
    }

    #[test]
    fn options_as_memleak_users_type_them() {
        let args = Args::try_parse_from([
            TOOL.name,
            "-i",
            "2",
            "-T",
            "3",
            "-o",
            "100",
            "-a",
            "-z",
            "16",
            "-Z",
            "4096",
            "-s",
            "4",
            "--combined-only",
        ])
        .unwrap();
        assert_eq!(args.interval, Duration::from_secs(2));
        assert_eq!((args.top, args.older, args.sample_rate), (3, Some(100), 4));
        assert!(args.show_allocs && args.combined);
        assert_eq!((args.min_size, args.max_size), (Some(16), Some(4096)));
        assert!(Args::try_parse_from([TOOL.name, "-s", "0"]).is_err());
        assert!(Args::try_parse_from([TOOL.name, "-p", "1", "-c", "ls"]).is_err());
    }

    #[test]
    fn the_help_gives_the_stack_budget_the_tool_uses() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        let line = help
            .split("--stacks-per-second")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .unwrap();
        let default = format!("[default: {DEFAULT_STACKS_PER_SECOND}]");
        assert!(line.contains(&default), "{line}");
    }
}
