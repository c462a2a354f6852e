//! Turns call records (or the kernel's histograms) into the reports: one log2 histogram and a
//! percentile line per function (per process with --per-pid), at each interval and at the end,
//! and a row per call slower than --slower-than.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use serde::Serialize;

use super::calibrate::Overhead;
use super::compact::CompactLatencies;
use super::target::Probe;
use super::cumulative::Cumulative;
use super::hist::{fold_other_pids, json_buckets, parse_key, read_hist, Bucket, HistSum, OTHER_PIDS};
use super::stack::{self, Stacks};
use super::{Args, MAX_SLOTS};
use crate::consumer::{decode, Handler, Stop};
use crate::host::container::CgroupFields;
use crate::output::histogram::{human_ns, print_log2, Latencies, Summary, Unit};
use crate::output::metrics::Exposition;
use crate::output::schema::{event, Attrs, Header};
use crate::output::{Column, EventTable, Sink};
use crate::render::clock::{Clock, TimeMode};
use crate::render::escape::{c_str_bytes, escape_into, escaped};
use crate::skel::uprobe_lat::types::call_event;

use crate::skel::uprobe_lat::defs::CALL_SLOW;
/// After flipping the epoch, how long BPF programs that read the old one may still be
/// writing to it (they run for well under a microsecond).
const EPOCH_SETTLE: Duration = Duration::from_millis(2);
mod slow;

/// How often -p checks that its process is still there.
const PID_CHECK: Duration = Duration::from_millis(500);

/// Where the latencies come from.
pub enum Source<'a> {
    /// Every call arrives as a record; percentiles are exact.
    Ring,
    /// The BPF side sums log2 histograms, per epoch: in `func_hists` (an array, slot
    /// func_id * 2 + epoch), or with --per-pid in `hists` (a hash by function, pid, epoch).
    Kernel {
        hists: &'a dyn MapCore,
        func_hists: &'a dyn MapCore,
        epoch: &'a dyn MapCore,
    },
}

/// Ring mode: the latencies of one function (and process). One function's exact HDR histogram
/// is about 246 KB; with --per-pid there may be thousands, so those are compact.
enum Lat {
    Exact(Latencies),
    Compact(CompactLatencies),
}

impl Lat {
    fn record(&mut self, ns: u64) {
        match self {
            Lat::Exact(l) => l.record(ns),
            Lat::Compact(c) => c.record(ns),
        }
    }
    fn count(&self) -> u64 {
        match self {
            Lat::Exact(l) => l.count(),
            Lat::Compact(c) => c.count(),
        }
    }
}

/// What one report shows for one function (and pid).
enum Data<'a> {
    Exact(&'a Lat),
    Kernel(&'a HistSum),
}

/// What a report shows of one histogram: its log2 buckets, its summary, and how its
/// percentiles were found.
struct Shown {
    buckets: Vec<u64>,
    summary: Summary,
    percentiles: &'static str,
}

impl Shown {
    fn of(data: Data, unit: Unit) -> Shown {
        let (buckets, summary, percentiles) = match data {
            Data::Exact(Lat::Exact(l)) => (l.log2_buckets(unit), l.summary(), "exact"),
            Data::Exact(Lat::Compact(c)) => (c.log2_buckets(), c.summary(), "log-linear-estimate"),
            Data::Kernel(h) => {
                let last = h.slots.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
                (h.slots[..last].to_vec(), h.summary(unit), "log2-estimate")
            }
        };
        Shown {
            buckets,
            summary,
            percentiles,
        }
    }
}

/// One function's histogram (per process with --per-pid) at a report (names:
/// src/output/schema.rs).
#[derive(Serialize)]
struct HistJson<'a> {
    #[serde(flatten)]
    head: Header,
    #[serde(flatten)]
    attrs: Attrs<'a>,
    binary: &'a str,
    /// --per-pid (ring mode): the process's cgroup and container, as it made its first call.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    cgroup: Option<CgroupFields<'a>>,
    /// The row of the processes beyond --max-pids.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    other_pids: bool,
    unit: &'static str,
    buckets: Vec<Bucket>,
    #[serde(flatten)]
    summary: Summary,
    percentiles: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_overhead_ns: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_overhead_in_latency_ns: Option<f64>,
}

