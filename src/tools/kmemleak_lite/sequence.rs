//! kmemleak-lite's phases of the driver's one sequence (`driver::Sequence`): its target (the
//! kernel, a process, or a command started and held before its exec) found before load, its
//! method chosen by trying in kernel mode, its links held outside the skeleton, and with -c the
//! command's exit status.

use anyhow::Result;
use libbpf_rs::Link;

use super::report::{Mode, Reporter};
use super::command::{self, Child};
use super::target::{self, Allocator};
use super::programs::{attach_allocator, attach_kernel, open_sized};
use super::{
    check_attempt, needs, session, Args, KERNEL_HOOK, LOSSES, PROBE_SKIPPED, TOOL, USER_HOOK,
};
use crate::cli::CommonArgs;
use crate::consumer::{self, LossCause, Stop};
use crate::host::container::CgroupFilter;
use crate::load::attach;
use crate::load::driver::{Flow, Sequence, Session};
use crate::output::Sink;
use crate::skel::kmemleak_lite::KmemleakLiteSkel;

/// What kmemleak-lite traces.
pub enum Target {
    Kernel,
    Pid(u32, Allocator),
    Command(Child, Allocator, String),
}

/// The links, and what they attach to (for -v).
pub struct Attached {
    links: Vec<Link>,
    what: String,
}

