//! exitsnoop: which processes end, how old they were, and with what code or signal.

use anyhow::{Context, Result};
use clap::Parser;
use libbpf_rs::skel::{OpenSkel, Skel};
use serde::Serialize;

use crate::cli::{parse_millis, parse_pid, CgroupArg, CommonArgs};
use crate::host::container::{CgroupFields, CgroupFilter, Resolver};
use crate::load::attach::{self, Choice, Hook, Method};
use crate::output::schema::{event, Attrs, Header};
use crate::output::{Cells, Column, Sink};
use crate::render::clock::{Clock, TimeMode};
use crate::render::escape::{c_str_bytes, escape_into, escaped};
use crate::render::exit_status::ExitStatus;
use crate::ringbuf::{self, decode, Handler, Stop};

/// How exitsnoop can lose an exit.
pub static LOSSES: [ringbuf::LossCause; 1] = [ringbuf::RINGBUF_FULL];
use crate::load::setup;
use crate::load::skel::exitsnoop::{types::exit_event, ExitsnoopSkel, ExitsnoopSkelBuilder};

unsafe impl plain::Plain for exit_event {}

/// What exitsnoop hooks: tracepoints only (they exist on every kernel it supports).
pub static HOOK: Hook = Hook {
    methods: &[Method::Tracepoint],
    functions: &[],
    tracepoints: &["sched/sched_process_exit"],
    optional_tracepoints: &[],
};

#[derive(Parser, Debug)]
#[command(
    name = "exitsnoop",
    version,
    about = "Trace process exits: who ended, how old, with what exit code or signal",
    after_help = "Examples:\n  exitsnoop              # trace process exits\n  exitsnoop -t           # with wall-clock time\n  exitsnoop -x           # only failed exits (non-zero code or a signal)\n  exitsnoop -T           # thread exits too\n  exitsnoop -p 181       # only PID 181\n  exitsnoop -d 1000      # only processes that lived at least a second\n  exitsnoop -c /sys/fs/cgroup/system.slice   # only this cgroup"
)]
pub struct Args {
    /// Include time column (HH:MM:SS)
    #[arg(short = 't', long = "timestamp")]
    pub timestamp: bool,

    /// Trace thread exits too, not only whole processes
    #[arg(short = 'T', long = "threaded")]
    pub threaded: bool,

    /// Trace failed exits only (non-zero exit code, or killed by a signal)
    #[arg(short = 'x', long = "failed")]
    pub failed: bool,

    /// Trace this PID only
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = parse_pid,
          allow_negative_numbers = true)]
    pub pid: Option<u32>,

    #[command(flatten)]
    pub cgroup: CgroupArg,

    /// Only processes that lived at least MS milliseconds
    #[arg(short = 'd', long = "min-duration", value_name = "MS", value_parser = parse_millis,
          allow_negative_numbers = true)]
    pub min_duration: Option<u64>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What exitsnoop needs from the host: one tracepoint.
pub const NEEDS: setup::Needs = setup::Needs {
    tracefs: true,
    uprobes: false,
    kernel_symbols: false,
    process: None,
};

pub fn run(args: Args) -> Result<()> {
    setup::use_btf(args.common.btf.as_deref())?;
    setup::libbpf_log(args.common.verbose);
    if args.common.check {
        // A real load and attach (then detach) of what this command line would load, so the
        // answer is the kernel's.
        let mut attempt = |_| load(&args, &CgroupFilter::default()).map(drop);
        return attach::check(
            "exitsnoop",
            &HOOK,
            Choice::Auto,
            args.common.json,
            &NEEDS,
            &mut attempt,
        );
    }
    setup::preflight(&NEEDS)?;
    let cgroup = args.cgroup.open()?;
    let stop = Stop::install(args.common.timeout)?;
    let skel = load(&args, &cgroup)?;
    if args.common.verbose {
        eprintln!("exitsnoop: attached to the sched:sched_process_exit tracepoint");
    }

    let mut printer = ExitPrinter::new(&args, args.common.sink("exitsnoop")?)?;
    let losses = args
        .common
        .losses("exitsnoop", &skel.maps.losses, &LOSSES)
        .with_skipped_runs(
            &ringbuf::PROBE_SKIPPED,
            ringbuf::SkippedRuns::new(&[&skel.progs.process_exit]),
        );
    ringbuf::run(
        &skel.maps.events,
        args.common.ringbuf_bytes(),
        &losses,
        &stop,
        &mut printer,
    )?;
    Ok(())
}

