//! exitsnoop: which processes end, how old they were, and with what code or signal.

use anyhow::{Context, Result};
use clap::Parser;
use libbpf_rs::skel::Skel;
use serde::Serialize;

use crate::cli::{parse_millis, parse_pid, CgroupArg, CommonArgs};
use crate::consumer::{self, decode, Handler};
use crate::host::container::CgroupFields;
use crate::load::attach::{Hook, Method};
use crate::load::driver::{self, Attach, Steps};
use crate::output::schema::{event, Attrs, Header};
use crate::output::{Column, EventTable, Sink};
use crate::render::clock::TimeMode;
use crate::render::escape::{c_str_bytes, escape_into, escaped};
use crate::render::exit_status::ExitStatus;

/// How exitsnoop can lose an exit.
pub static LOSSES: [consumer::LossCause; 1] = [consumer::RINGBUF_FULL];
use crate::load::setup;
use crate::skel::exitsnoop::{types::exit_event, ExitsnoopSkel, OpenExitsnoopSkel};

// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for exit_event {}

/// What exitsnoop hooks: tracepoints only (they exist on every kernel it supports).
pub static HOOK: Hook = Hook {
    methods: &[Method::Tracepoint],
    functions: &[],
    tracepoints: &["sched/sched_process_exit"],
    optional_tracepoints: &[],
    also_needs: &[],
};

#[derive(Parser, Debug)]
#[command(
    name = TOOL.name,
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

pub fn run(args: Args) -> Result<()> {
    driver::run(&args, &args.common, &args.cgroup)
}

impl Steps for Args {
    type Skel = ExitsnoopSkel<'static>;
    type Handler = ExitPrinter;
    const NAME: &'static str = TOOL.name;
    const HOOK: &'static Hook = &HOOK;
    /// What exitsnoop needs from the host: one tracepoint.
    const NEEDS: crate::load::needs::Needs = driver::kernel_only(true);
    const LOSSES: &'static [consumer::LossCause] = &LOSSES;

    fn attach_with(&self) -> Attach {
        Attach::Fixed("the sched:sched_process_exit tracepoint")
    }

    fn configure(&self, open: &mut OpenExitsnoopSkel<'static>, _: Method) -> Result<()> {
        let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
        rodata.targ_pid = self.pid.unwrap_or(0);
        rodata.trace_threads = self.threaded;
        rodata.failed_only = self.failed;
        rodata.min_age_ns = self.min_duration.unwrap_or(0) * 1_000_000;
        Ok(())
    }

    fn attach(&self, skel: &mut ExitsnoopSkel<'static>) -> Result<()> {
        skel.attach()
            .context("attaching to sched:sched_process_exit")
    }

    fn skipped_runs(&self, skel: &ExitsnoopSkel<'static>) -> consumer::SkippedRuns {
        consumer::SkippedRuns::new(&[&skel.progs.process_exit])
    }

    fn handler(&self, sink: Sink) -> Result<ExitPrinter> {
        ExitPrinter::new(self, sink)
    }
}

/// Turns exit records into rows or JSON objects.
pub struct ExitPrinter {
    sink: Sink,
    table: EventTable,
    comm_text: String,
    age_text: String,
    exit_text: String,
}

impl ExitPrinter {
    pub fn new(args: &Args, mut sink: Sink) -> Result<Self> {
        // Not TimeMode::from_flags: exitsnoop's -t is wall time and -T threads (libbpf-tools').
        let time = if args.timestamp {
            TimeMode::Wall
        } else {
            TimeMode::None
        };
        let table = EventTable::new(time, args.cgroup.print_container);
        table.header(
            &mut sink,
            [
                Column::comm("PCOMM"),
                Column::id("PID"),
                Column::id("PPID"),
                Column::id("TID"),
                Column::right("AGE(s)", 7),
            ],
            [Column::left("EXIT", 0)],
        )?;
        Ok(ExitPrinter {
            sink,
            table,
            comm_text: String::new(),
            age_text: String::new(),
            exit_text: String::new(),
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
    fn containers(&mut self) -> Option<&mut crate::host::container::Resolver> {
        Some(&mut self.table.containers)
    }

    fn event(&mut self, data: &[u8]) -> Result<()> {
        use std::fmt::Write;
        let (e, _) = decode::<exit_event>(data)?;
        let status = ExitStatus::from_wait_status(e.exit_code);
        let age_s = e.ts.saturating_sub(e.start_time) as f64 / 1e9;
        let comm = c_str_bytes(&e.comm);
        if self.sink.is_json() {
            let record = ExitJson {
                head: Header::new(event::EXIT, self.table.clock.rfc3339(e.ts)),
                attrs: Attrs {
                    pid: Some(e.pid),
                    ppid: Some(e.ppid),
                    tid: Some(e.tid),
                    comm: Some(escaped(comm)),
                    exit: Some(status.into()),
                    ..Default::default()
                },
                age_s,
                cgroup: self.table.containers.json(e.cgroup_id),
            };
            return Ok(self.sink.json(&record)?);
        }
        self.comm_text.clear();
        escape_into(&mut self.comm_text, comm);
        self.age_text.clear();
        let _ = write!(self.age_text, "{age_s:.2}");
        self.exit_text.clear();
        let _ = write!(self.exit_text, "{status}");
        let own: [&dyn std::fmt::Display; 5] =
            [&self.comm_text, &e.pid, &e.ppid, &e.tid, &self.age_text];
        let tail: [&dyn std::fmt::Display; 1] = [&self.exit_text];
        Ok(self
            .table
            .row(&mut self.sink, e.ts, e.cgroup_id, &own, &tail)?)
    }

    fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }
}

/// exitsnoop in the registry (src/tools/mod.rs).
pub const TOOL: crate::tools::Tool = crate::tools::Tool {
    name: "exitsnoop",
    command: <Args as clap::CommandFactory>::command,
    main: |invoked, args| {
        crate::cli::main_with(TOOL.name, || run(crate::cli::parse(TOOL.name, invoked, args)))
    },
    page: PAGE,
    events: &[crate::output::schema::event::EXIT],
};

/// What its man page says beyond the options (coretrace-gen).
const PAGE: crate::tools::Page = crate::tools::Page {
    description: &[
        "exitsnoop traces process exits: who ended, how old it was, and with what exit code or signal. With -T thread exits are shown too; -x keeps only failures (a non-zero code or a death by signal).",
        "Filters (-p, -c, -d) run in the kernel. Events that cannot be shown are counted by cause and reported at exit.",
    ],
    requirements: &[
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
};