pub struct Report<'a> {
    sink: Sink,
    probes: &'a [Probe],
    /// Function names, escaped once.
    names: Vec<String>,
    source: Source<'a>,
    unit: Unit,
    per_pid: bool,
    max_pids: usize,
    /// --per-pid ring mode: the processes with rows of their own in this report, by pid and
    /// start time (a pid the kernel reuses is another process), as indexes into `procs`.
    tracked: HashMap<(u32, u64), u32>,
    /// Their pids, names and cgroup ids.
    procs: Vec<(u32, String, u64)>,
    /// Whether any report had an "other pids" row.
    had_other: bool,
    timestamps: bool,
    interval: Option<Duration>,
    next_report: Option<Instant>,
    overhead: Option<Overhead>,
    /// The slow-call rows' columns; its clock and container names serve every record.
    table: EventTable,
    /// Ring mode: latencies per (function id, index in `procs` or 0 or OTHER_PIDS).
    exact: HashMap<(u32, u32), Lat>,
    epoch: u32,
    comms: HashMap<u32, String>,
    reports: u64,
    /// Possible CPUs: the number of values in a per-CPU map entry.
    cpus: usize,
    /// With -p: the run ends when that process does.
    watch: Option<(u32, Stop)>,
    next_watch: Instant,
    // Reused for slow-call rows.
    comm_text: String,
    lat_text: String,
    /// With --metrics-*: the histograms since the start.
    cumulative: Option<Cumulative>,
    /// --stack: the slow calls' stack copies.
    stacks: Option<Stacks>,
}

impl<'a> Report<'a> {
    pub fn new(
        args: &Args,
        probes: &'a [Probe],
        source: Source<'a>,
        overhead: Option<Overhead>,
        stop: &Stop,
        mut sink: Sink,
    ) -> Result<Self> {
        let table = EventTable::new(TimeMode::Wall, args.cgroup.print_container);
        if args.slower_than.is_some() {
            table.header(
                &mut sink,
                [Column::id("PID"), Column::id("TID"), Column::comm("COMM")],
                [Column::left("FUNC", 24), Column::right("LAT", 9)],
            )?;
        }
        let cumulative = sink.exports_metrics().then(|| Cumulative {
            hists: HashMap::new(),
            pids: HashSet::new(),
            max_pids: args.max_pids as usize,
            ended: HashMap::new(),
            unit_ns: match source {
                Source::Kernel { .. } => args.unit().divisor(),
                Source::Ring => 1,
            },
        });
        Ok(Report {
            sink,
            probes,
            names: probes
                .iter()
                .map(|p| escaped(p.function.as_bytes()))
                .collect(),
            source,
            unit: args.unit(),
            per_pid: args.per_pid,
            max_pids: args.max_pids as usize,
            tracked: HashMap::new(),
            procs: Vec::new(),
            had_other: false,
            timestamps: args.timestamp || args.interval.is_some(),
            interval: args.interval,
            next_report: args.interval.map(|i| Instant::now() + i),
            overhead,
            table,
            exact: HashMap::new(),
            epoch: 0,
            comms: HashMap::new(),
            reports: 0,
            cpus: libbpf_rs::num_possible_cpus().context("counting the CPUs")?,
            watch: args.pid.map(|p| (p, stop.clone())),
            next_watch: Instant::now(),
            comm_text: String::new(),
            lat_text: String::new(),
            cumulative,
            stacks: args.stack.then(|| Stacks::new(args.stack_bytes)),
        })
    }

    /// Reads (kernel mode) and prints every histogram with calls, then starts afresh.
    fn report(&mut self, last: bool) -> Result<()> {
        let kernel = match self.source {
            Source::Ring => None,
            Source::Kernel {
                hists,
                func_hists,
                epoch,
            } => Some(self.kernel_round(hists, func_hists, epoch)?),
        };
        let mut keys: Vec<(u32, u32)> = match &kernel {
            None => self
                .exact
                .iter()
                .filter(|(_, l)| l.count() > 0)
                .map(|(k, _)| *k)
                .collect(),
            Some(k) => k.keys().copied().collect(),
        };
        keys.sort_unstable();
        let first_and_final = last && self.reports == 0 && self.interval.is_none();
        if keys.is_empty() && !first_and_final {
            return Ok(());
        }
        self.reports += 1;
        let now_ns = Clock::monotonic_now_ns();
        self.report_head(now_ns, keys.is_empty())?;
        for (id, pid) in keys {
            let data = match &kernel {
                None => Data::Exact(&self.exact[&(id, pid)]),
                Some(k) => Data::Kernel(&k[&(id, pid)]),
            };
            let shown = Shown::of(data, self.unit);
            self.report_row(id, pid, kernel.is_some(), shown, now_ns)?;
        }
        if let (false, Some(o)) = (self.sink.is_json(), self.overhead) {
            writeln!(
                self.sink.writer(),
                "\nprobe overhead \u{2248} {} per call to the traced program, up to {} of it inside the latencies above (measured on an empty function; less where the kernel emulates the first instruction instead of single-stepping it)",
                human_ns(o.per_call_ns),
                human_ns(o.in_latency_ns)
            )?;
        }
        // Start afresh: memory stays bounded by what one report holds.
        self.exact.clear();
        self.tracked.clear();
        self.procs.clear();
        self.comms.clear();
        Ok(())
    }

