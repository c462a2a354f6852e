//! The periodic report: read what is outstanding from the BPF maps, total it per stack, and
//! print the top stacks with symbolized frames (memleak's format), or one JSON object.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use libbpf_rs::{MapCore, MapFlags};
use serde::Serialize;

use super::symbols::{Frame, Symbols};
use super::command::{shell_status, Child};
use super::unwind::{self, UserId};
use user::Incomplete;

mod user;
use super::Args;
use crate::consumer::{Handler, Stop};
use crate::host::container::{CgroupFields, Resolver};
use crate::host::proc_maps;
use crate::output::metrics::Exposition;
use crate::output::schema::{event, Header};
use crate::output::Sink;
use crate::render::clock::Clock;
use crate::render::exit_status::ExitStatus;
use crate::skel::kmemleak_lite::defs::{CALL_SITE_STACK_LOST, STACK_ID_CALL_SITE};
use crate::skel::kmemleak_lite::types::{alloc_info, combined_info, kstack_info};
use crate::skel::kmemleak_lite::KmemleakLiteSkel;

#[derive(Clone, Copy)]
pub enum Mode<'a> {
    Kernel,
    Pid(u32),
    Command(&'a Child),
}

#[derive(Serialize)]
struct StackJson<'f> {
    bytes: u64,
    allocations: u64,
    stack_id: i64,
    frames: Vec<&'f Frame>,
    /// Kernel mode: why these objects are not leaks although no free was seen (see
    /// [`unseen_free`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    unseen_free: Option<String>,
    /// Kernel mode: the slab cache the stack allocates from, where the tracepoint names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<String>,
    /// Kernel mode: this stack's objects handed out again while still listed (freed unseen).
    #[serde(skip_serializing_if = "Option::is_none")]
    freed_unseen: Option<u64>,
    /// Allocations counted under their call site, and why ([`CallSite`], [`UserId::Site`]):
    /// `frames` holds the call site alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    call_site_only: Option<&'static str>,
    /// User mode: how the stack was walked, "fp" or "dwarf" (--unwind).
    #[serde(skip_serializing_if = "Option::is_none")]
    unwind: Option<&'static str>,
    /// User mode: the stack went deeper than the bytes copied (--stack-bytes): its outermost
    /// callers are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<bool>,
}

/// Kernel mode: a call site id standing for the stacks of allocations recorded under it
/// (kmemleak_lite.h, STACK_ID_CALL_SITE).
#[derive(Clone, Copy)]
struct CallSite {
    addr: u64,
    /// The stacks were lost (stack table full, collision; counted), rather than not taken
    /// (over --stacks-per-second).
    lost: bool,
}

impl CallSite {
    fn of(stack_id: i64) -> Option<CallSite> {
        (stack_id <= STACK_ID_CALL_SITE).then_some(CallSite {
            addr: stack_id as u64 | CALL_SITE_STACK_LOST,
            lost: stack_id as u64 & CALL_SITE_STACK_LOST == 0,
        })
    }

    /// The JSON `call_site_only` value.
    fn why(self) -> &'static str {
        match self.lost {
            true => "stack_lost",
            false => "over_budget",
        }
    }
}

/// Kernel objects the kernel frees where the kmem tracepoints do not see it: without a free
/// they would stay listed forever, as false leaks. Matched on the allocation's call site (the
/// first frame past the slab allocator). Maple tree nodes (VMA trees, since 6.1) are freed with
/// kmem_cache_free_bulk, or through kfree_rcu, whose batches end in kfree_bulk (6.18: in the
/// cache's RCU sheaf); none has a tracepoint. fentry on kmem_cache_free_bulk sees the bulk
/// frees where the kernel allows it, not the 6.18 sheaf path: these stay marked everywhere.
const UNSEEN_FREES: &[(&str, &str)] = &[
    ("mas_", "maple tree node: freed in bulk or after RCU, where the kmem tracepoints cannot see it; not a leak"),
    ("mt_", "maple tree node: freed in bulk or after RCU, where the kmem tracepoints cannot see it; not a leak"),
];

/// What the kernel side learnt about one allocation stack (kmemleak_lite.h, kstacks).
#[derive(Default, Clone)]
pub struct StackInfo {
    /// Objects of this stack the kernel handed out again while still listed.
    pub reused: u64,
    /// The slab cache, where the tracepoint names it.
    pub cache: Option<String>,
}

