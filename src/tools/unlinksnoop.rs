//! unlinksnoop: who deletes which files and directories, did it work, and how long it took.
//!
//! The BPF side resolves each path in the kernel at entry (against the caller's working
//! directory or directory fd), so it is the full path even when the caller is gone by the time
//! we read the record. It attaches with fentry/fexit, else kprobes, else the syscall tracepoints
//! (see [`crate::load::attach`]); fentry and kprobes also see removals that do not come through the
//! unlink syscalls (io_uring's IORING_OP_UNLINKAT).

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;

use crate::cli::{parse_comm, parse_pid, parse_uid, CgroupArg, CommonArgs};
use crate::consumer::{self, decode, Handler};
use crate::host::container::CgroupFields;
use crate::load::attach::{self, Choice, Hook, Method};
use crate::load::driver::{self, Attach, Steps};
use crate::output::schema::{event, Attrs, Header};
use crate::output::{Column, EventTable, Sink};
use crate::render::clock::TimeMode;
use crate::render::errno;
use crate::render::escape::{c_str_bytes, escape_into, escaped};

/// How unlinksnoop can lose a removal; the slots match LOSS_* in unlinksnoop.h.
pub static LOSSES: [consumer::LossCause; 3] = [
    consumer::RINGBUF_FULL,
    consumer::LossCause {
        slot: Some(LOSS_INFLIGHT_FULL),
        key: "inflight_full",
        what: "removals lost: the table of removals in flight was full",
        advice: "raise --max-inflight: more threads were removing files at once",
    },
    consumer::LossCause {
        slot: Some(LOSS_NO_RETURN),
        key: "no_return",
        what: "removals lost: their return was never seen (a kretprobe missed it)",
        advice: "use --attach fentry or --attach tracepoint",
    },
];
use crate::load::setup;
use crate::skel::unlinksnoop::{types::unlink_event, OpenUnlinksnoopSkel, UnlinksnoopSkel};

// SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
unsafe impl plain::Plain for unlink_event {}

use crate::skel::unlinksnoop::defs::{
    LOSS_INFLIGHT_FULL, LOSS_NO_RETURN, OP_RMDIR, PATH_TRUNCATED_HEAD, PATH_TRUNCATED_TAIL,
    PATH_UNRESOLVED,
};

/// What unlinksnoop hooks, by method, best first.
pub static HOOK: Hook = Hook {
    methods: &[Method::Fentry, Method::Kprobe, Method::Tracepoint],
    functions: &["do_unlinkat", "do_rmdir"],
    // unlink(2) and rmdir(2) do not exist on every architecture (arm64 has only unlinkat).
    tracepoints: &["syscalls/sys_enter_unlinkat", "syscalls/sys_exit_unlinkat"],
    optional_tracepoints: &[
        "syscalls/sys_enter_unlink",
        "syscalls/sys_exit_unlink",
        "syscalls/sys_enter_rmdir",
        "syscalls/sys_exit_rmdir",
    ],
    also_needs: &[],
};

#[derive(Parser, Debug)]
#[command(
    name = TOOL.name,
    version,
    about = "Trace file and directory removals (unlink, unlinkat, rmdir): who, which full path, the result and the latency",
    after_help = "Examples:\n  unlinksnoop              # trace every removal\n  unlinksnoop -x           # only removals that failed\n  unlinksnoop -T           # with wall-clock time\n  unlinksnoop -p 181       # only PID 181\n  unlinksnoop -u 1000      # only UID 1000\n  unlinksnoop -n rm        # only commands whose name contains \"rm\"\n  unlinksnoop --json       # one JSON object per removal\n  unlinksnoop --check      # what this kernel offers, and how unlinksnoop would attach\n  unlinksnoop --attach tracepoint -v   # force the syscall tracepoints"
)]
pub struct Args {
    /// Include time column (HH:MM:SS)
    #[arg(short = 'T', long = "time")]
    pub time: bool,

    /// Include timestamp column (seconds since unlinksnoop started)
    #[arg(short = 't', long = "timestamp", conflicts_with = "time")]
    pub timestamp: bool,