    /// Kernel mode: this round's histograms, read and removed from the kernel (the processes
    /// past --max-pids folded), and added to the cumulative ones.
    fn kernel_round(
        &mut self,
        hists: &dyn MapCore,
        func_hists: &dyn MapCore,
        epoch: &dyn MapCore,
    ) -> Result<HashMap<(u32, u32), HistSum>> {
        let mut k = self.drain_kernel(hists, func_hists, epoch)?;
        if self.per_pid {
            fold_other_pids(&mut k, self.max_pids);
        }
        if let Some(c) = &mut self.cumulative {
            for (&(id, pid), h) in &k {
                let key = c.key(id, pid, self.per_pid);
                c.hists.entry(key).or_default().add(h);
            }
        }
        Ok(k)
    }

    /// The table's lines above a report: the time (-T), and with no calls at all, each
    /// function's "no calls", so that an attached but idle function is visible.
    fn report_head(&mut self, now_ns: u64, no_calls: bool) -> Result<()> {
        if self.sink.is_json() {
            return Ok(());
        }
        if self.timestamps {
            let mut buf = String::new();
            let hms = self
                .table
                .clock
                .cell(TimeMode::Wall, now_ns, &mut buf)
                .to_string();
            writeln!(self.sink.writer(), "\n{hms}")?;
        }
        if no_calls {
            for (p, name) in self.probes.iter().zip(&self.names) {
                writeln!(self.sink.writer(), "\n{}:{}: no calls", p.binary, name)?;
            }
        }
        Ok(())
    }

    /// One function's (and process's) histogram and percentiles: a JSON record, or a title,
    /// the log2 histogram and the summary line.
    fn report_row(&mut self, id: u32, pid: u32, kernel: bool, shown: Shown, now_ns: u64) -> Result<()> {
        let Some(probe) = self.probes.get(id as usize) else {
            return Ok(());
        };
        let name = self.names[id as usize].clone();
        let other = self.per_pid && pid == OTHER_PIDS;
        self.had_other |= other;
        let (pid, comm, cgroup_id) = match (kernel, self.per_pid && !other) {
            (_, false) => (pid, None, None),
            // Ring mode: `pid` is an index into `procs`.
            (false, true) => {
                let (p, c, cg) = &self.procs[pid as usize];
                (*p, Some(c.clone()), Some(*cg))
            }
            // (The kernel's histograms are kept per pid, without the cgroup.)
            (true, true) => (pid, Some(self.comm_of(pid)), None),
        };
        if self.sink.is_json() {
            let rec = HistJson {
                head: Header::new(event::LATENCY_HISTOGRAM, self.table.clock.rfc3339(now_ns)),
                attrs: Attrs {
                    pid: (self.per_pid && !other).then_some(pid),
                    comm,
                    function: Some(&name),
                    ..Default::default()
                },
                binary: &probe.binary,
                cgroup: cgroup_id.map(|id| self.table.containers.json(id)),
                other_pids: other,
                unit: self.unit.label(),
                buckets: json_buckets(&shown.buckets),
                summary: shown.summary,
                percentiles: shown.percentiles,
                probe_overhead_ns: self.overhead.map(|o| o.per_call_ns),
                probe_overhead_in_latency_ns: self.overhead.map(|o| o.in_latency_ns),
            };
            return Ok(self.sink.json(&rec)?);
        }
        let out = self.sink.writer();
        match comm {
            Some(comm) => writeln!(out, "\n{}:{}  pid {pid} ({comm})", probe.binary, name)?,
            None if other => writeln!(
                out,
                "\n{}:{}  other pids (beyond --max-pids {})",
                probe.binary, name, self.max_pids
            )?,
            None => writeln!(out, "\n{}:{}", probe.binary, name)?,
        }
        print_log2(out, &shown.buckets, self.unit)?;
        let note = match shown.percentiles {
            "exact" => "",
            "log2-estimate" => "  (percentiles estimated from the log2 buckets)",
            _ => "  (percentiles within 1/16: per-process histograms are compact)",
        };
        writeln!(out, "{}{note}", shown.summary.line())?;
        Ok(())
    }

    /// At the end: say once that some processes were summed, and why.
    pub fn note_other_pids(&self) {
        if self.had_other {
            eprintln!(
                "uprobe-lat: calls of processes beyond --max-pids {} were summed in the 'other pids' rows",
                self.max_pids
            );
        }
    }

