//! uprobe-lat's histograms for Prometheus (`--metrics-*`), whose histograms only grow: log2
//! buckets since the start, per function (per process with --per-pid, a bounded number of them).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use super::hist::{HistSum, OTHER_PIDS};
use super::target::Probe;
use super::MAX_SLOTS;
use crate::output::metrics::Exposition;

/// How long a --per-pid series stays in the exposition after its process ended.
pub const SERIES_FORGET: std::time::Duration = std::time::Duration::from_secs(120);

/// For Prometheus, whose histograms only grow: log2 histograms never reset, per (function id,
/// pid: 0 without --per-pid, OTHER_PIDS past --max-pids).
pub struct Cumulative {
    pub hists: HashMap<(u32, u32), HistSum>,
    /// The pids with series of their own: at most --max-pids over the run, so the number of
    /// series stays bounded however many processes come and go.
    pub pids: HashSet<u32>,
    pub max_pids: usize,
    /// Pids whose process has ended, and when that was first seen: their series leave the
    /// exposition SERIES_FORGET after, and free their place under --max-pids.
    pub ended: HashMap<u32, Instant>,
    /// ns per unit of the slots: 1 when fed call by call, the kernel histogram's unit else.
    pub unit_ns: u64,
}

impl Cumulative {
    pub fn key(&mut self, func_id: u32, pid: u32, per_pid: bool) -> (u32, u32) {
        if !per_pid {
            return (func_id, 0);
        }
        if pid != OTHER_PIDS && (self.pids.contains(&pid) || self.pids.len() < self.max_pids) {
            self.pids.insert(pid);
            return (func_id, pid);
        }
        (func_id, OTHER_PIDS)
    }

    /// At each export: notes the pids whose process has ended, and forgets those that ended
    /// SERIES_FORGET ago (their last values were exported meanwhile).
    fn forget_ended(&mut self, now: Instant) {
        for &pid in &self.pids {
            if !self.ended.contains_key(&pid) && !crate::host::system::process_exists(pid) {
                self.ended.insert(pid, now);
            }
        }
        let gone: Vec<u32> = self
            .ended
            .iter()
            .filter(|(_, &t)| now.duration_since(t) >= SERIES_FORGET)
            .map(|(&pid, _)| pid)
            .collect();
        for pid in &gone {
            self.ended.remove(pid);
            self.pids.remove(pid);
        }
        if !gone.is_empty() {
            self.hists.retain(|(_, pid), _| !gone.contains(pid));
        }
    }

    pub fn record(&mut self, key: (u32, u32), ns: u64) {
        let h = self.hists.entry(key).or_default();
        let slot = (63 - ns.max(1).leading_zeros() as usize).min(MAX_SLOTS - 1);
        h.slots[slot] += 1;
        h.count += 1;
        h.sum_ns += ns;
        h.max_ns = h.max_ns.max(ns);
    }

    /// Writes one histogram family: a series per function (and process), in seconds.
    pub fn export(&mut self, out: &mut Exposition, probes: &[Probe], names: &[String], per_pid: bool) {
        const NAME: &str = "coretrace_uprobe_lat_duration_seconds";
        if per_pid {
            self.forget_ended(Instant::now());
        }
        let c = &*self;
        out.family(
            NAME,
            "histogram",
            "How long calls of the traced function took (log2 buckets).",
        );
        // The same buckets in every series: up to the highest one used.
        let top = c
            .hists
            .values()
            .filter_map(|h| h.slots.iter().rposition(|&n| n > 0))
            .max()
            .unwrap_or(0);
        let mut keys: Vec<&(u32, u32)> = c.hists.keys().collect();
        keys.sort_unstable();
        let mut pid_text = String::new();
        for key in keys {
            let (id, pid) = *key;
            let (Some(probe), Some(name)) =
                (probes.get(id as usize), names.get(id as usize))
            else {
                continue;
            };
            let h = &c.hists[key];
            let buckets: Vec<(f64, u64)> = (0..=top)
                .map(|i| ((c.unit_ns << (i + 1)) as f64 / 1e9, h.slots[i]))
                .collect();
            pid_text.clear();
            if pid == OTHER_PIDS {
                pid_text.push_str("other");
            } else {
                let _ = write!(pid_text, "{pid}");
            }
            let mut labels = vec![
                ("binary", probe.binary.as_str()),
                ("function", name.as_str()),
            ];
            if per_pid {
                labels.push(("pid", pid_text.as_str()));
            }
            out.histogram(NAME, &labels, &buckets, h.sum_ns as f64 / 1e9);
        }
    }
}
