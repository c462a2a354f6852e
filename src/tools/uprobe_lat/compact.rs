//! A latency histogram sized for what it holds, for `--per-pid`, where there may be thousands of
//! them: the exact HDR histogram of one function costs about 246 KB, this one a few hundred
//! bytes for latencies that span a few powers of two, about 5 KB for latencies from 1 ns to an hour.
//!
//! Count, mean, min, max and the log2 buckets (in the report's unit) are exact. Percentiles come
//! from 16 linear sub-buckets per power of two of nanoseconds, interpolated: within 1/16 of the
//! true value, usually much closer.

use crate::output::histogram::{Summary, Unit};

/// Sub-buckets per power of two (2^SUB_BITS).
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;

/// The fine bin of `v` ns: values below SUB have a bin each; above, bin (e - SUB_BITS + 1) * SUB
/// + the SUB_BITS bits below the leading one, where e is the leading bit's position.
fn bin_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The values bin `b` holds: [low, low + width).
fn bin_range(b: usize) -> (u64, u64) {
    let b = b as u64;
    if b < SUB {
        return (b, 1);
    }
    let e = b / SUB + SUB_BITS as u64 - 1;
    let sub = b % SUB;
    let shift = e - SUB_BITS as u64;
    ((SUB + sub) << shift, 1 << shift)
}

#[derive(Clone, Debug)]
pub struct CompactLatencies {
    count: u64,
    sum_ns: u64,
    min_ns: u64,
    max_ns: u64,
    /// ns per unit of `log2`.
    unit_div: u64,
    /// Counts of log2(value in the unit): exact buckets for the bar chart.
    log2: Vec<u64>,
    /// Index of the bin `fine[0]` counts.
    first_bin: usize,
    /// Counts of the fine bins first_bin.., grown at either end as values arrive.
    fine: Vec<u64>,
}

impl CompactLatencies {
    pub fn new(unit: Unit) -> Self {
        CompactLatencies {
            count: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            unit_div: unit.divisor(),
            log2: Vec::new(),
            first_bin: 0,
            fine: Vec::new(),
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.count += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);

        let in_unit = ns / self.unit_div;
        let slot = if in_unit == 0 {
            0
        } else {
            63 - in_unit.leading_zeros() as usize
        };
        if self.log2.len() <= slot {
            self.log2.resize(slot + 1, 0);
        }
        self.log2[slot] += 1;

        let b = bin_of(ns);
        if self.fine.is_empty() {
            self.first_bin = b;
        } else if b < self.first_bin {
            let grow = self.first_bin - b;
            self.fine.splice(0..0, std::iter::repeat_n(0, grow));
            self.first_bin = b;
        }
        let i = b - self.first_bin;
        if self.fine.len() <= i {
            self.fine.resize(i + 1, 0);
        }
        self.fine[i] += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Counts per log2 bucket of the value in the unit given to `new`.
    pub fn log2_buckets(&self) -> Vec<u64> {
        self.log2.clone()
    }

    /// The value at quantile `p`, interpolated inside its fine bin, within [min, max].
    fn quantile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = (p * self.count as f64).ceil().max(1.0);
        let mut seen = 0u64;
        for (i, &c) in self.fine.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if (seen + c) as f64 >= rank {
                let (low, width) = bin_range(self.first_bin + i);
                let frac = (rank - seen as f64) / c as f64;
                let v = low as f64 + width as f64 * frac;
                return (v as u64).clamp(self.min_ns, self.max_ns);
            }
            seen += c;
        }
        self.max_ns
    }

    pub fn summary(&self) -> Summary {
        Summary::from_parts(self.count, self.sum_ns, self.max_ns, |p| self.quantile(p))
    }

    /// Bytes this histogram holds on the heap and inline.
    #[cfg(test)]
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + (self.log2.capacity() + self.fine.capacity()) * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_tile_the_values() {
        let mut next = 0u64;
        for b in 0..bin_of(u64::MAX) {
            let (low, width) = bin_range(b);
            assert_eq!(low, next, "bin {b}");
            assert_eq!(bin_of(low), b);
            assert_eq!(bin_of(low + width - 1), b);
            next = low + width;
        }
    }

    #[test]
    fn percentiles_within_a_sixteenth_and_counts_exact() {
        let mut h = CompactLatencies::new(Unit::Micros);
        // 1..=10000 us in ns.
        for v in 1..=10_000u64 {
            h.record(v * 1_000);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max_ns, 10_000_000);
        assert!((s.mean_ns - 5_000_500.0).abs() < 1.0);
        for (got, want) in [(s.p50_ns, 5_000_000.0), (s.p99_ns, 9_900_000.0)] {
            let err = (got as f64 - want).abs() / want;
            assert!(err < 1.0 / 16.0, "{got} vs {want}");
        }
        let buckets = h.log2_buckets();
        assert_eq!(buckets.iter().sum::<u64>(), 10_000);
        assert_eq!(buckets[0], 1); // 1 us
        assert_eq!(buckets[13], 10_000 - 8191); // 8192..10000 us
    }

    #[test]
    fn small_for_a_narrow_range_bounded_for_any() {
        let mut h = CompactLatencies::new(Unit::Nanos);
        for v in [5_000_000u64, 5_100_000, 5_300_000, 6_000_000] {
            h.record(v);
        }
        assert!(h.footprint() < 512, "{}", h.footprint());
        h.record(1);
        h.record(3_600_000_000_000); // an hour
        assert!(h.footprint() < 8 * 1024, "{}", h.footprint());
        assert_eq!(h.summary().p50_ns.max(1), h.summary().p50_ns);
    }
}
