//! uprobe-lat's log2 histograms as the kernel keeps them (`--kernel-hist`), and as reports and
//! JSON show them: summing, quantiles estimated from the buckets, the "other pids" row.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use serde::Serialize;

use super::MAX_SLOTS;
use crate::output::histogram::{Summary, Unit};

/// The "pid" of the row that sums the processes beyond --max-pids.
pub const OTHER_PIDS: u32 = u32::MAX;

/// One histogram read from the kernel, summed over CPUs.
#[derive(Clone, Debug)]
pub struct HistSum {
    pub slots: [u64; MAX_SLOTS],
    pub count: u64,
    pub sum_ns: u64,
    pub max_ns: u64,
}

impl Default for HistSum {
    fn default() -> Self {
        HistSum {
            slots: [0; MAX_SLOTS],
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

impl HistSum {
    pub fn add(&mut self, other: &HistSum) {
        for (a, b) in self.slots.iter_mut().zip(other.slots.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Count, mean and max are exact; percentiles are interpolated inside the log2 bucket
    /// they fall in.
    pub fn summary(&self, unit: Unit) -> Summary {
        let q = |p: f64| estimate_quantile(&self.slots, self.count, unit, p).min(self.max_ns);
        Summary::from_parts(self.count, self.sum_ns, self.max_ns, q)
    }
}

/// The value at quantile `p` of log2 buckets (bucket i holds [2^i, 2^(i+1)) units, bucket 0
/// also 0), in ns, by linear interpolation inside the bucket.
pub fn estimate_quantile(slots: &[u64], count: u64, unit: Unit, p: f64) -> u64 {
    if count == 0 {
        return 0;
    }
    let rank = (p * count as f64).ceil().max(1.0);
    let mut seen = 0u64;
    for (i, &c) in slots.iter().enumerate() {
        if c == 0 {
            continue;
        }
        if (seen + c) as f64 >= rank {
            let low = if i == 0 { 0.0 } else { (1u64 << i) as f64 };
            let high = (1u64 << (i + 1)) as f64;
            let frac = (rank - seen as f64) / c as f64;
            return ((low + (high - low) * frac) * unit.divisor() as f64) as u64;
        }
        seen += c;
    }
    0
}

/// Reads and sums one per-CPU `hist_value`; None if the key is gone.
pub fn read_hist(map: &dyn MapCore, key: &[u8]) -> Result<Option<HistSum>> {
    let Some(per_cpu) = map
        .lookup_percpu(key, MapFlags::ANY)
        .context("reading a kernel histogram")?
    else {
        return Ok(None);
    };
    let mut sum = HistSum::default();
    for cpu in &per_cpu {
        let words: Vec<u64> = cpu
            .chunks_exact(8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .collect();
        if words.len() < MAX_SLOTS + 3 {
            anyhow::bail!(
                "kernel histogram of {} bytes, expected {}",
                cpu.len(),
                (MAX_SLOTS + 3) * 8
            );
        }
        let one = HistSum {
            slots: words[..MAX_SLOTS].try_into().expect("MAX_SLOTS words"),
            count: words[MAX_SLOTS],
            sum_ns: words[MAX_SLOTS + 1],
            max_ns: words[MAX_SLOTS + 2],
        };
        sum.add(&one);
    }
    Ok(Some(sum))
}

/// (function id, pid) of a `hist_key`.
pub fn parse_key(key: &[u8]) -> Option<(u32, u32, u32)> {
    let word = |i: usize| {
        Some(u32::from_ne_bytes(
            key.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    Some((word(0)?, word(1)?, word(2)?))
}

#[derive(Serialize)]
pub struct Bucket {
    low: u64,
    high: u64,
    count: u64,
}

/// Kernel mode, --per-pid: keeps the `max_pids` processes with the most calls apart and sums
/// the others per function under OTHER_PIDS (the kernel table may hold more than that).
pub fn fold_other_pids(hists: &mut HashMap<(u32, u32), HistSum>, max_pids: usize) {
    let mut calls: HashMap<u32, u64> = HashMap::new();
    for (&(_, pid), h) in hists.iter() {
        *calls.entry(pid).or_default() += h.count;
    }
    if calls.len() <= max_pids {
        return;
    }
    let mut by_calls: Vec<(u32, u64)> = calls.into_iter().collect();
    by_calls.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let keep: HashSet<u32> = by_calls.iter().take(max_pids).map(|p| p.0).collect();
    let folded: Vec<(u32, u32)> = hists
        .keys()
        .filter(|(_, pid)| !keep.contains(pid))
        .copied()
        .collect();
    for key in folded {
        if let Some(h) = hists.remove(&key) {
            hists.entry((key.0, OTHER_PIDS)).or_default().add(&h);
        }
    }
}

/// The buckets of a JSON record: bucket i holds [2^i, 2^(i+1)) units, bucket 0 also 0.
pub fn json_buckets(buckets: &[u64]) -> Vec<Bucket> {
    buckets
        .iter()
        .enumerate()
        .map(|(i, &count)| Bucket {
            low: if i == 0 { 0 } else { 1 << i },
            high: (1u64 << (i + 1)) - 1,
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_from_log2_buckets() {
        // 100 calls in [4, 8) us.
        let mut slots = [0u64; MAX_SLOTS];
        slots[2] = 100;
        let p50 = estimate_quantile(&slots, 100, Unit::Micros, 0.5);
        assert_eq!(p50, 6_000);
        let p100 = estimate_quantile(&slots, 100, Unit::Micros, 1.0);
        assert_eq!(p100, 8_000);
        // 90 fast, 10 slow: p90 stays in the fast bucket, p99 in the slow one.
        let mut slots = [0u64; MAX_SLOTS];
        slots[0] = 90;
        slots[10] = 10;
        assert!(estimate_quantile(&slots, 100, Unit::Nanos, 0.9) <= 2);
        let p99 = estimate_quantile(&slots, 100, Unit::Nanos, 0.99);
        assert!((1024..2048).contains(&p99), "{p99}");
    }

    #[test]
    fn kernel_summary_is_capped_by_max() {
        let mut h = HistSum::default();
        h.slots[3] = 4;
        h.count = 4;
        h.sum_ns = 36;
        h.max_ns = 9;
        let s = h.summary(Unit::Nanos);
        assert_eq!(s.count, 4);
        assert_eq!(s.mean_ns, 9.0);
        assert_eq!(s.max_ns, 9);
        assert!(s.p99_ns <= 9);
    }

    #[test]
    fn bucket_bounds() {
        let b = json_buckets(&[1, 0, 2]);
        assert_eq!((b[0].low, b[0].high), (0, 1));
        assert_eq!((b[2].low, b[2].high, b[2].count), (4, 7, 2));
    }
}