/// A stack is judged freed out of sight once at least one of its objects in this many was
/// seen handed out again without a free (counted against what it has listed). A free missed
/// now and then (a skipped program run, counted as `probe_skipped`) stays below it; a stack
/// whose frees all go unseen passes it within a few reports, as its addresses come round.
const REUSED_PER_LISTED: u64 = 4;

/// Why a kernel stack's allocations are not leaks though no free was seen, if they are not:
/// a known call site, or its objects seen reallocated without a free.
fn unseen_free(frames: &[&Frame], info: &StackInfo, listed: u64) -> Option<String> {
    let known = call_site(frames)
        .and_then(|f| f.symbol.as_deref())
        .and_then(|site| {
            UNSEEN_FREES
                .iter()
                .find(|(prefix, _)| site.starts_with(prefix))
        });
    if let Some((_, why)) = known {
        return Some((*why).to_string());
    }
    (info.reused > 0 && info.reused * REUSED_PER_LISTED >= listed).then(|| {
        format!(
            "freed where the kmem tracepoints cannot see it (bulk or RCU-batched frees): {} of its objects were handed out again with no free seen; not a leak",
            info.reused
        )
    })
}

#[derive(Serialize)]
struct AllocJson {
    addr: String,
    size: u64,
    age_ms: u64,
    stack_id: i64,
}

