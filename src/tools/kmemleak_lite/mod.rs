//! kmemleak-lite: which call stacks hold memory that was never freed, in the kernel (kmem
//! tracepoints) or in one user process (uprobes on its allocator). The BPF side keeps every
//! outstanding allocation in a map; user space reads that map at each report, so no event
//! crosses the ring buffer per allocation (the only records are user mode's rare wake-ups when
//! the dynamic loader maps a library).

mod page;
mod report;
mod sequence;
mod symbols;
mod target;
mod unwind;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use libbpf_rs::skel::OpenSkel;
use libbpf_rs::Link;

use crate::cli::{self, parse_pid, parse_seconds, CommonArgs};
use crate::consumer::LossCause;
use crate::host::container::CgroupFilter;
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
    MAX_CALL_SITES, STACK_ERROR_SLOTS,
};
use crate::skel::kmemleak_lite::{
    types::{alloc_info, combined_info, kstack_info},
    KmemleakLiteSkel, OpenKmemleakLiteSkel,
};

use target::{Allocator, Probe};

// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for alloc_info {}
// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for combined_info {}
// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for kstack_info {}

const BPF_F_USER_STACK: u64 = 1 << 8;

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
/// sight are marked in the report instead (report::unseen_free).
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
            let argv = target::split_command(line)?;
            let exe = target::resolve_program(&argv[0])?;
            (std::process::id(), target::allocator_of_command(&exe)?)
        }
        (None, None) => unreachable!("user mode has -p or -c"),
    };
    let mut links = Vec::new();
    attach_allocator(&skel, pid, &alloc, &mut links, false)
}

