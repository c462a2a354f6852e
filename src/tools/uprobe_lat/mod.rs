//! uprobe-lat: how long user-space functions take, as log2 histograms and percentiles.
//! A uprobe at entry and a uretprobe at return time each call (see src/bpf/uprobe_lat.bpf.c);
//! the latencies reach user space either call by call over the ring buffer (exact percentiles)
//! or, with `--kernel-hist`, as log2 histograms summed in the kernel.

pub mod calibrate;
pub mod elf;
mod report;
pub mod target;

use std::mem::MaybeUninit;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, UprobeOpts};

use crate::attach;
use crate::cli::{parse_duration_ns, parse_pid, parse_seconds, CgroupArg, CommonArgs};
use crate::escape::escaped;
use crate::output::histogram::Unit;
use crate::output::Sink;
use crate::ringbuf::{self, Stop};

/// How uprobe-lat can lose a call (see also the `counters` reported at exit).
pub static LOSSES: [ringbuf::LossCause; 1] = [ringbuf::RINGBUF_FULL];
use crate::setup;
use crate::skel::uprobe_lat::{types, UprobeLatSkelBuilder};

pub use report::Report;

unsafe impl plain::Plain for types::call_event {}
unsafe impl plain::Plain for types::hist_key {}

/// Slots of the in-kernel histogram (MAX_SLOTS in uprobe_lat.h).
const MAX_SLOTS: usize = 48;
/// Processes × functions × 2 epochs that `--kernel-hist --per-pid` keeps apart.
const PER_PID_HISTS: u32 = 16384;
const COUNTER_NAMES: [&str; 4] = [
    "calls nested deeper than 32 levels were not timed",
    "calls were unwound (longjmp or an exception skipped their return) and not timed",
    "calls were not counted: the in-kernel histogram table was full",
    "calls were not timed: the per-thread table was full",
];

#[derive(Parser, Debug)]
#[command(
    name = "uprobe-lat",
    version,
    about = "Time user-space functions: log2 histograms and percentiles of their latency",
    after_help = "Targets:\n  PATH:FUNC      a function in a program or library given by path\n  LIB:FUNC       a library by name, found as the dynamic loader would (libc:malloc)\n  :FUNC          a function in the program of -p PID\n  FUNC may be a glob (parse_*): every match gets its own histogram.\n\nExamples:\n  uprobe-lat libc:malloc                   # every process's malloc(), in ns\n  uprobe-lat -u -p 181 libc:read           # read() in process 181, in us\n  uprobe-lat -p 181 :handle_request        # a function of process 181's program\n  uprobe-lat -m './server:parse_*'         # each parse_ function, in ms\n  uprobe-lat -i 5 -d 60 libc:malloc        # print and reset every 5 s, for a minute\n  uprobe-lat --slower-than 10ms /usr/bin/myapp:flush   # and each call over 10 ms\n  uprobe-lat --kernel-hist libc:malloc     # sum in the kernel: cheapest for hot functions\n  uprobe-lat -l 'libc:str*'                # list the functions a target matches"
)]
pub struct Args {
    /// What to time: PATH:FUNC, LIB:FUNC or :FUNC (with -p); FUNC may be a glob
    #[arg(value_name = "TARGET", required_unless_present = "check")]
    pub targets: Vec<String>,

    /// Trace this process only (and find LIB and :FUNC in it)
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = parse_pid)]
    pub pid: Option<u32>,

    /// Histogram in milliseconds
    #[arg(short = 'm', long = "milliseconds", conflicts_with_all = ["micros", "nanos"])]
    pub millis: bool,

    /// Histogram in microseconds
    #[arg(short = 'u', long = "microseconds", conflicts_with = "nanos")]
    pub micros: bool,

    /// Histogram in nanoseconds (the default)
    #[arg(short = 'n', long = "nanoseconds")]
    pub nanos: bool,

    /// Print and reset the histograms every SECS seconds
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = parse_seconds)]
    pub interval: Option<Duration>,

    /// Stop after SECS seconds and print the histograms
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<Duration>,

    /// Print a timestamp above each report
    #[arg(short = 'T', long = "timestamp")]
    pub timestamp: bool,

    /// One histogram per process instead of one per function
    #[arg(long = "per-pid")]
    pub per_pid: bool,

    /// Sum log2 histograms in the kernel instead of sending every call to user space
    /// (cheapest for hot functions; percentiles are then estimated from the buckets)
    #[arg(long = "kernel-hist")]
    pub kernel_hist: bool,

    /// Also print every call that took at least DURATION (10ms, 500us, 1.5s)
    #[arg(long = "slower-than", value_name = "DURATION", value_parser = parse_duration_ns)]
    pub slower_than: Option<u64>,

    /// Do not measure the probes' own cost at start-up
    #[arg(long = "no-calibrate")]
    pub no_calibrate: bool,

    /// List the functions the targets match, and exit
    #[arg(short = 'l', long = "list")]
    pub list: bool,

    #[command(flatten)]
    pub cgroup: CgroupArg,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    pub fn unit(&self) -> Unit {
        if self.millis {
            Unit::Millis
        } else if self.micros {
            Unit::Micros
        } else {
            Unit::Nanos
        }
    }
}