/// Opens, sizes, loads and attaches the program.
fn load(args: &Args, cgroup: &CgroupFilter) -> Result<ExitsnoopSkel<'static>> {
    let mut open = setup::open_skel(ExitsnoopSkelBuilder::default(), attach::object_storage())?;
    let events = setup::size_ringbuf(
        &mut open.maps.events,
        &mut open.maps.scratch,
        args.common.ringbuf_bytes(),
    )?;
    let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
    rodata.wakeup_bytes = events.wakeup_bytes;
    rodata.perf_buffer = events.perf_buffer;
    rodata.filter_cgroup = cgroup.by_cgroup();
    rodata.filter_container = cgroup.by_container();
    rodata.targ_pid = args.pid.unwrap_or(0);
    rodata.trace_threads = args.threaded;
    rodata.failed_only = args.failed;
    rodata.min_age_ns = args.min_duration.unwrap_or(0) * 1_000_000;

    let mut skel = open.load().map_err(setup::load_error)?;
    ringbuf::prepare(&skel.maps.events, args.common.ringbuf_bytes())?; // before attaching: see its doc
    cgroup.fill(&skel.maps.cgroup_filter, &skel.maps.container_filter)?;
    skel.attach()
        .context("attaching to sched:sched_process_exit")?;
    Ok(skel)
}

/// Turns exit records into rows or JSON objects.
pub struct ExitPrinter {
    sink: Sink,
    clock: Clock,
    time: TimeMode,
    print_container: bool,
    containers: Resolver,
    comm_text: String,
    age_text: String,
    exit_text: String,
    time_text: String,
}

impl ExitPrinter {
    pub fn new(args: &Args, mut sink: Sink) -> Result<Self> {
        let time = if args.timestamp {
            TimeMode::Wall
        } else {
            TimeMode::None
        };
        let mut cols: Vec<Column> = time.column().into_iter().collect();
        cols.extend([
            Column::left("PCOMM", 16),
            Column::right("PID", 7),
            Column::right("PPID", 7),
            Column::right("TID", 7),
            Column::right("AGE(s)", 7),
        ]);
        if args.cgroup.print_container {
            cols.push(Resolver::header());
        }
        cols.push(Column::left("EXIT", 0));
        sink.columns(cols)?;
        Ok(ExitPrinter {
            sink,
            clock: Clock::new(),
            time,
            print_container: args.cgroup.print_container,
            containers: Resolver::default(),
            comm_text: String::new(),
            age_text: String::new(),
            exit_text: String::new(),
            time_text: String::new(),
        })
    }
}

/// One exit (names: src/output/schema.rs).
#[derive(Serialize)]
struct ExitJson<'a> {
    #[serde(flatten)]
    head: Header,
    #[serde(flatten)]
    attrs: Attrs<'a>,
    age_s: f64,
    #[serde(flatten)]
    cgroup: CgroupFields<'a>,
}

impl Handler for ExitPrinter {
    fn event(&mut self, data: &[u8]) -> Result<()> {
        use std::fmt::Write;
        let (e, _) = decode::<exit_event>(data)?;
        let status = ExitStatus::from_wait_status(e.exit_code);
        let age_s = e.ts.saturating_sub(e.start_time) as f64 / 1e9;
        let comm = c_str_bytes(&e.comm);
        if self.sink.is_json() {
            let record = ExitJson {
                head: Header::new(event::EXIT, self.clock.rfc3339(e.ts)),
                attrs: Attrs {
                    pid: Some(e.pid),
                    ppid: Some(e.ppid),
                    tid: Some(e.tid),
                    comm: Some(escaped(comm)),
                    exit: Some(status.into()),
                    ..Default::default()
                },
                age_s,
                cgroup: self.containers.json(e.cgroup_id),
            };
            return Ok(self.sink.json(&record)?);
        }
        self.comm_text.clear();
        escape_into(&mut self.comm_text, comm);
        self.age_text.clear();
        let _ = write!(self.age_text, "{age_s:.2}");
        self.exit_text.clear();
        let _ = write!(self.exit_text, "{status}");
        let time = self.clock.cell(self.time, e.ts, &mut self.time_text);
        let mut cells = Cells::new();
        if self.time != TimeMode::None {
            cells.push(&time);
        }
        cells.push(&self.comm_text);
        cells.push(&e.pid);
        cells.push(&e.ppid);
        cells.push(&e.tid);
        cells.push(&self.age_text);
        if self.print_container {
            cells.push(self.containers.column(e.cgroup_id));
        }
        cells.push(&self.exit_text);
        Ok(self.sink.row(cells.as_slice())?)
    }

    fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }
}