/// One report (names: src/output/schema.rs).
#[derive(Serialize)]
struct ReportJson<'f> {
    #[serde(flatten)]
    head: Header,
    #[serde(rename = "final")]
    last: bool,
    stacks: Vec<StackJson<'f>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allocations: Option<Vec<AllocJson>>,
    /// -p / a command: the traced process's cgroup and container (kernel mode mixes every
    /// task's allocations and has none).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    cgroup: Option<CgroupFields<'f>>,
    /// --unwind dwarf: allocations whose stacks are not whole, by cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete_stacks: Option<Incomplete>,
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

    /// Totals per stack (and, with -a, the single allocations) of what is outstanding now.
    fn gather(&mut self, now_ns: u64) -> Result<()> {
        self.totals.clear();
        self.listed.clear();
        let older_ns = self.older_ns;
        let (combined, show_allocs) = (self.combined, self.show_allocs);
        let mut live = std::collections::HashSet::new();
        if !combined || show_allocs {
            let totals = &mut self.totals;
            let listed = &mut self.listed;
            let user_stacks = self.user_stacks.as_ref();
            let live = &mut live;
            for_each_entry(
                self.allocs,
                &mut self.keys,
                &mut self.values,
                |key, value| {
                    let addr = u64::from_ne_bytes(key.try_into().expect("8-byte key"));
                    let mut info: alloc_info = read_value(value);
                    if let Some(stacks) = user_stacks {
                        live.insert(info.stack_id);
                        info.stack_id = stacks.canonical(info.stack_id);
                    }
                    let age = now_ns.saturating_sub(info.ts);
                    if age < older_ns {
                        return;
                    }
                    if !combined {
                        let t = totals.entry(info.stack_id).or_default();
                        t.0 += info.size;
                        t.1 += 1;
                    }
                    if show_allocs {
                        listed.push((addr, info.size, age, info.stack_id));
                    }
                },
            )?;
        }
        if let Some(stacks) = &mut self.user_stacks {
            stacks.retain(&live);
        }
        if combined {
            let totals = &mut self.totals;
            for_each_entry(
                self.combined_allocs,
                &mut self.keys,
                &mut self.values,
                |key, value| {
                    let id = i64::from_ne_bytes(key.try_into().expect("8-byte key"));
                    let info: combined_info = read_value(value);
                    if (info.count as i64) > 0 && (info.bytes as i64) > 0 {
                        totals.insert(id, (info.bytes, info.count));
                    }
                },
            )?;
        }
        Ok(())
    }

    fn stack_frames(&self, stack_id: i64) -> Vec<u64> {
        if let Some(call_site) = CallSite::of(stack_id) {
            return vec![call_site.addr];
        }
        if let Some(stacks) = &self.user_stacks {
            match UserId::of(stack_id) {
                Some(UserId::Site { addr, .. }) => return vec![addr],
                Some(UserId::Sample(_)) => {
                    return stacks
                        .stack(stack_id)
                        .map(|s| s.frames.clone())
                        .unwrap_or_default()
                }
                None => {}
            }
        }
        if stack_id < 0 {
            return Vec::new();
        }
        let Ok(Some(raw)) = self
            .stacks
            .lookup(&(stack_id as u32).to_ne_bytes(), MapFlags::ANY)
        else {
            return Vec::new();
        };
        raw.chunks_exact(8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .take_while(|&a| a != 0)
            .collect()
    }

    /// Kernel mode: what the kernel side learnt about a stack or a call site recorded without
    /// stacks (nothing for a stack lost, or in user mode).
    fn stack_info(&self, stack_id: i64) -> StackInfo {
        let map = match CallSite::of(stack_id) {
            Some(_) => self.ksites,
            None => self.kstacks,
        };
        let Ok(Some(raw)) = map.lookup(&stack_id.to_ne_bytes(), MapFlags::ANY) else {
            return StackInfo::default();
        };
        let k: kstack_info = read_value(&raw);
        let name: Vec<u8> = k
            .cache
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        StackInfo {
            reused: k.reused,
            cache: (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned()),
        }
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
        let mut top: Vec<(i64, u64, u64)> = self
            .totals
            .iter()
            .map(|(&id, &(bytes, count))| (id, bytes, count))
            .collect();
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        top.truncate(self.top);
        let mut stacks: Vec<Vec<u64>> = top.iter().map(|t| self.stack_frames(t.0)).collect();
        let all: Vec<u64> = stacks.iter().flatten().copied().collect();
        self.symbols.resolve(&all);
        if matches!(self.mode, Mode::Kernel) {
            for frames in &mut stacks {
                let ours = frames
                    .iter()
                    .take_while(|&&a| {
                        self.symbols
                            .cached(a)
                            .and_then(|f| f.symbol.as_deref())
                            .is_some_and(is_tracing_frame)
                    })
                    .count();
                frames.drain(..ours);
            }
        }
        self.listed.sort_unstable();
        if self.sink.exports_metrics() {
            let symbols = &self.symbols;
            self.exported = top
                .iter()
                .zip(&stacks)
                .map(|(&(id, bytes, count), frames)| {
                    let frames: Vec<&Frame> =
                        frames.iter().filter_map(|&a| symbols.cached(a)).collect();
                    (id, bytes, count, caller(&frames))
                })
                .collect();
        }

        let kernel = matches!(self.mode, Mode::Kernel);
        let infos: Vec<StackInfo> = top
            .iter()
            .map(|t| match kernel {
                true => self.stack_info(t.0),
                false => StackInfo::default(),
            })
            .collect();
        if self.sink.is_json() {
            let incomplete_stacks = self.incomplete();
            let symbols = &self.symbols;
            let record = ReportJson {
                head: Header::new(event::LEAK_REPORT, self.clock.rfc3339(now_ns)),
                last,
                stacks: top
                    .iter()
                    .zip(&stacks)
                    .zip(&infos)
                    .map(|((&(id, bytes, count), frames), info)| {
                        let frames: Vec<&Frame> =
                            frames.iter().filter_map(|a| symbols.cached(*a)).collect();
                        StackJson {
                            bytes,
                            allocations: count,
                            stack_id: id,
                            unseen_free: kernel
                                .then(|| unseen_free(&frames, info, count))
                                .flatten(),
                            cache: info.cache.clone(),
                            freed_unseen: kernel.then_some(info.reused),
                            call_site_only: CallSite::of(id)
                                .map(CallSite::why)
                                .or_else(|| self.user_site(id).map(|(_, why)| why)),
                            unwind: self.unwound_how(),
                            cut: self.unwound_how().map(|_| self.is_cut(id)),
                            frames,
                        }
                    })
                    .collect(),
                allocations: self.show_allocs.then(|| {
                    self.listed
                        .iter()
                        .map(|&(addr, size, age, id)| AllocJson {
                            addr: format!("{addr:#x}"),
                            size,
                            age_ms: age / 1_000_000,
                            stack_id: id,
                        })
                        .collect()
                }),
                cgroup: self.cgroup_id.map(|id| self.containers.json(id)),
                incomplete_stacks,
            };
            return Ok(self.sink.json(&record)?);
        }

        let mut text = String::new();
        let _ = writeln!(
            text,
            "[{}] Top {} stacks with outstanding allocations:",
            self.clock.hms(now_ns),
            top.len()
        );
        for &(addr, size, age, _) in &self.listed {
            let _ = writeln!(
                text,
                "\taddr = {addr:#x} size = {size} age = {:.3}s",
                age as f64 / 1e9
            );
        }
        for ((&(id, bytes, count), frames), info) in top.iter().zip(&stacks).zip(&infos) {
            let from = match CallSite::of(id) {
                Some(CallSite { lost: false, .. }) => format!(
                    "call site, stacks not taken (over {} a second from it in a process; --stacks-per-second)",
                    self.stacks_per_second
                ),
                Some(CallSite { lost: true, .. }) => {
                    "call site, stacks lost (the stack table was full or stacks collided; --max-stacks)".to_string()
                }
                None => match self.user_site(id) {
                    Some((from, _)) => from,
                    None => "stack".to_string(),
                },
            };
            let _ = match &info.cache {
                Some(cache) => writeln!(
                    text,
                    "\t{bytes} bytes in {count} allocations from {from} (cache {cache})"
                ),
                None => writeln!(text, "\t{bytes} bytes in {count} allocations from {from}"),
            };
            if frames.is_empty() {
                let _ = writeln!(
                    text,
                    "\t\t[stack not recorded{}]",
                    if id < 0 {
                        " (stack table full or hash collision)"
                    } else {
                        ""
                    }
                );
            }
            for &a in frames {
                let _ = writeln!(text, "\t\t{}", self.symbols.frame(a).text);
            }
            if self.is_cut(id) {
                let _ = writeln!(
                    text,
                    "\t\t[cut: the stack goes deeper than the {} bytes copied; --stack-bytes]",
                    self.user_stacks.as_ref().map_or(0, |s| s.stack_bytes)
                );
            }
            if kernel {
                let resolved: Vec<&Frame> = frames
                    .iter()
                    .filter_map(|a| self.symbols.cached(*a))
                    .collect();
                if let Some(why) = unseen_free(&resolved, info, count) {
                    let _ = writeln!(text, "\t\t({why})");
                }
            }
        }
        self.write_incomplete(&mut text);
        Ok(self.sink.writer().write_all(text.as_bytes())?)
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

/// Kernel allocator functions (prefixes). A kernel stack is taken inside them, where the kmem
/// tracepoint fires; the first frame past them is the code that asked for the memory.
const ALLOCATOR_FUNCTIONS: &[&str] = &[
    "kmem_cache_alloc",
    "__kmem_cache_alloc",
    "kmalloc",
    "__kmalloc",
    "__do_kmalloc",
    "kvmalloc",
    "__kvmalloc",
    "krealloc",
    "alloc_pages",
    "__alloc_pages",
    "__get_free_pages",
];

/// Frames a kernel stack starts with when it is taken from a raw tracepoint program: the
/// program itself and the kernel's code that runs it, above the allocator's tracepoint. Not
/// the allocation's: the report leaves them out.
fn is_tracing_frame(symbol: &str) -> bool {
    ["bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_"]
        .iter()
        .any(|p| symbol.starts_with(p))
}

/// The first frame outside the allocator: the code that asked for the memory (a frame
/// without a symbol counts as outside).
fn call_site<'f>(frames: &[&'f Frame]) -> Option<&'f Frame> {
    frames.iter().copied().find(|f| {
        !f.symbol
            .as_deref()
            .is_some_and(|s| ALLOCATOR_FUNCTIONS.iter().any(|a| s.starts_with(a)))
    })
}

