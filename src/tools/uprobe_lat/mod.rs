//! uprobe-lat: how long user-space functions take, as log2 histograms and percentiles.
//! A uprobe at entry and a uretprobe at return time each call (see src/bpf/uprobe_lat.bpf.c);
//! the latencies reach user space either call by call over the ring buffer (exact percentiles)
//! or, with `--kernel-hist`, as log2 histograms summed in the kernel.

pub mod calibrate;
mod compact;
mod cumulative;
mod hist;
mod links;
mod page;
mod report;
mod stack;
pub mod target;

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use libbpf_rs::skel::{OpenSkel, Skel};

use crate::cli::{parse_duration_ns, parse_pid, parse_seconds, CgroupArg, CommonArgs};
use crate::consumer::{self, Stop};
use crate::load::attach;
use crate::load::driver::{self, Bpf, Flow, Sequence, Session};
use crate::output::histogram::Unit;
use crate::render::escape::escaped;

use crate::load::setup;
use crate::skel::uprobe_lat::{types, UprobeLatSkel};

pub use report::Report;

// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for types::call_event {}
// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for types::hist_key {}

/// Slots of the in-kernel histogram (MAX_SLOTS in uprobe_lat.h).
const MAX_SLOTS: usize = defs::MAX_SLOTS as usize;

use crate::skel::uprobe_lat::defs::{
    self, LOSS_HIST_FULL, LOSS_STACK_LOST, LOSS_THREADS_FULL, LOSS_TOO_DEEP, LOSS_UNWOUND,
};
/// At most this many (function, process, epoch) histograms in the kernel with
/// `--kernel-hist --per-pid` (each is 408 bytes per CPU, all allocated at start).
const PER_PID_HISTS: u32 = 16384;

/// How uprobe-lat can lose a call (LOSS_* in uprobe_lat.h).
pub static LOSSES: [consumer::LossCause; 6] = [
    consumer::RINGBUF_FULL,
    consumer::LossCause {
        slot: Some(LOSS_TOO_DEEP),
        key: "too_deep",
        what: "calls nested deeper than 32 levels were not timed",
        advice: "each thread times 32 nested calls: trace the outer functions, not a deep recursion",
    },
    consumer::LossCause {
        slot: Some(LOSS_UNWOUND),
        key: "never_returned",
        what: "calls never returned and were not timed",
        advice: "a longjmp or an exception skipped their return, or their thread exited inside them",
    },
    consumer::LossCause {
        slot: Some(LOSS_HIST_FULL),
        key: "pid_hists_full",
        what: "calls not counted: the in-kernel per-process histogram table was full",
        advice: "raise --max-pids, or drop --kernel-hist: then processes beyond --max-pids are summed in an 'other pids' row",
    },
    consumer::LossCause {
        slot: Some(LOSS_THREADS_FULL),
        key: "threads_full",
        what: "calls not timed: the per-thread table was full",
        advice: "raise --max-threads",
    },
    consumer::LossCause {
        slot: Some(LOSS_STACK_LOST),
        key: "stack_lost",
        what: "slow calls were shown without their stack: there was no room to send it",
        advice: "raise --ringbuf-size, or raise --slower-than so fewer calls are slow",
    },
];