fn page_size() -> u64 {
    // SAFETY: sysconf takes a constant and reads no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
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

/// Opens the skeleton with its tables sized and its constants set from `args`, and only the
/// programs of the mode enabled (see `choose_programs`); also returns whether the kernel has
/// the separate _node tracepoints.
fn open_sized(
    session: &Session,
    args: &Args,
    user: bool,
    bulk: bool,
) -> Result<(OpenKmemleakLiteSkel<'static>, bool)> {
    let mut open = session.open::<KmemleakLiteSkel>(&CgroupFilter::default())?;
    let maps = &mut open.maps;
    maps.allocs
        .set_max_entries(args.max_allocs)
        .context("sizing the allocation table")?;
    maps.stack_traces
        .set_max_entries(args.max_stacks)
        .context("sizing the stack table")?;
    // Kernel mode only (user mode leaves them empty: one entry each).
    let (kernel_stacks, call_sites) = match user {
        true => (1, 1),
        false => (args.max_stacks + STACK_ERROR_SLOTS, MAX_CALL_SITES),
    };
    // One entry per stack id, plus the negative errors, plus the call sites recorded without
    // stacks: they can never fill (see the BPF side). Only --combined uses them.
    let combined_entries = match args.combined {
        true => args.max_stacks + STACK_ERROR_SLOTS + call_sites,
        false => 1,
    };
    maps.combined_allocs
        .set_max_entries(combined_entries)
        .context("sizing the per-stack totals")?;
    maps.kstacks
        .set_max_entries(kernel_stacks)
        .context("sizing the per-stack table")?;
    maps.ksites
        .set_max_entries(call_sites)
        .context("sizing the per-call-site table")?;
    let dwarf = user && args.unwind == unwind::UnwindMode::Dwarf;
    if user && !dwarf {
        // Unused: user mode with frame pointers takes every stack.
        maps.site_budgets
            .set_max_entries(1)
            .context("sizing the stack budgets")?;
    }
    // --unwind dwarf: one scratch entry per CPU (the stack copy); frame pointers: no copies.
    let cpus = match dwarf {
        true => libbpf_rs::num_possible_cpus().context("counting the CPUs")? as u32,
        false => 1,
    };
    maps.samples
        .set_max_entries(cpus)
        .context("sizing the stack copies")?;
    maps.pending
        .set_max_entries(args.max_threads)
        .context("sizing the table of calls in progress")?;
    {
        let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
        rodata.min_size = args.min_size.unwrap_or(0);
        rodata.max_size = args.max_size.unwrap_or(u64::MAX);
        rodata.sample_every = args.sample_rate;
        rodata.combined = args.combined;
        rodata.stack_flags = if user { BPF_F_USER_STACK } else { 0 };
        rodata.stacks_per_second = args.stack_budget();
        rodata.stack_bytes = if dwarf { args.stack_bytes } else { 0 };
        rodata.page_size = page_size();
    }
    let node_tps = choose_programs(&mut open, user, args.pages, bulk);
    Ok((open, node_tps))
}

/// Attaches the kernel-mode programs loaded; returns the links and the tracepoints' names.
fn attach_kernel(
    skel: &KmemleakLiteSkel,
    node_tps: bool,
    pages: bool,
    bulk: bool,
) -> Result<(Vec<Link>, String)> {
    let progs = &skel.progs;
    let mut tps = vec![
        ("kmalloc", &progs.kmalloc),
        ("kfree", &progs.kfree),
        ("kmem_cache_alloc", &progs.kmem_cache_alloc),
        ("kmem_cache_free", &progs.kmem_cache_free),
    ];
    if node_tps {
        tps.push(("kmalloc_node", &progs.kmalloc_node));
        tps.push(("kmem_cache_alloc_node", &progs.kmem_cache_alloc_node));
    }
    if pages {
        tps.push(("mm_page_alloc", &progs.mm_page_alloc));
        tps.push(("mm_page_free", &progs.mm_page_free));
        tps.push(("mm_page_free_batched", &progs.mm_page_free_batched));
    }
    let mut links = Vec::new();
    for (name, prog) in &tps {
        links.push(
            prog.attach()
                .with_context(|| format!("attaching to the kmem:{name} tracepoint"))?,
        );
    }
    let mut names: Vec<&str> = tps.iter().map(|(n, _)| *n).collect();
    if bulk {
        links.push(
            progs
                .kmem_cache_free_bulk
                .attach()
                .context("attaching fentry to kmem_cache_free_bulk")?,
        );
        names.push("and fentry on kmem_cache_free_bulk");
    }
    Ok((links, names.join(", ")))
}

/// Loads only the programs of the chosen mode; returns whether the kernel still has the
/// separate kmalloc_node / kmem_cache_alloc_node tracepoints (merged into kmalloc and
/// kmem_cache_alloc in 6.1 and later).
fn choose_programs(open: &mut OpenKmemleakLiteSkel, user: bool, pages: bool, bulk: bool) -> bool {
    let node = !user && attach::tracepoint_exists("kmem/kmalloc_node");
    let p = &mut open.progs;
    for prog in [
        &mut p.kmalloc,
        &mut p.kfree,
        &mut p.kmem_cache_alloc,
        &mut p.kmem_cache_free,
    ] {
        prog.set_autoload(!user);
    }
    p.kmem_cache_free_bulk.set_autoload(!user && bulk);
    p.kmalloc_node.set_autoload(node);
    p.kmem_cache_alloc_node.set_autoload(node);
    p.mm_page_alloc.set_autoload(!user && pages);
    p.mm_page_free.set_autoload(!user && pages);
    p.mm_page_free_batched.set_autoload(!user && pages);
    for prog in [
        &mut p.malloc_enter,
        &mut p.calloc_enter,
        &mut p.realloc_enter,
        &mut p.posix_memalign_enter,
        &mut p.memalign_enter,
        &mut p.valloc_enter,
        &mut p.pvalloc_enter,
        &mut p.mmap_enter,
        &mut p.free_enter,
        &mut p.alloc_exit,
        &mut p.mmap_exit,
        &mut p.realloc_exit,
        &mut p.posix_memalign_exit,
        &mut p.thread_exit,
        &mut p.loader_changed,
    ] {
        prog.set_autoload(user);
    }
    node
}

/// Entry probe and return probe of each allocator function found. Two names at one address
/// (glibc's aligned_alloc is memalign) are probed once.
fn attach_allocator(
    skel: &crate::skel::kmemleak_lite::KmemleakLiteSkel,
    pid: u32,
    alloc: &Allocator,
    links: &mut Vec<Link>,
    verbose: bool,
) -> Result<()> {
    let p = &skel.progs;
    links.push(
        p.thread_exit
            .attach()
            .context("attaching to sched_process_exit (to forget threads that end)")?,
    );
    let files = std::iter::once((&alloc.path, &alloc.functions)).chain(
        alloc
            .cxx
            .as_ref()
            .map(|(path, functions)| (path, functions)),
    );
    for (path, functions) in files {
        let mut done: Vec<u64> = Vec::new();
        for &(probe, name, offset) in functions {
            if done.contains(&offset) {
                continue;
            }
            done.push(offset);
            let (entry, ret) = match probe {
                Probe::Malloc | Probe::CxxNew => (&p.malloc_enter, Some(&p.alloc_exit)),
                Probe::Calloc => (&p.calloc_enter, Some(&p.alloc_exit)),
                Probe::Realloc => (&p.realloc_enter, Some(&p.realloc_exit)),
                Probe::PosixMemalign => (&p.posix_memalign_enter, Some(&p.posix_memalign_exit)),
                Probe::AlignedAlloc | Probe::Memalign => (&p.memalign_enter, Some(&p.alloc_exit)),
                Probe::Valloc => (&p.valloc_enter, Some(&p.alloc_exit)),
                Probe::Pvalloc => (&p.pvalloc_enter, Some(&p.alloc_exit)),
                Probe::Mmap => (&p.mmap_enter, Some(&p.mmap_exit)),
                Probe::Free | Probe::Munmap => (&p.free_enter, None),
            };
            let off = offset as usize;
            let attach = |prog: &libbpf_rs::ProgramMut, retprobe: bool| {
                prog.attach_uprobe(retprobe, pid as i32, path, off)
                    .with_context(|| {
                        format!(
                            "attaching a uprobe to {name} in {} (pid {pid})",
                            crate::render::escape::path(path)
                        )
                    })
            };
            // Return probe first: an entry without its return would leave a pending call.
            if let Some(ret) = ret {
                links.push(attach(ret, true)?);
            }
            links.push(attach(entry, false)?);
            if verbose {
                eprintln!(
                    "kmemleak-lite: probing {name} at {:#x} in {}",
                    offset,
                    crate::render::escape::path(path)
                );
            }
        }
    }
    if let Some((path, offset)) = &alloc.loader {
        let shown = crate::render::escape::path(path);
        links.push(
            p.loader_changed
                .attach_uprobe(false, pid as i32, path, *offset as usize)
                .with_context(|| {
                    format!(
                        "attaching a uprobe to {} in {shown} (pid {pid})",
                        target::LOADER_HOOK
                    )
                })?,
        );
        if verbose {
            eprintln!(
                "kmemleak-lite: probing {} at {offset:#x} in {shown}: its maps are read again when it maps a library",
                target::LOADER_HOOK
            );
        }
    }
    Ok(())
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