impl Sequence for Args {
    type Skel = KmemleakLiteSkel<'static>;
    type Target = Target;
    type Links = Attached;
    type Handler<'a> = Reporter<'a>;
    const NAME: &'static str = TOOL.name;
    const LOSSES: &'static [LossCause] = &LOSSES;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn needs(&self) -> crate::load::needs::Needs {
        needs(self)
    }

    fn check(&self, _: &Session) -> Result<()> {
        // Kernel mode uses the kmem tracepoints, -p/-c uprobes on the allocator: load and
        // attach what this command line would, then detach.
        let hook = if self.user_mode() { &USER_HOOK } else { &KERNEL_HOOK };
        let mut attempt = |m| check_attempt(self, m == attach::Method::Fentry);
        let (auto, json) = (attach::Choice::Auto, self.common.json);
        crate::load::check::check(TOOL.name, hook, auto, json, &needs(self), &mut attempt)
    }

    /// Its own size: only the loader's rare wake-ups travel it (the reports read the maps).
    fn buffer_bytes(&self) -> u32 {
        session(self).buffer_bytes
    }

    // No cgroup filter: kmemleak-lite has no -c/--container (-c is its command).

    /// Everything that can fail about the target is checked before a command is started.
    fn resolve(&self) -> Result<Target> {
        Ok(if let Some(pid) = self.pid {
            Target::Pid(pid, target::allocator_of_pid(pid)?)
        } else if let Some(line) = &self.command {
            let argv = command::split_command(line)?;
            let exe = command::resolve_program(&argv[0])?;
            let alloc = target::allocator_of_command(&exe)?;
            let child = Child::spawn(&exe, &argv)?;
            Target::Command(child, alloc, line.clone())
        } else {
            Target::Kernel
        })
    }

    /// Kernel mode tries its methods (attaching each); user mode loads its one.
    fn load(
        &self,
        session: &Session,
        cgroup: &CgroupFilter,
        target: &Target,
    ) -> Result<(KmemleakLiteSkel<'static>, Attached)> {
        let Target::Kernel = target else {
            let (open, _) = open_sized(session, self, true, false)?;
            let links = Vec::new();
            return Ok((session.load(open, cgroup)?, Attached { links, what: String::new() }));
        };
        let mut attempt = |method| {
            let bulk = method == attach::Method::Fentry;
            let (open, node_tps) = open_sized(session, self, false, bulk)?;
            let skel = session.load(open, cgroup)?;
            let (links, names) = attach_kernel(&skel, node_tps, self.pages, bulk)?;
            Ok((skel, links, names))
        };
        let (auto, verbose) = (attach::Choice::Auto, self.common.verbose);
        let ((skel, links, names), _) =
            attach::select(TOOL.name, &KERNEL_HOOK, auto, verbose, &mut attempt)?;
        let what = format!("the kmem tracepoints {names}");
        Ok((skel, Attached { links, what }))
    }

    /// User mode: the allocator's functions in the process.
    fn attach(
        &self,
        skel: &mut KmemleakLiteSkel<'static>,
        target: &mut Target,
        attached: &mut Attached,
        _: &Stop,
    ) -> Result<Flow> {
        if let Target::Pid(pid, alloc) | Target::Command(Child { pid, .. }, alloc, _) = target {
            let verbose = self.common.verbose;
            attach_allocator(skel, *pid, alloc, &mut attached.links, verbose)?;
            let path = crate::render::escape::path(&alloc.path);
            attached.what = format!("{path} in process {pid}");
        }
        Ok(Flow::Go)
    }

    /// Kernel mode: a skipped kmem program misses an allocation or a free. (Uprobe programs
    /// are not skipped that way: the list is empty in user mode, and the cause reads 0.)
    fn skipped_runs(
        &self,
        skel: &KmemleakLiteSkel<'static>,
        target: &Target,
    ) -> (&'static LossCause, consumer::SkippedRuns) {
        let p = &skel.progs;
        let skipped = match target {
            Target::Kernel => consumer::SkippedRuns::new(&[
                &p.kmalloc,
                &p.kfree,
                &p.kmem_cache_alloc,
                &p.kmem_cache_free,
                &p.kmalloc_node,
                &p.kmem_cache_alloc_node,
                &p.mm_page_alloc,
                &p.mm_page_free,
                &p.mm_page_free_batched,
                &p.kmem_cache_free_bulk,
            ]),
            _ => consumer::SkippedRuns::new::<libbpf_rs::ProgramMut>(&[]),
        };
        (&PROBE_SKIPPED, skipped)
    }

    /// Lets -c's command go, says what is traced, and starts the reports.
    fn handler<'a>(
        &'a self,
        skel: &'a KmemleakLiteSkel<'static>,
        target: &'a mut Target,
        attached: &Attached,
        stop: &'a Stop,
        sink: Sink,
    ) -> Result<Reporter<'a>> {
        if let Target::Command(child, _, _) = target {
            child.release()?;
        }
        let target: &'a Target = target;
        self.announce(target, &attached.what);
        let (mode, loader_probed) = match target {
            Target::Kernel => (Mode::Kernel, false),
            Target::Pid(pid, alloc) => (Mode::Pid(*pid), alloc.loader.is_some()),
            Target::Command(child, alloc, _) => (Mode::Command(child), alloc.loader.is_some()),
        };
        Reporter::new(self, sink, mode, loader_probed, skel, stop)
    }

    /// With -c, the command's status, as a shell gives it (exit code N: N, killed by signal
    /// S: 128+S); else 0.
    fn finish(&self, reporter: Reporter<'_>, consumed: Result<()>) -> Result<u8> {
        consumed?;
        let ended = reporter.ended();
        drop(reporter);
        if let Some((msg, _)) = &ended {
            eprintln!("{msg}");
        }
        Ok(ended.and_then(|(_, status)| status).unwrap_or(0))
    }
}

impl Args {
    /// With -v, what is attached; then, for the table, how to stop.
    fn announce(&self, target: &Target, what: &str) {
        let user = self.user_mode();
        if self.common.verbose && user {
            eprintln!("kmemleak-lite: attached to {what}");
        } else if self.common.verbose {
            eprintln!("kmemleak-lite: allocations and frees from {what}");
        }
        if !self.common.json {
            match target {
                Target::Kernel => eprintln!("Tracing kernel allocations... Hit Ctrl-C to end."),
                Target::Pid(pid, _) => {
                    eprintln!("Attaching to pid {pid}, Ctrl+C to quit.")
                }
                Target::Command(child, _, line) => {
                    let line = crate::render::escape::escaped(line.as_bytes());
                    eprintln!("Started '{line}' as pid {}, Ctrl+C to quit.", child.pid)
                }
            }
        }
        if self.combined && self.older.is_some() {
            eprintln!("kmemleak-lite: note: -o does not apply with --combined (the kernel keeps totals per stack, not ages)");
        }
    }
}