/// What uprobe-lat hooks (for --check): uprobes and uretprobes on user-space functions.
static HOOK: attach::Hook = attach::Hook {
    methods: &[attach::Method::Uprobe],
    functions: &[],
    tracepoints: &[],
    optional_tracepoints: &[],
};

/// What uprobe-lat needs from the host: uprobes with attach cookies (and, with -p, the process).
fn needs(args: &Args) -> setup::Needs {
    setup::Needs {
        tracefs: false,
        uprobes: true,
        kernel_symbols: false,
        process: args.pid,
        attach_cookies: true,
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.common.check {
        setup::libbpf_log(args.common.verbose);
        let mut attempt = |_| check_attempt();
        return attach::check(
            "uprobe-lat",
            &HOOK,
            attach::Choice::Auto,
            args.common.json,
            &needs(&args),
            &mut attempt,
        );
    }
    if args.list {
        return list(&args);
    }
    if let Some(pid) = args.pid {
        // Reading another user's process needs a capability: say which, not "no such process".
        setup::check_process_access(pid)?;
    }
    let probes = target::resolve_all(&args.targets, args.pid)?;
    setup::preflight(&needs(&args))?;
    setup::libbpf_log(args.common.verbose);
    let cgroup = args.cgroup.open()?;
    let verbose = args.common.verbose;

    let overhead = if args.no_calibrate {
        None
    } else {
        match calibrate::measure() {
            Ok(o) => {
                if verbose {
                    eprintln!(
                        "uprobe-lat: probe overhead {:.0} ns per call, {:.0} ns of it inside measured latencies",
                        o.per_call_ns, o.in_latency_ns
                    );
                }
                Some(o)
            }
            Err(e) => {
                eprintln!("uprobe-lat: probe cost not measured: {e:#}");
                None
            }
        }
    };

    let mut storage = MaybeUninit::uninit();
    let mut open = UprobeLatSkelBuilder::default()
        .open(&mut storage)
        .context("opening the BPF object")?;
    let wakeup = setup::size_ringbuf(&mut open.maps.events, args.common.ringbuf_bytes())?;
    if args.kernel_hist {
        if args.per_pid {
            open.maps.hists.set_max_entries(PER_PID_HISTS)?;
        } else {
            open.maps
                .func_hists
                .set_max_entries(probes.len() as u32 * 2)?;
        }
    }
    let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
    rodata.wakeup_bytes = wakeup;
    rodata.filter_cgroup = cgroup.is_some();
    rodata.targ_tgid = args.pid.unwrap_or(0);
    rodata.kernel_hist = args.kernel_hist;
    rodata.per_pid = args.per_pid;
    rodata.unit_div = args.unit().divisor();
    rodata.slower_than_ns = args.slower_than.unwrap_or(0);

    let skel = open.load().map_err(setup::load_error)?;
    if let Some(cg) = &cgroup {
        setup::fill_cgroup_filter(&skel.maps.cgroup_filter, cg)?;
    }
    let stop = Stop::install(args.duration.or(args.common.timeout))?;

    let pid = args.pid.map_or(-1, |p| p as i32);
    let mut links: Vec<Link> = Vec::with_capacity(probes.len() * 2);
    for (id, p) in probes.iter().enumerate() {
        if stop.requested() {
            return Ok(());
        }
        // Return probe first: every call whose entry we time then has its return timed too.
        for (prog, retprobe) in [
            (&skel.progs.func_exit, true),
            (&skel.progs.func_entry, false),
        ] {
            let opts = UprobeOpts {
                cookie: id as u64,
                retprobe,
                ..Default::default()
            };
            let link = prog
                .attach_uprobe_with_opts(pid, &p.path, p.offset as usize, opts)
                .with_context(|| {
                    format!(
                        "attaching to {}:{} (offset {:#x})",
                        p.binary,
                        escaped(p.function.as_bytes()),
                        p.offset
                    )
                })?;
            links.push(link);
        }
    }
    if verbose {
        eprintln!(
            "uprobe-lat: mode: {}",
            if args.kernel_hist {
                "kernel histogram (log2 buckets summed in BPF; percentiles estimated from them)"
            } else {
                "ring buffer (every call sent to user space; exact percentiles)"
            }
        );
        let names: Vec<String> = probes
            .iter()
            .map(|p| format!("{}:{}", p.binary, escaped(p.function.as_bytes())))
            .collect();
        eprintln!(
            "uprobe-lat: attached to {} function{}: {}",
            probes.len(),
            if probes.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    }
    if !args.common.json {
        eprintln!(
            "Tracing {} function{}. Hit Ctrl-C to end.",
            probes.len(),
            if probes.len() == 1 { "" } else { "s" }
        );
    }

    let source = if args.kernel_hist {
        report::Source::Kernel {
            hists: &skel.maps.hists,
            func_hists: &skel.maps.func_hists,
            epoch: &skel.maps.epoch,
        }
    } else {
        report::Source::Ring
    };
    let mut report = Report::new(
        &args,
        &probes,
        source,
        overhead,
        &stop,
        Sink::stdout(args.common.format()),
    )?;
    let losses = args.common.losses("uprobe-lat", &skel.maps.losses, &LOSSES);
    ringbuf::run(&skel.maps.events, &losses, &stop, &mut report)?;
    drop(links);

    let counters = read_counters(&skel.maps.counters)?;
    for (n, what) in counters.iter().zip(COUNTER_NAMES) {
        if *n > 0 {
            eprintln!("uprobe-lat: {n} {what}");
        }
    }
    Ok(())
}

/// `--check`'s real attempt: loads the programs and attaches an entry and a return probe, each
/// with a cookie as for every traced function, to uprobe-lat's own calibration function.
fn check_attempt() -> Result<()> {
    let exe = std::path::Path::new("/proc/self/exe");
    let funcs = elf::functions(exe)?;
    let target = funcs
        .get(calibrate::SYMBOL)
        .context("uprobe-lat's own symbol table has no calibration function (stripped?)")?;
    let open = UprobeLatSkelBuilder::default()
        .open(attach::object_storage())
        .context("opening the BPF object")?;
    let skel = open.load().map_err(setup::load_error)?;
    let pid = std::process::id() as i32;
    for (prog, retprobe) in [
        (&skel.progs.func_exit, true),
        (&skel.progs.func_entry, false),
    ] {
        let opts = UprobeOpts {
            cookie: 1,
            retprobe,
            ..Default::default()
        };
        let link = prog
            .attach_uprobe_with_opts(pid, exe, target.offset as usize, opts)
            .context("attaching a uprobe to uprobe-lat's own calibration function")?;
        drop(link); // attached: that is all --check needs to know
    }
    Ok(())
}

/// `-l`: the functions each target matches, one `BINARY:FUNCTION` a line.
fn list(args: &Args) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for t in &args.targets {
        let (binary, pattern) = target::split(t)?;
        let (path, shown) = target::resolve_binary(binary, args.pid)?;
        let funcs = elf::functions(&path)?;
        for p in target::select(&path, &shown, pattern, &funcs)? {
            writeln!(out, "{}:{}", p.binary, escaped(p.function.as_bytes()))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Sums of the per-CPU `counters` (see CNT_* in uprobe_lat.h).
fn read_counters(map: &dyn MapCore) -> Result<[u64; 4]> {
    let mut sums = [0u64; 4];
    for (i, sum) in sums.iter_mut().enumerate() {
        *sum = ringbuf::sum_percpu_u64(map, i as u32).context("reading the counters")?;
    }
    Ok(sums)
}
