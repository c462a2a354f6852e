//! execsnoop: which programs are being started, by whom, with what arguments, did it work; with
//! `-d MS`, which of them lived at least MS milliseconds.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use clap::Parser;
use libbpf_rs::skel::Skel;
use serde::Serialize;

use crate::cli::{parse_comm, parse_millis, parse_uid, CgroupArg, CommonArgs};
use crate::consumer::{self, decode, Handler, LossCause, SkippedRuns};
use crate::host::container::CgroupFields;
use crate::load::attach::{Hook, Method};
use crate::load::driver::{self, Attach, Steps};
use crate::load::setup;
use crate::output::schema::{event, Attrs, Exit, Header};
use crate::output::{Cells, Column, EventTable, Sink};
use crate::render::clock::TimeMode;
use crate::render::escape::{c_str_bytes, escape_into};
use crate::render::exit_status::ExitStatus;
use crate::skel::execsnoop::{types::exec_event, ExecsnoopSkel, OpenExecsnoopSkel};

mod argv;
mod page;

use argv::{contains, render_args, shown_args, split_args};

// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for exec_event {}

use crate::skel::execsnoop::defs::{
    EXEC_ARGS_TRUNCATED, EXEC_ARGS_UNREADABLE, EXEC_EXITED, LOSS_ARGS_UNREADABLE,
    LOSS_INFLIGHT_FULL, LOSS_LIVE_FULL, TOTAL_MAX_ARGS,
};

/// How execsnoop can lose an exec, or part of one (LOSS_* in execsnoop.h).
pub static LOSSES: [LossCause; 4] = [
    consumer::RINGBUF_FULL,
    LossCause {
        slot: Some(LOSS_INFLIGHT_FULL),
        key: "inflight_full",
        what: "execs lost: the table of execs in flight was full",
        advice: "raise --max-inflight",
    },
    LossCause {
        slot: Some(LOSS_LIVE_FULL),
        key: "live_table_full",
        what: "processes not followed by -d: the table of live processes was full",
        advice: "raise --max-procs, or narrow the filters",
    },
    LossCause {
        slot: Some(LOSS_ARGS_UNREADABLE),
        key: "args_unreadable",
        what: "execs shown without their arguments ([args unreadable]): the memory holding them could not be read",
        advice: "none needed for a failed exec whose arguments were never valid; otherwise report it with the kernel version",
    },
];

/// What execsnoop hooks: tracepoints only (they exist on every kernel it supports).
pub static HOOK: Hook = Hook {
    methods: &[Method::Tracepoint],
    functions: &[],
    tracepoints: &[
        "syscalls/sys_enter_execve",
        "syscalls/sys_exit_execve",
        "syscalls/sys_enter_execveat",
        "syscalls/sys_exit_execveat",
        "sched/sched_process_exec",
    ],
    optional_tracepoints: &[],
    also_needs: &[],
};

#[derive(Parser, Debug)]
#[command(
    name = TOOL.name,
    version,
    about = "Trace exec() calls: which programs start, by whom, with what arguments, and whether it worked",
    after_help = "Examples:\n  execsnoop              # trace all exec() calls\n  execsnoop -x           # include failed exec()s\n  execsnoop -d 100       # report, at exit, programs that lived at least 100 ms\n  execsnoop -T -U        # with wall-clock time and UID\n  execsnoop -u 1000      # only UID 1000\n  execsnoop -n bash      # only commands whose name contains \"bash\"\n  execsnoop -l testpkg   # only commands with an argument containing \"testpkg\"\n  execsnoop -c /sys/fs/cgroup/system.slice   # only this cgroup"
)]
pub struct Args {
    /// Include time column (HH:MM:SS)
    #[arg(short = 'T', long = "time")]
    pub time: bool,

    /// Include timestamp column (seconds since execsnoop started)
    #[arg(short = 't', long = "timestamp", conflicts_with = "time")]
    pub timestamp: bool,