#[derive(Parser, Debug)]
#[command(
    name = TOOL.name,
    version,
    about = "Time user-space functions: log2 histograms and percentiles of their latency",
    after_help = "Targets:\n  PATH:FUNC      a function in a program or library given by path\n  LIB:FUNC       a library by name, found as the dynamic loader would (libc:malloc)\n  :FUNC          a function in the program of -p PID\n  FUNC may be a glob (parse_*): every match gets its own histogram.\n\nExamples:\n  uprobe-lat libc:malloc                   # every process's malloc(), in ns\n  uprobe-lat -u -p 181 libc:read           # read() in process 181, in us\n  uprobe-lat -p 181 :handle_request        # a function of process 181's program\n  uprobe-lat -m './server:parse_*'         # each parse_ function, in ms\n  uprobe-lat -i 5 -d 60 libc:malloc        # print and reset every 5 s, for a minute\n  uprobe-lat --slower-than 10ms /usr/bin/myapp:flush   # and each call over 10 ms\n  uprobe-lat --slower-than 10ms --stack ./app:flush    # and who called it\n  uprobe-lat --kernel-hist libc:malloc     # sum in the kernel: cheapest for hot functions\n  uprobe-lat -l 'libc:str*'                # list the functions a target matches"
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

    /// With --per-pid: processes kept apart in each report; calls of the others are summed
    /// in an "other pids" row per function
    #[arg(long = "max-pids", value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_pids: u32,

    /// Threads that can be inside traced functions at once (calls of more are counted as lost)
    #[arg(long = "max-threads", value_name = "N", default_value_t = 16384,
          value_parser = clap::value_parser!(u32).range(1..=4_194_304))]
    pub max_threads: u32,

    /// Attach one uprobe link per probe even where multi-uprobe links exist (for tests and
    /// benchmarks of the path older kernels take)
    #[arg(long = "attach-per-probe", hide = true)]
    pub attach_per_probe: bool,

    /// Time the functions the way kernels without attach cookies (before 5.15) make us: one
    /// program pair per function, at most 64 (for tests of that path on newer kernels)
    #[arg(long = "no-cookies", hide = true)]
    pub no_cookies: bool,

    /// Sum log2 histograms in the kernel instead of sending every call to user space
    /// (cheapest for hot functions; percentiles are then estimated from the buckets)
    #[arg(long = "kernel-hist")]
    pub kernel_hist: bool,

    /// Also print every call that took at least DURATION (10ms, 500us, 1.5s)
    #[arg(long = "slower-than", value_name = "DURATION", value_parser = parse_duration_ns)]
    pub slower_than: Option<u64>,

    /// With --slower-than: print each slow call's user stack, its callers unwound with the
    /// binaries' unwind tables from a copy of the stack's top (no frame pointers needed)
    #[arg(long = "stack")]
    pub stack: bool,

    /// With --stack: bytes of stack copied from the stack pointer up (1024-32768); a stack
    /// deeper than that is shown as far as it goes, marked cut
    #[arg(long = "stack-bytes", value_name = "BYTES",
          default_value_t = crate::host::unwind::DEFAULT_STACK_BYTES,
          value_parser = crate::host::unwind::parse_stack_bytes)]
    pub stack_bytes: u32,

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
    also_needs: &[],
};

/// What uprobe-lat needs from the host: uprobes (and, with -p, the process). Attach cookies
/// (5.15) are used where the kernel has them, not needed.
fn needs(args: &Args) -> crate::load::needs::Needs {
    crate::load::needs::Needs {
        tracefs: false,
        uprobes: true,
        kernel_symbols: false,
        process: args.pid,
    }
}

pub fn run(args: Args) -> Result<()> {
    driver::sequence(&args).map(drop)
}

/// What uprobe-lat finds before it loads: the functions, how it links them, and what the
/// probes cost.
pub struct Resolved {
    probes: Vec<target::Probe>,
    kind: links::Kind,
    overhead: Option<calibrate::Overhead>,
}

/// The thread-exit link and the probes' links, held until the consumer has stopped.
#[derive(Default)]
pub struct Links {
    _thread_exit: Option<libbpf_rs::Link>,
    probes: Option<links::Attached>,
}

