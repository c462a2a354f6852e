//! The periodic report: read what is outstanding from the BPF maps, total it per stack, and
//! print the top stacks with symbolized frames (memleak's format), or one JSON object.
//!
//! Here: the reporter's state, when it reports, and how the traced process ended. By concern:
//! `gather` reads the BPF maps and groups what is outstanding per stack (the top stacks, with
//! their frames); `kernel` holds kernel mode's reading of a stack (call sites recorded without
//! stacks, allocator and tracing frames, objects freed where no tracepoint sees it); `json`
//! and `text` render one report; `user` holds what --unwind dwarf adds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use libbpf_rs::MapCore;

use super::command::{shell_status, Child};
use crate::host::symbols::Symbols;
use super::unwind;
use super::Args;
use crate::consumer::{Handler, Stop};
use crate::host::container::Resolver;
use crate::host::proc_maps;
use crate::output::metrics::Exposition;
use crate::output::Sink;
use crate::render::clock::Clock;
use crate::render::exit_status::ExitStatus;
use crate::skel::kmemleak_lite::KmemleakLiteSkel;

mod gather;
mod json;
mod kernel;
mod text;
mod user;

#[derive(Clone, Copy)]
pub enum Mode<'a> {
    Kernel,
    Pid(u32),
    Command(&'a Child),
}

pub struct Reporter<'a> {
    sink: Sink,
    mode: Mode<'a>,
    stop: &'a Stop,
    allocs: &'a dyn MapCore,
    stacks: &'a dyn MapCore,
    combined_allocs: &'a dyn MapCore,
    /// Kernel mode: per stack, its cache and its objects freed out of sight.
    kstacks: &'a dyn MapCore,
    /// The same per call site recorded without stacks.
    ksites: &'a dyn MapCore,
    /// Kernel mode: --stacks-per-second (said beside the call sites recorded without stacks).
    stacks_per_second: u32,
    combined: bool,
    show_allocs: bool,
    top: usize,
    older_ns: u64,
    /// -o given: it applies to the last report too.
    older_given: bool,
    interval: Duration,
    next_report: Instant,
    clock: Clock,
    symbols: Symbols,
    /// See [`Reporter::new`].
    loader_probed: bool,
    /// The loader has mapped or unmapped a library since the maps were last read.
    maps_changed: bool,
    /// How the traced process ended (said on stderr), and, for a command, the status to exit
    /// with.
    ended: Option<(String, Option<u8>)>,
    keys: Vec<u8>,
    values: Vec<u8>,
    totals: HashMap<i64, (u64, u64)>,
    listed: Vec<(u64, u64, u64, i64)>,
    /// The last report's stacks, for Prometheus: stack id, bytes, allocations, caller.
    exported: Vec<(i64, u64, u64, String)>,
    containers: Resolver,
    /// The traced process's cgroup, read at start (the last report may come after it ended).
    cgroup_id: Option<u64>,
    /// User mode with --unwind dwarf: the stacks unwound from the copies the BPF side sends.
    user_stacks: Option<unwind::Stacks>,
}

impl<'a> Reporter<'a> {
    /// `loader_probed`: the dynamic loader's hook is probed, so a record arrives whenever the
    /// process maps a library; else its maps are re-read every poll round.
    pub fn new(
        args: &Args,
        sink: Sink,
        mode: Mode<'a>,
        loader_probed: bool,
        skel: &'a KmemleakLiteSkel<'a>,
        stop: &'a Stop,
    ) -> Result<Self> {
        let mut symbols = match mode {
            Mode::Kernel => Symbols::kernel(),
            _ => Symbols::user(),
        };
        if let Mode::Command(child) = mode {
            symbols.update_maps(child.maps_at_exec.clone());
        }
        let mut r = Reporter {
            sink,
            mode,
            stop,
            allocs: &skel.maps.allocs,
            stacks: &skel.maps.stack_traces,
            combined_allocs: &skel.maps.combined_allocs,
            kstacks: &skel.maps.kstacks,
            ksites: &skel.maps.ksites,
            stacks_per_second: args.stack_budget(),
            combined: args.combined,
            show_allocs: args.show_allocs,
            top: args.top as usize,
            older_ns: args.older.unwrap_or(500) * 1_000_000,
            older_given: args.older.is_some(),
            interval: args.interval,
            next_report: Instant::now() + args.interval,
            clock: Clock::new(),
            symbols,
            loader_probed,
            maps_changed: false,
            ended: None,
            keys: Vec::new(),
            values: Vec::new(),
            totals: HashMap::new(),
            listed: Vec::new(),
            exported: Vec::new(),
            containers: Resolver::default(),
            cgroup_id: None,
            user_stacks: (args.user_mode() && args.unwind == unwind::UnwindMode::Dwarf)
                .then(|| unwind::Stacks::new(args.stack_bytes)),
        };
        r.refresh_maps();
        r.cgroup_id = r.pid().and_then(|p| r.containers.pid_cgroup(p));
        Ok(r)
    }