    /// Include failed exec()s (not with -d: a failed exec starts no process to time)
    #[arg(short = 'x', long = "fails", conflicts_with = "min_duration")]
    pub fails: bool,

    /// Trace this UID only
    #[arg(short = 'u', long = "uid", value_name = "UID", value_parser = parse_uid, allow_negative_numbers = true)]
    pub uid: Option<u32>,

    /// Print UID column
    #[arg(short = 'U', long = "print-uid")]
    pub print_uid: bool,

    /// Add quotemarks (") around arguments
    #[arg(short = 'q', long = "quote")]
    pub quote: bool,

    /// Only print commands whose name contains NAME (at most 15 bytes, as the kernel keeps them)
    #[arg(short = 'n', long = "name", value_name = "NAME", value_parser = parse_comm)]
    pub name: Option<String>,

    /// Only print commands with an argument containing LINE
    #[arg(short = 'l', long = "line", value_name = "LINE")]
    pub line: Option<String>,

    #[command(flatten)]
    pub cgroup: CgroupArg,

    /// Maximum number of arguments read (1 to 60); more are shown as "..."
    #[arg(long = "max-args", value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=TOTAL_MAX_ARGS as i64),
          allow_negative_numbers = true)]
    pub max_args: u32,

    /// Report only processes that lived at least MS milliseconds, when they exit
    #[arg(short = 'd', long = "min-duration", value_name = "MS", value_parser = parse_millis,
          allow_negative_numbers = true)]
    pub min_duration: Option<u64>,

    /// With -d: processes followed at once, each holding its arguments (4 KiB) in the kernel
    /// until it exits; more are counted as lost
    #[arg(long = "max-procs", value_name = "N", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576),
          allow_negative_numbers = true)]
    pub max_procs: u32,

    /// Execs recorded at once (4 KiB each; with -x, each is held from entering exec() until it
    /// returns); more are counted as lost
    #[arg(long = "max-inflight", value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=65_536),
          allow_negative_numbers = true)]
    pub max_inflight: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: Args) -> Result<()> {
    driver::run(&args, &args.common, &args.cgroup)
}

impl Steps for Args {
    type Skel = ExecsnoopSkel<'static>;
    type Handler = ExecPrinter;
    const NAME: &'static str = TOOL.name;
    const HOOK: &'static Hook = &HOOK;
    /// What execsnoop needs from the host: tracepoints only.
    const NEEDS: crate::load::needs::Needs = driver::kernel_only(true);
    const LOSSES: &'static [LossCause] = &LOSSES;

    fn attach_with(&self) -> Attach {
        Attach::Fixed(
            "syscalls:sys_{enter,exit}_execve{,at} and sched:sched_process_exec tracepoints",
        )
    }

    /// The table sizes, the filters, and (with -d) the programs that follow processes to their
    /// exit instead of reporting each exec.
    fn configure(&self, open: &mut OpenExecsnoopSkel<'static>, _: Method) -> Result<()> {
        let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
        rodata.ignore_failed = !self.fails;
        if !self.fails {
            // A successful exec is read whole at sched_process_exec: the entry and exit hooks
            // only stage failed execs.
            let p = &mut open.progs;
            for prog in [
                &mut p.enter_execve,
                &mut p.enter_execveat,
                &mut p.exit_execve,
                &mut p.exit_execveat,
            ] {
                prog.set_autoload(false);
            }
        }
        rodata.max_args = self.max_args as i32;
        if let Some(uid) = self.uid {
            rodata.filter_uid = true;
            rodata.targ_uid = uid;
        }
        open.maps.execs.set_max_entries(self.max_inflight)?;
        match self.min_duration {
            Some(ms) => {
                rodata.min_duration_ns = ms * 1_000_000;
                open.maps.live.set_max_entries(self.max_procs)?;
                if !crate::host::system::kernel_at_least(6, 1) {
                    // No BPF memory allocator before 6.1: a tracing program must use a
                    // preallocated hash.
                    open.maps.live.set_map_flags(0)?;
                }
                open.progs.process_exec.set_autoload(false);
            }
            None => {
                open.maps.live.set_max_entries(1)?;
                open.progs.process_exec_live.set_autoload(false);
                open.progs.process_exit.set_autoload(false);
            }
        }
        Ok(())
    }