impl Sequence for Args {
    type Skel = UprobeLatSkel<'static>;
    type Target = Resolved;
    type Links = Links;
    type Handler<'a> = Report<'a>;
    const NAME: &'static str = TOOL.name;
    const LOSSES: &'static [consumer::LossCause] = &LOSSES;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn needs(&self) -> crate::load::needs::Needs {
        needs(self)
    }

    fn early(&self) -> Result<Option<u8>> {
        stack::check(self)?;
        if self.list && !self.common.check {
            return list(self).map(|()| Some(0));
        }
        Ok(None)
    }

    fn check(&self, _: &Session) -> Result<()> {
        check(self)
    }

    fn timeout(&self) -> Option<Duration> {
        self.duration.or(self.common.timeout)
    }

    fn cgroup(&self) -> Result<crate::host::container::CgroupFilter> {
        self.cgroup.open()
    }

    fn resolve(&self) -> Result<Resolved> {
        if let Some(pid) = self.pid {
            // Reading another user's process needs a capability: say which, not "no such process".
            crate::load::needs::check_process_access(pid)?;
        }
        let probes = target::resolve_all(&self.targets, self.pid)?;
        // Per-probe links take two descriptors per function.
        links::raise_open_file_limit();
        let kind = links::Kind::choose(self.no_cookies, self.attach_per_probe);
        kind.check_count(probes.len(), self.no_cookies)?;
        let overhead = probe_overhead(self, kind);
        Ok(Resolved {
            probes,
            kind,
            overhead,
        })
    }

    fn load(
        &self,
        session: &Session,
        cgroup: &crate::host::container::CgroupFilter,
        r: &Resolved,
    ) -> Result<(UprobeLatSkel<'static>, Links)> {
        let skel = load(self, session, cgroup, r.kind, r.probes.len())?;
        Ok((skel, Links::default()))
    }

    fn attach(
        &self,
        skel: &mut UprobeLatSkel<'static>,
        r: &mut Resolved,
        links: &mut Links,
        stop: &Stop,
    ) -> Result<Flow> {
        // Before any probe: a thread's frames must go when it exits.
        links._thread_exit = Some(
            skel.progs
                .thread_exit
                .attach_raw_tracepoint("sched_process_exit")
                .context("attaching to the raw tracepoint sched_process_exit")?,
        );
        let pid = self.pid.map_or(-1, |p| p as i32);
        let (entries, exits) = r.kind.programs(skel.object(), r.probes.len())?;
        let attached = links::attach(r.kind, &entries, &exits, &r.probes, pid, stop)?;
        links.probes = Some(attached);
        Ok(if stop.requested() { Flow::End } else { Flow::Go })
    }

    fn skipped_runs(
        &self,
        skel: &UprobeLatSkel<'static>,
        _: &Resolved,
    ) -> (&'static consumer::LossCause, consumer::SkippedRuns) {
        // A skipped entry or return program loses a call's timing: the kernel does not nest
        // uprobe programs with other kprobe/tracepoint/uprobe programs on one CPU.
        let skipped = consumer::SkippedRuns::all_loaded(skel.object());
        (&consumer::PROBE_SKIPPED, skipped)
    }

    fn handler<'a>(
        &'a self,
        skel: &'a UprobeLatSkel<'static>,
        r: &'a mut Resolved,
        _: &Links,
        stop: &'a Stop,
        sink: crate::output::Sink,
    ) -> Result<Report<'a>> {
        announce(self, r.kind, &r.probes);
        Report::new(self, &r.probes, source(self, skel), r.overhead, stop, sink)
    }

    fn finish(&self, report: Report<'_>, consumed: Result<()>) -> Result<u8> {
        // The links are gone: entry probes before return probes (see links.rs).
        report.note_other_pids();
        consumed.map(|()| 0)
    }
}

/// `--check`: a real load and attach of the programs the run would load.
fn check(args: &Args) -> Result<()> {
    setup::libbpf_log(args.common.verbose);
    // Which programs the run would load (probing needs the privileges; without them,
    // --check fails before it attempts anything).
    let kind = links::Kind::choose(args.no_cookies, args.attach_per_probe);
    let path = match kind {
        links::Kind::NoCookies => format!(
            "no attach cookies: one program pair per function, at most {}",
            links::NO_COOKIE_PROGS
        ),
        _ => "attach cookies: one program pair for every function".to_string(),
    };
    let mut attempt = |_| check_attempt(kind);
    crate::load::check::check_path(
        TOOL.name,
        &HOOK,
        attach::Choice::Auto,
        args.common.json,
        &needs(args),
        Some(path),
        &mut attempt,
    )
}