    /// How the traced process ended, if it did (said on stderr after the last report), and
    /// the command's status as a shell gives it.
    pub fn ended(&self) -> Option<(String, Option<u8>)> {
        self.ended.clone()
    }

    fn pid(&self) -> Option<u32> {
        match self.mode {
            Mode::Kernel => None,
            Mode::Pid(pid) => Some(pid),
            Mode::Command(child) => Some(child.pid),
        }
    }

    /// Keeps the snapshot of the process's mappings fresh, so its frames resolve after it ends.
    /// Read at each report and whenever the loader says it mapped a library.
    fn refresh_maps(&mut self) {
        self.maps_changed = false;
        if let Some(pid) = self.pid() {
            if let Ok(maps) = proc_maps::read(pid) {
                self.symbols.update_maps(maps);
            }
        }
    }

    fn check_target_ended(&mut self) {
        if self.ended.is_some() {
            return;
        }
        match self.mode {
            Mode::Kernel => {}
            Mode::Command(child) => {
                if let Some(status) = child.wait(false) {
                    self.command_ended(child, status);
                }
            }
            Mode::Pid(pid) => {
                if !crate::host::system::process_exists(pid) {
                    self.ended = Some((format!("kmemleak-lite: process {pid} ended"), None));
                }
            }
        }
        if self.ended.is_some() {
            self.stop.request();
        }
    }

    fn command_ended(&mut self, child: &Child, status: i32) {
        self.ended = Some((
            format!(
                "kmemleak-lite: the command (pid {}) ended: {}",
                child.pid,
                ExitStatus::from_wait_status(status)
            ),
            Some(shell_status(status)),
        ));
    }

    fn report(&mut self, last: bool) -> Result<()> {
        self.refresh_maps();
        let now_ns = Clock::monotonic_now_ns();
        if last && self.ended.is_some() && !self.older_given {
            // The process is gone: whatever it left is never freed, however young. The default
            // age filter (which hides blocks about to be freed) would hide a short run's leaks.
            self.older_ns = 0;
        }
        self.gather(now_ns)?;
        let top = self.top_stacks();
        if self.sink.is_json() {
            return self.write_json(now_ns, last, top);
        }
        self.write_text(now_ns, top)
    }
}

impl Handler for Reporter<'_> {
    fn containers(&mut self) -> Option<&mut crate::host::container::Resolver> {
        Some(&mut self.containers)
    }

    /// The dynamic loader has mapped or unmapped libraries; or, with --unwind dwarf, a copy of
    /// a stack to unwind (user.rs).
    fn event(&mut self, data: &[u8]) -> Result<()> {
        if !self.stack_copy(data) {
            // The loader's: read the maps now, while the process is there (a short one may
            // end before the next poll round, and its frames in libraries would go unnamed).
            self.refresh_maps();
        }
        Ok(())
    }

    /// The stacks of the last report (-T): outstanding bytes and allocations, by stack id and
    /// the stack's first frame outside the allocator.
    fn metrics(&mut self, out: &mut Exposition) {
        let families = [
            (
                "coretrace_kmemleak_outstanding_bytes",
                "Bytes allocated and not freed, per call stack (the stacks of the last report).",
            ),
            (
                "coretrace_kmemleak_outstanding_allocations",
                "Allocations not freed, per call stack (the stacks of the last report).",
            ),
        ];
        // With -p or -c every stack belongs to one process: its container (the full id, as in
        // JSON), else its cgroup path, labels the series so that a fleet's leaks sum by container.
        let container = self.cgroup_id.map(|id| {
            let f = self.containers.json(id);
            f.container_id.or(f.cgroup).unwrap_or_default().to_string()
        });
        for (i, (name, help)) in families.into_iter().enumerate() {
            out.family(name, "gauge", help);
            for (id, bytes, count, frame) in &self.exported {
                let id = id.to_string();
                let value = if i == 0 { *bytes } else { *count };
                let mut labels = vec![("stack_id", id.as_str()), ("top_frame", frame.as_str())];
                if let Some(c) = &container {
                    labels.push(("container", c.as_str()));
                }
                out.sample(name, &labels, value as f64);
            }
        }
    }

    fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }

    fn tick(&mut self, now: Instant) -> Result<()> {
        if self.maps_changed || !self.loader_probed {
            self.refresh_maps();
        }
        self.check_target_ended();
        if self.ended.is_none() && now >= self.next_report {
            while self.next_report <= now {
                self.next_report += self.interval;
            }
            self.report(false)?;
        }
        Ok(())
    }

    /// The last report. A command still running (the tool was stopped) is ended first, so
    /// that it does not outlive the tool and the report holds all it left.
    fn finish(&mut self) -> Result<()> {
        self.check_target_ended();
        if let (Mode::Command(child), None) = (self.mode, &self.ended) {
            let status = child.terminate(Duration::from_secs(2));
            self.command_ended(child, status);
        }
        self.report(true)
    }
}