    /// Trace this PID only
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = parse_pid,
          allow_negative_numbers = true)]
    pub pid: Option<u32>,

    /// Trace this UID only
    #[arg(short = 'u', long = "uid", value_name = "UID", value_parser = parse_uid, allow_negative_numbers = true)]
    pub uid: Option<u32>,

    /// Only commands whose name contains NAME (at most 15 bytes, as the kernel keeps them)
    #[arg(short = 'n', long = "name", value_name = "NAME", value_parser = parse_comm)]
    pub name: Option<String>,

    /// Only removals that failed
    #[arg(short = 'x', long = "failed")]
    pub failed: bool,

    #[command(flatten)]
    pub cgroup: CgroupArg,

    /// How to hook the kernel: auto (the best this kernel can do), fentry, kprobe or tracepoint
    #[arg(long = "attach", value_name = "METHOD", default_value = "auto", value_parser = parse_attach)]
    pub attach: Choice,

    /// Removals followed at once between entering and leaving the kernel (one per thread
    /// inside unlink/rmdir; 8 KiB each); more are counted as lost
    #[arg(long = "max-inflight", value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=16_384),
          allow_negative_numbers = true)]
    pub max_inflight: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--attach`: auto, or one of the methods unlinksnoop has programs for.
fn parse_attach(s: &str) -> Result<Choice, String> {
    attach::parse_choice(TOOL.name, &HOOK, s)
}

pub fn run(args: Args) -> Result<()> {
    driver::run(&args, &args.common, &args.cgroup)
}

impl Steps for Args {
    type Skel = UnlinksnoopSkel<'static>;
    type Handler = UnlinkPrinter;
    const NAME: &'static str = TOOL.name;
    const HOOK: &'static Hook = &HOOK;
    /// What unlinksnoop needs from the host beyond loading BPF: tracefs only for the tracepoint
    /// method (checked when that method is tried), so nothing more up front.
    const NEEDS: crate::load::needs::Needs = driver::kernel_only(false);
    const LOSSES: &'static [consumer::LossCause] = &LOSSES;

    fn attach_with(&self) -> Attach {
        Attach::Select(self.attach)
    }

    /// Only `method`'s programs load; the filters; how this kernel passes the name.
    fn configure(&self, open: &mut OpenUnlinksnoopSkel<'static>, method: Method) -> Result<()> {
        open.maps
            .inflight
            .set_max_entries(self.max_inflight)
            .context("sizing the in-flight table")?;

        let progs = &mut open.progs;
        let fentry = method == Method::Fentry;
        let kprobe = method == Method::Kprobe;
        let tp = method == Method::Tracepoint;
        for (prog, on) in [
            (&mut progs.fentry_unlinkat, fentry),
            (&mut progs.fexit_unlinkat, fentry),
            (&mut progs.fentry_rmdir, fentry),
            (&mut progs.fexit_rmdir, fentry),
            (&mut progs.kprobe_unlinkat, kprobe),
            (&mut progs.kretprobe_unlinkat, kprobe),
            (&mut progs.kprobe_rmdir, kprobe),
            (&mut progs.kretprobe_rmdir, kprobe),
            (&mut progs.tp_enter_unlinkat, tp),
            (&mut progs.tp_exit_unlinkat, tp),
            (
                &mut progs.tp_enter_unlink,
                tp && attach::tracepoint_exists("syscalls/sys_enter_unlink"),
            ),
            (
                &mut progs.tp_exit_unlink,
                tp && attach::tracepoint_exists("syscalls/sys_exit_unlink"),
            ),
            (
                &mut progs.tp_enter_rmdir,
                tp && attach::tracepoint_exists("syscalls/sys_enter_rmdir"),
            ),
            (
                &mut progs.tp_exit_rmdir,
                tp && attach::tracepoint_exists("syscalls/sys_exit_rmdir"),
            ),
        ] {
            prog.set_autoload(on);
        }
        // Frees what a missed return left behind (and counts it): every method needs it.
        open.progs.thread_exit.set_autoload(true);

        let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
        rodata.targ_pid = self.pid.unwrap_or(0);
        if let Some(uid) = self.uid {
            rodata.filter_uid = true;
            rodata.targ_uid = uid;
        }
        if let Some(name) = &self.name {
            for (dst, &src) in rodata.targ_comm.iter_mut().zip(name.as_bytes()) {
                *dst = src as _;
            }
            rodata.targ_comm_len = name.len() as u32;
        }
        rodata.failed_only = self.failed;
        if fentry || kprobe {
            // do_rmdir took the user's string before 5.11; a `struct filename *` since.
            rodata.unlinkat_takes_filename = takes_filename("do_unlinkat")?;
            rodata.rmdir_takes_filename = takes_filename("do_rmdir")?;
        }
        Ok(())
    }

    /// Shorter than `setup::load_error`: it is one method's reason in `attach::select`'s list.
    fn load_error(&self, e: libbpf_rs::Error) -> anyhow::Error {
        anyhow::anyhow!("the kernel refused to load the programs: {e}")
    }

    fn attach(&self, skel: &mut UnlinksnoopSkel<'static>) -> Result<()> {
        attach_returns_first(skel).map_err(|e| anyhow::anyhow!("attaching failed: {e}"))
    }

    fn skipped_runs(&self, skel: &UnlinksnoopSkel<'static>) -> consumer::SkippedRuns {
        let p = &skel.progs;
        consumer::SkippedRuns::new(&[
            &p.fentry_unlinkat,
            &p.fentry_rmdir,
            &p.kprobe_unlinkat,
            &p.kprobe_rmdir,
            &p.tp_enter_unlinkat,
            &p.tp_enter_unlink,
            &p.tp_enter_rmdir,
        ])
    }

    fn handler(&self, sink: Sink) -> Result<UnlinkPrinter> {
        UnlinkPrinter::new(self, sink)
    }
}

/// Attaches the loaded programs: the thread-exit cleanup and the return programs before the
/// entry programs, so that no removal is seen entering while its return cannot be seen (it
/// would count as lost). Links drop in field order, which puts each entry before its return.
fn attach_returns_first(skel: &mut UnlinksnoopSkel<'static>) -> libbpf_rs::Result<()> {
    let p = &skel.progs;
    let l = &mut skel.links;
    let order = [
        (&p.thread_exit, &mut l.thread_exit),
        (&p.fexit_unlinkat, &mut l.fexit_unlinkat),
        (&p.fexit_rmdir, &mut l.fexit_rmdir),
        (&p.kretprobe_unlinkat, &mut l.kretprobe_unlinkat),
        (&p.kretprobe_rmdir, &mut l.kretprobe_rmdir),
        (&p.tp_exit_unlinkat, &mut l.tp_exit_unlinkat),
        (&p.tp_exit_unlink, &mut l.tp_exit_unlink),
        (&p.tp_exit_rmdir, &mut l.tp_exit_rmdir),
        (&p.fentry_unlinkat, &mut l.fentry_unlinkat),
        (&p.fentry_rmdir, &mut l.fentry_rmdir),
        (&p.kprobe_unlinkat, &mut l.kprobe_unlinkat),
        (&p.kprobe_rmdir, &mut l.kprobe_rmdir),
        (&p.tp_enter_unlinkat, &mut l.tp_enter_unlinkat),
        (&p.tp_enter_unlink, &mut l.tp_enter_unlink),
        (&p.tp_enter_rmdir, &mut l.tp_enter_rmdir),
    ];
    for (prog, link) in order {
        if prog.autoload() {
            *link = Some(prog.attach()?);
        }
    }
    Ok(())
}

/// Whether `func(int dfd, NAME)` takes NAME as a `struct filename *` (or, before 5.11 for
/// do_rmdir, as the user's `const char *`). Any other signature is one we do not know how to
/// read: refuse the method rather than report garbage.
fn takes_filename(func: &str) -> Result<bool> {
    match attach::param_type(func, 1).as_deref() {
        Some("struct filename *") => Ok(true),
        Some("const char *") | Some("char *") => Ok(false),
        Some(other) => {
            bail!("{func} takes its name as `{other}` here, a signature unlinksnoop does not know")
        }
        None => bail!("{func} is not in the kernel's BTF"),
    }
}

/// Turns removal records into rows or JSON objects.
pub struct UnlinkPrinter {
    sink: Sink,
    table: EventTable,
    // Reused buffers: no allocation per event in table mode.
    path_bytes: Vec<u8>,
    path_text: String,
    comm_text: String,
    ret_text: String,
    lat_text: String,
}

impl UnlinkPrinter {
    pub fn new(args: &Args, mut sink: Sink) -> Result<Self> {
        let time = TimeMode::from_flags(args.time, args.timestamp);
        let table = EventTable::new(time, args.cgroup.print_container);
        table.header(
            &mut sink,
            [
                Column::id("PID"),
                Column::comm("COMM"),
                Column::right("UID", 6),
                Column::left("RET", 9),
                Column::right("LAT(us)", 9),
            ],
            [Column::left("PATH", 0)],
        )?;
        Ok(UnlinkPrinter {
            sink,
            table,
            path_bytes: Vec::with_capacity(4096),
            path_text: String::with_capacity(4096),
            comm_text: String::new(),
            ret_text: String::new(),
            lat_text: String::new(),
        })
    }
}

impl Handler for UnlinkPrinter {
    fn containers(&mut self) -> Option<&mut crate::host::container::Resolver> {
        Some(&mut self.table.containers)
    }

    fn event(&mut self, data: &[u8]) -> Result<()> {
        let (e, tail) = decode::<unlink_event>(data)?;
        let raw = &tail[..(e.path_len as usize).min(tail.len())];
        let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
        let name_off = (e.name_off as usize).min(raw.len());
        self.path_bytes.clear();
        if u32::from(e.flags) & PATH_UNRESOLVED != 0 || name_off == 0 {
            self.path_bytes.extend_from_slice(raw);
        } else {
            join_path(&mut self.path_bytes, &raw[..name_off], &raw[name_off..]);
        }
        self.path_text.clear();
        if u32::from(e.flags) & PATH_TRUNCATED_HEAD != 0 {
            self.path_text.push_str("...");
        }
        escape_into(&mut self.path_text, &self.path_bytes);
        if u32::from(e.flags) & PATH_TRUNCATED_TAIL != 0 {
            self.path_text.push_str("...");
        }
        let comm = c_str_bytes(&e.comm);

        if self.sink.is_json() {
            let record = UnlinkJson {
                head: Header::new(event::UNLINK, self.table.clock.rfc3339(e.ts)),
                attrs: Attrs {
                    pid: Some(e.pid),
                    tid: Some(e.tid),
                    comm: Some(escaped(comm)),
                    uid: Some(e.uid),
                    file_path: Some(&self.path_text),
                    error: (e.ret < 0).then(|| errno::name(-e.ret)).flatten(),
                    ..Default::default()
                },
                op: if u32::from(e.op) == OP_RMDIR {
                    "rmdir"
                } else {
                    "unlink"
                },
                ret: e.ret,
                lat_us: e.lat_ns as f64 / 1e3,
                path_truncated: u32::from(e.flags) & (PATH_TRUNCATED_HEAD | PATH_TRUNCATED_TAIL)
                    != 0,
                path_relative: u32::from(e.flags) & PATH_UNRESOLVED != 0,
                cgroup: self.table.containers.json(e.cgroup_id),
            };
            return Ok(self.sink.json(&record)?);
        }

        self.comm_text.clear();
        escape_into(&mut self.comm_text, comm);
        self.ret_text.clear();
        errno::result_text(e.ret, &mut self.ret_text);
        self.lat_text.clear();
        let _ = write!(self.lat_text, "{:.1}", e.lat_ns as f64 / 1e3);
        let own: [&dyn std::fmt::Display; 5] = [
            &e.pid,
            &self.comm_text,
            &e.uid,
            &self.ret_text,
            &self.lat_text,
        ];
        let tail: [&dyn std::fmt::Display; 1] = [&self.path_text];
        Ok(self
            .table
            .row(&mut self.sink, e.ts, e.cgroup_id, &own, &tail)?)
    }

    fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }
}

/// One removal (names: src/output/schema.rs).
#[derive(Serialize)]
struct UnlinkJson<'a> {
    #[serde(flatten)]
    head: Header,
    #[serde(flatten)]
    attrs: Attrs<'a>,
    op: &'static str,
    ret: i32,
    lat_us: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    path_truncated: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    path_relative: bool,
    #[serde(flatten)]
    cgroup: CgroupFields<'a>,
}

/// `base` (an absolute directory path ending in '/', as the kernel walked it) joined with the
/// `name` the caller gave. `.` components and repeated slashes are dropped; the leading `..`
/// components of `name` step up from `base`, which is exact because `base` holds no symbolic
/// links. A `..` after another component stays: the component may be a symbolic link.
pub fn join_path(out: &mut Vec<u8>, base: &[u8], name: &[u8]) {
    out.extend_from_slice(base);
    let mut leading = true;
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => continue,
            b".." if leading => {
                // Drop the last component of what we have ("/a/b/" -> "/a/"); "/" stays "/".
                let trimmed = out.len().saturating_sub(1);
                let cut = out[..trimmed]
                    .iter()
                    .rposition(|&b| b == b'/')
                    .map_or(1, |i| i + 1);
                out.truncate(cut.max(1));
                continue;
            }
            _ => leading = false,
        }
        if out.last() != Some(&b'/') {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if name.ends_with(b"/") && out.last() != Some(&b'/') {
        out.push(b'/');
    }
}

/// unlinksnoop in the registry (src/tools/mod.rs).
pub const TOOL: crate::tools::Tool = crate::tools::Tool {
    name: "unlinksnoop",
    command: <Args as clap::CommandFactory>::command,
    main: |invoked, args| {
        crate::cli::main_with(TOOL.name, || run(crate::cli::parse(TOOL.name, invoked, args)))
    },
    page: PAGE,
    events: &[crate::output::schema::event::UNLINK],
};

/// What its man page says beyond the options (coretrace-gen).
const PAGE: crate::tools::Page = crate::tools::Page {
    description: &[
        "unlinksnoop traces file and directory removals (unlink, unlinkat, rmdir): who removed which file, by its full path, whether it worked, and how long it took.",
        "The path is resolved in the kernel at the time of the call, against the caller's working directory or the directory file descriptor it passed, so it is right even when the process is gone before the line is printed. \"...\" in front marks a path deeper than the 64 levels walked.",
        "It attaches with fentry/fexit on do_unlinkat and do_rmdir where the kernel allows it (this also sees io_uring's removals), else with kprobes on the same functions, else with the syscall tracepoints; -v says which, --attach forces one.",
    ],
    requirements: &[
        "The kprobe method needs CONFIG_KPROBES; the fentry method BPF trampolines and the kernel's own BTF.",
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
        "Two programs per removal (entry and return), the full path resolved in the kernel. Under an unlink storm unlinksnoop uses less CPU per event than bpftrace does printing only what it is given (the measured figures are in the README's Performance section and docs/benchmarks.md).",
    ],
    exit_status: &[],
    see_also: &["opensnoop-bpfcc(8)", "bpftrace(8)"],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn join(base: &str, name: &str) -> String {
        let mut v = Vec::new();
        join_path(&mut v, base.as_bytes(), name.as_bytes());
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn relative_names_join_the_base() {
        assert_eq!(join("/home/a/", "f"), "/home/a/f");
        assert_eq!(join("/home/a/", "./sub//f"), "/home/a/sub/f");
        assert_eq!(join("/", "f"), "/f");
    }

    #[test]
    fn leading_dotdot_steps_up_from_the_base_only() {
        assert_eq!(join("/home/a/b/", "../f"), "/home/a/f");
        assert_eq!(join("/home/a/b/", "../../x/f"), "/home/x/f");
        assert_eq!(join("/home/", "../../../f"), "/f");
        // After a component that may be a symlink, `..` is left for the reader.
        assert_eq!(join("/home/a/", "link/../f"), "/home/a/link/../f");
    }

    #[test]
    fn trailing_slash_of_a_directory_stays() {
        assert_eq!(join("/t/", "dir/"), "/t/dir/");
    }
}