/// The probes' own cost, measured on a function of ours (unless --no-calibrate); a failed
/// measurement is said and the run goes on without it.
fn probe_overhead(args: &Args, kind: links::Kind) -> Option<calibrate::Overhead> {
    if args.no_calibrate {
        return None;
    }
    match calibrate::measure(kind) {
        Ok(o) => {
            if args.common.verbose {
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
}

/// Opens, sizes and loads the skeleton for `functions` functions, linked by `kind`.
fn load(
    args: &Args,
    session: &Session,
    cgroup: &crate::host::container::CgroupFilter,
    kind: links::Kind,
    functions: usize,
) -> Result<UprobeLatSkel<'static>> {
    let mut open = session.open::<UprobeLatSkel>(cgroup)?;
    // Load only the programs the chosen kind of link attaches.
    kind.set_autoload(open.open_object_mut(), functions);
    open.maps.stacks.set_max_entries(args.max_threads)?;
    if args.kernel_hist {
        if args.per_pid {
            open.maps
                .hists
                .set_max_entries(kernel_pid_hists(args.max_pids, functions))?;
        } else {
            open.maps
                .func_hists
                .set_max_entries(functions as u32 * 2)?;
        }
    }
    // --stack: one scratch entry per CPU for the stack copies.
    if args.stack {
        let cpus = libbpf_rs::num_possible_cpus().context("counting the CPUs")?;
        open.maps.samples.set_max_entries(cpus as u32)?;
    }
    let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
    rodata.stack_bytes = if args.stack { args.stack_bytes } else { 0 };
    rodata.targ_tgid = args.pid.unwrap_or(0);
    rodata.kernel_hist = args.kernel_hist;
    rodata.per_pid = args.per_pid;
    rodata.unit_div = args.unit().divisor();
    rodata.slower_than_ns = args.slower_than.unwrap_or(0);
    session.load(open, cgroup)
}

/// With -v, the mode, the links and the functions; then, for the table, how to stop.
fn announce(args: &Args, kind: links::Kind, probes: &[target::Probe]) {
    let s = if probes.len() == 1 { "" } else { "s" };
    if args.common.verbose {
        eprintln!(
            "uprobe-lat: mode: {}",
            if args.kernel_hist {
                "kernel histogram (log2 buckets summed in BPF; percentiles estimated from them)"
            } else {
                "ring buffer (every call sent to user space; exact percentiles)"
            }
        );
        eprintln!("uprobe-lat: links: {}", kind.describe());
        let names: Vec<String> = probes
            .iter()
            .map(|p| format!("{}:{}", p.binary, escaped(p.function.as_bytes())))
            .collect();
        eprintln!(
            "uprobe-lat: attached to {} function{s}: {}",
            probes.len(),
            names.join(", ")
        );
    }
    if !args.common.json {
        eprintln!("Tracing {} function{s}. Hit Ctrl-C to end.", probes.len());
    }
}

/// Where the latencies come from: the kernel's histograms (--kernel-hist) or the ring buffer.
fn source<'a>(args: &Args, skel: &'a UprobeLatSkel<'static>) -> report::Source<'a> {
    if args.kernel_hist {
        report::Source::Kernel {
            hists: &skel.maps.hists,
            func_hists: &skel.maps.func_hists,
            epoch: &skel.maps.epoch,
        }
    } else {
        report::Source::Ring
    }
}

/// Size of the `--kernel-hist --per-pid` table: room for `max_pids` processes calling every
/// function, in both epochs, up to PER_PID_HISTS.
fn kernel_pid_hists(max_pids: u32, functions: usize) -> u32 {
    (max_pids as u64 * functions as u64 * 2).clamp(2, PER_PID_HISTS as u64) as u32
}

/// `--check`'s real attempt: loads the programs `kind` loads for one function and attaches
/// them, as the run would (same links, cookies where `kind` uses them), to uprobe-lat's own
/// calibration function.
fn check_attempt(kind: links::Kind) -> Result<()> {
    let exe = std::path::Path::new("/proc/self/exe");
    let probe = target::Probe {
        path: exe.to_path_buf(),
        binary: TOOL.name.into(),
        function: calibrate::SYMBOL.into(),
        offset: calibrate::target_offset()?,
    };
    let mut open = UprobeLatSkel::open()?;
    kind.set_autoload(open.open_object_mut(), 1);
    let skel = open.load().map_err(setup::load_error)?;
    let (entries, exits) = kind.programs(skel.object(), 1)?;
    let pid = std::process::id() as i32;
    let stop = Stop::install(None)?;
    let attached = links::attach(kind, &entries, &exits, &[probe], pid, &stop)
        .context("attaching a uprobe to uprobe-lat's own calibration function")?;
    drop(attached); // attached: that is all --check needs to know
    Ok(())
}

/// `-l`: the functions each target matches, one `BINARY:FUNCTION` a line.
fn list(args: &Args) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for t in &args.targets {
        let (binary, pattern) = target::split(t)?;
        let (path, shown) = target::resolve_binary(binary, args.pid)?;
        let funcs = crate::host::elf_symbols::read(&path)?;
        for p in target::select(&path, &shown, pattern, &funcs)? {
            writeln!(out, "{}:{}", p.binary, escaped(p.function.as_bytes()))?;
        }
    }
    out.flush()?;
    Ok(())
}
/// uprobe-lat in the registry (src/tools/mod.rs).
pub const TOOL: crate::tools::Tool = crate::tools::Tool {
    name: "uprobe-lat",
    command: <Args as clap::CommandFactory>::command,
    main: |invoked, args| {
        crate::cli::main_with(TOOL.name, || run(crate::cli::parse(TOOL.name, invoked, args)))
    },
    page: page::PAGE,
    events: &[crate::output::schema::event::LATENCY_HISTOGRAM, crate::output::schema::event::SLOW_CALL],
};