    /// Switches the kernel to the other epoch, then reads and removes what the old one holds.
    fn drain_kernel(
        &mut self,
        hists: &dyn MapCore,
        func_hists: &dyn MapCore,
        epoch: &dyn MapCore,
    ) -> Result<HashMap<(u32, u32), HistSum>> {
        let old = self.epoch;
        self.epoch ^= 1;
        epoch
            .update(
                &0u32.to_ne_bytes(),
                &self.epoch.to_ne_bytes(),
                MapFlags::ANY,
            )
            .context("switching the histogram epoch")?;
        std::thread::sleep(EPOCH_SETTLE);
        let mut out: HashMap<(u32, u32), HistSum> = HashMap::new();
        if !self.per_pid {
            let zeroes = vec![vec![0u8; (MAX_SLOTS + 3) * 8]; self.cpus];
            for id in 0..self.probes.len() as u32 {
                let key = (id * 2 + old).to_ne_bytes();
                if let Some(h) = read_hist(func_hists, &key)? {
                    if h.count > 0 {
                        out.insert((id, 0), h);
                        func_hists
                            .update_percpu(&key, &zeroes, MapFlags::ANY)
                            .context("resetting a kernel histogram")?;
                    }
                }
            }
            return Ok(out);
        }
        for key in hists.keys() {
            let Some((id, pid, ep)) = parse_key(&key) else {
                continue;
            };
            if ep != old {
                continue;
            }
            if let Some(h) = read_hist(hists, &key)? {
                if h.count > 0 {
                    out.entry((id, pid)).or_default().add(&h);
                }
            }
            // Gone already is fine: nothing else deletes, but do not fail a report on it.
            let _ = hists.delete(&key);
        }
        Ok(out)
    }

    fn comm_of(&mut self, pid: u32) -> String {
        self.comms
            .entry(pid)
            .or_insert_with(|| read_comm(pid))
            .clone()
    }
}

/// The process's name, escaped; "?" once it has ended.
fn read_comm(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/comm"))
        .map(|b| escaped(b.strip_suffix(b"\n").unwrap_or(&b)))
        .unwrap_or_else(|_| "?".to_string())
}

impl Handler for Report<'_> {
    fn containers(&mut self) -> Option<&mut crate::host::container::Resolver> {
        Some(&mut self.table.containers)
    }

    fn event(&mut self, data: &[u8]) -> Result<()> {
        if let Some(st) = self.stacks.as_mut().filter(|_| stack::is_copy(data)) {
            st.copy(data);
            return Ok(());
        }
        let (e, _) = decode::<call_event>(data)?;
        if e.flags & CALL_SLOW != 0 {
            self.slow_call(e)?;
        }
        if matches!(self.source, Source::Ring) {
            let mut pid = 0;
            if self.per_pid {
                pid = match self.tracked.get(&(e.pid, e.start_ns)) {
                    Some(&index) => index,
                    None if self.procs.len() < self.max_pids => {
                        let index = self.procs.len() as u32;
                        self.tracked.insert((e.pid, e.start_ns), index);
                        let mut comm = String::new();
                        escape_into(&mut comm, c_str_bytes(&e.comm));
                        self.procs.push((e.pid, comm, e.cgroup_id));
                        index
                    }
                    None => OTHER_PIDS,
                };
            }
            let (per_pid, unit) = (self.per_pid, self.unit);
            self.exact
                .entry((e.func_id, pid))
                .or_insert_with(|| {
                    if per_pid {
                        Lat::Compact(CompactLatencies::new(unit))
                    } else {
                        Lat::Exact(Latencies::new())
                    }
                })
                .record(e.lat_ns);
            if let Some(c) = &mut self.cumulative {
                let key = c.key(e.func_id, e.pid, self.per_pid);
                c.record(key, e.lat_ns);
            }
        }
        Ok(())
    }

    /// One histogram per function (per process with --per-pid), in seconds, since the start.
    /// With --kernel-hist they grow at each report (-i), when the kernel's are read.
    fn metrics(&mut self, out: &mut Exposition) {
        if let Some(c) = &mut self.cumulative {
            c.export(out, self.probes, &self.names, self.per_pid);
        }
    }

    fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }

    fn tick(&mut self, now: Instant) -> Result<()> {
        if let Some((pid, stop)) = &self.watch {
            if now >= self.next_watch {
                self.next_watch = now + PID_CHECK;
                if !crate::host::system::process_exists(*pid) {
                    self.sink.flush()?;
                    eprintln!("uprobe-lat: process {pid} ended");
                    stop.request();
                    self.watch = None;
                }
            }
        }
        if let (Some(next), Some(every)) = (self.next_report, self.interval) {
            if now >= next {
                self.report(false)?;
                // Skip missed intervals instead of printing a burst of them.
                let mut n = next + every;
                while n <= now {
                    n += every;
                }
                self.next_report = Some(n);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.report(true)
    }
}