    fn attach(&self, skel: &mut ExecsnoopSkel<'static>) -> Result<()> {
        skel.attach().context("attaching to the exec tracepoints")
    }

    /// A run the kernel skips of these loses an exec (or, with -d, a process; with -x, a
    /// failed exec). Programs not loaded in this mode are left out by SkippedRuns.
    fn skipped_runs(&self, skel: &ExecsnoopSkel<'static>) -> SkippedRuns {
        let p = &skel.progs;
        let mut progs = vec![&p.process_exec, &p.process_exec_live, &p.process_exit];
        if self.fails {
            progs.extend([
                &p.enter_execve,
                &p.enter_execveat,
                &p.exit_execve,
                &p.exit_execveat,
            ]);
        }
        SkippedRuns::new(&progs)
    }

    fn handler(&self, sink: Sink) -> Result<ExecPrinter> {
        ExecPrinter::new(self, sink)
    }
}

/// Turns exec records into rows or JSON objects.
pub struct ExecPrinter {
    sink: Sink,
    table: EventTable,
    print_uid: bool,
    quote: bool,
    exits: bool,
    max_args: usize,
    name: Option<Vec<u8>>,
    line: Option<Vec<u8>>,
    // Reused buffers: no allocation per event in table mode.
    args_bytes: Vec<u8>,
    args_text: String,
    comm_text: String,
    age_text: String,
    exit_text: String,
}

impl ExecPrinter {
    pub fn new(args: &Args, mut sink: Sink) -> Result<Self> {
        let time = TimeMode::from_flags(args.time, args.timestamp);
        let exits = args.min_duration.is_some();
        let mut cols = Vec::new();
        if args.print_uid {
            // Left-aligned as libbpf-tools' execsnoop has it (unlinksnoop's UID is right-aligned).
            cols.push(Column::left("UID", 6));
        }
        cols.push(Column::comm("PCOMM"));
        cols.push(Column::id("PID"));
        cols.push(Column::id("PPID"));
        if exits {
            cols.push(Column::right("AGE(ms)", 9));
            cols.push(Column::left("EXIT", 10));
        } else {
            cols.push(Column::right("RET", 3));
        }
        let table = EventTable::new(time, args.cgroup.print_container);
        table.header(&mut sink, cols, [Column::left("ARGS", 0)])?;
        Ok(ExecPrinter {
            sink,
            table,
            print_uid: args.print_uid,
            quote: args.quote,
            exits,
            max_args: args.max_args as usize,
            name: args.name.clone().map(String::into_bytes),
            line: args.line.clone().map(String::into_bytes),
            args_bytes: Vec::new(),
            args_text: String::new(),
            comm_text: String::new(),
            age_text: String::new(),
            exit_text: String::new(),
        })
    }

    fn wanted(&self, comm: &[u8], args: &[u8]) -> bool {
        if let Some(name) = &self.name {
            if !contains(comm, name) {
                return false;
            }
        }
        if let Some(line) = &self.line {
            if !args.split(|&b| b == 0).any(|arg| contains(arg, line)) {
                return false;
            }
        }
        true
    }
}

impl Handler for ExecPrinter {
    fn containers(&mut self) -> Option<&mut crate::host::container::Resolver> {
        Some(&mut self.table.containers)
    }

    fn event(&mut self, data: &[u8]) -> Result<()> {
        let (e, tail) = decode::<exec_event>(data)?;
        let raw = &tail[..(e.args_size as usize).min(tail.len())];
        let mut args = std::mem::take(&mut self.args_bytes);
        let cut = shown_args(&mut args, raw, e.flags, self.max_args);
        let result = self.print(e, &args, cut);
        self.args_bytes = args;
        result
    }

    fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }
}

impl ExecPrinter {
    /// One exec as a row or a JSON object; `args` as [`shown_args`] made them.
    fn print(&mut self, e: &exec_event, args: &[u8], cut: bool) -> Result<()> {
        let comm = c_str_bytes(&e.comm);
        if !self.wanted(comm, args) {
            return Ok(());
        }
        let truncated = cut || e.flags & EXEC_ARGS_TRUNCATED != 0;
        let unreadable = e.flags & EXEC_ARGS_UNREADABLE != 0;
        let status =
            (e.flags & EXEC_EXITED != 0).then(|| ExitStatus::from_wait_status(e.exit_code));

        if self.sink.is_json() {
            let record = ExecJson {
                head: Header::new(event::EXEC, self.table.clock.rfc3339(e.ts)),
                attrs: Attrs {
                    pid: Some(e.pid),
                    ppid: Some(e.ppid),
                    uid: Some(e.uid),
                    comm: Some(escaped_string(comm)),
                    args: Some(split_args(args).map(escaped_string).collect()),
                    exit: status.map(Exit::from),
                    ..Default::default()
                },
                ret: e.retval,
                args_truncated: truncated,
                args_unreadable: unreadable,
                age_ms: status.map(|_| e.duration_ns as f64 / 1e6),
                cgroup: self.table.containers.json(e.cgroup_id),
            };
            return Ok(self.sink.json(&record)?);
        }

        self.args_text.clear();
        render_args(&mut self.args_text, args, self.quote, truncated);
        if unreadable {
            if !self.args_text.is_empty() {
                self.args_text.push(' ');
            }
            self.args_text.push_str(ARGS_UNREADABLE);
        }
        self.comm_text.clear();
        escape_into(&mut self.comm_text, comm);
        let mut own = Cells::new();
        if self.print_uid {
            own.push(&e.uid);
        }
        own.push(&self.comm_text);
        own.push(&e.pid);
        own.push(&e.ppid);
        if self.exits {
            self.age_text.clear();
            let _ = write!(self.age_text, "{:.1}", e.duration_ns as f64 / 1e6);
            self.exit_text.clear();
            let _ = write!(
                self.exit_text,
                "{}",
                status.unwrap_or(ExitStatus::from_wait_status(0))
            );
            own.push(&self.age_text);
            own.push(&self.exit_text);
        } else {
            own.push(&e.retval);
        }
        let tail: [&dyn std::fmt::Display; 1] = [&self.args_text];
        Ok(self
            .table
            .row(&mut self.sink, e.ts, e.cgroup_id, own.as_slice(), &tail)?)
    }
}

/// One exec (names: src/output/schema.rs).
#[derive(Serialize)]
struct ExecJson<'a> {
    #[serde(flatten)]
    head: Header,
    #[serde(flatten)]
    attrs: Attrs<'a>,
    ret: i32,
    args_truncated: bool,
    /// The arguments could not be read (counted as `args_unreadable` at exit).
    args_unreadable: bool,
    /// With -d: how long the process lived (its exit is in `attrs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    age_ms: Option<f64>,
    #[serde(flatten)]
    cgroup: CgroupFields<'a>,
}

fn escaped_string(bytes: &[u8]) -> String {
    crate::render::escape::escaped(bytes)
}

/// What a row shows after the arguments it read, when they could not be read.
pub const ARGS_UNREADABLE: &str = "[args unreadable]";

/// execsnoop in the registry (src/tools/mod.rs).
pub const TOOL: crate::tools::Tool = crate::tools::Tool {
    name: "execsnoop",
    command: <Args as clap::CommandFactory>::command,
    main: |invoked, args| {
        crate::cli::main_with(TOOL.name, || run(crate::cli::parse(TOOL.name, invoked, args)))
    },
    page: page::PAGE,
    events: &[crate::output::schema::event::EXEC],
};