/// The name a stack goes by in the metrics: its call site (its address when it has no
/// symbol), `[unknown]` for a stack that was not recorded.
fn caller(frames: &[&Frame]) -> String {
    match call_site(frames).or(frames.first().copied()) {
        Some(f) => f.symbol.clone().unwrap_or_else(|| f.addr.clone()),
        None => "[unknown]".into(),
    }
}

/// A map value from a byte buffer with no particular alignment.
fn read_value<T: plain::Plain + Default>(bytes: &[u8]) -> T {
    let mut value = T::default();
    let _ = plain::copy_from_bytes(&mut value, bytes);
    value
}

/// Every entry of a hash map, read in batches (one syscall per few thousand entries) into
/// buffers that are reused from report to report.
fn for_each_entry(
    map: &dyn MapCore,
    keys: &mut Vec<u8>,
    values: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<()> {
    const BATCH: usize = 4096;
    let (ks, vs) = (map.key_size() as usize, map.value_size() as usize);
    keys.resize(ks * BATCH, 0);
    values.resize(vs * BATCH, 0);
    let mut token_in = [0u8; 64];
    let mut token_out = [0u8; 64];
    let mut first = true;
    let opts = libbpf_rs::libbpf_sys::bpf_map_batch_opts {
        sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    loop {
        let mut count = BATCH as u32;
        // SAFETY: the key and value buffers hold BATCH entries each, `count` says so, and the tokens are the map's key size.
        let ret = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_lookup_batch(
                map.as_fd().as_raw_fd(),
                if first {
                    std::ptr::null_mut()
                } else {
                    token_in.as_mut_ptr().cast()
                },
                token_out.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        let done = ret == -libc::ENOENT;
        if ret < 0 && !done {
            if ret == -libc::EINTR {
                continue;
            }
            bail!(
                "reading the allocation table: {}",
                std::io::Error::from_raw_os_error(-ret)
            );
        }
        let count = (count as usize).min(BATCH);
        for i in 0..count {
            f(&keys[i * ks..(i + 1) * ks], &values[i * vs..(i + 1) * vs]);
        }
        if done {
            return Ok(());
        }
        token_in = token_out;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(symbol: &str) -> Frame {
        Frame {
            addr: "0x1".into(),
            symbol: Some(symbol.into()),
            offset: None,
            file: None,
            line: None,
            module: None,
            text: String::new(),
        }
    }

    #[test]
    fn call_site_ids_give_the_address_and_why_the_stack_is_missing() {
        let addr: u64 = 0xffff_ffff_8123_4567;
        let budget = CallSite::of(addr as i64).unwrap();
        assert_eq!((budget.addr, budget.why()), (addr, "over_budget"));
        let lost = CallSite::of((addr & !CALL_SITE_STACK_LOST) as i64).unwrap();
        assert_eq!((lost.addr, lost.why()), (addr, "stack_lost"));
        // Stack ids, and bpf_get_stackid's errors, are not call sites.
        assert!(CallSite::of(-17).is_none() && CallSite::of(5).is_none());
    }

    #[test]
    fn maple_tree_nodes_are_marked_by_their_call_site() {
        let stack = |names: &[&str]| names.iter().map(|n| frame(n)).collect::<Vec<_>>();
        let maple = stack(&[
            "kmem_cache_alloc_noprof",
            "mas_preallocate",
            "__mmap_region",
        ]);
        let none = StackInfo::default();
        assert!(unseen_free(&maple.iter().collect::<Vec<_>>(), &none, 10).is_some());
        let file = stack(&["kmem_cache_alloc_noprof", "alloc_empty_file", "path_openat"]);
        assert!(unseen_free(&file.iter().collect::<Vec<_>>(), &none, 10).is_none());
        // Only the call site counts, not a maple tree function further up the stack.
        let deeper = stack(&["__kmalloc_noprof", "vma_alloc_thing", "mas_walk"]);
        assert!(unseen_free(&deeper.iter().collect::<Vec<_>>(), &none, 10).is_none());
    }

    #[test]
    fn stacks_whose_objects_come_back_without_a_free_are_marked() {
        let file = [frame("kmem_cache_alloc_noprof"), frame("alloc_empty_file")];
        let file: Vec<&Frame> = file.iter().collect();
        let reused = |n| StackInfo {
            reused: n,
            cache: None,
        };
        // A free missed now and then (a skipped run) does not hide 100 held files...
        assert!(unseen_free(&file, &reused(1), 100).is_none());
        assert!(unseen_free(&file, &reused(0), 100).is_none());
        // ...a stack whose objects keep coming back is freed out of sight.
        let why = unseen_free(&file, &reused(30), 100).unwrap();
        assert!(why.contains("30 of its objects"), "{why}");
    }
}
