//! Latency histograms: exact percentiles from an HDR histogram, and the log2 bar chart that
//! users of funclatency and biolatency know.

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// Unit a histogram is printed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Nanos,
    Micros,
    Millis,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::Nanos => "nsecs",
            Unit::Micros => "usecs",
            Unit::Millis => "msecs",
        }
    }
    pub fn divisor(self) -> u64 {
        match self {
            Unit::Nanos => 1,
            Unit::Micros => 1_000,
            Unit::Millis => 1_000_000,
        }
    }
}

/// Latencies in nanoseconds, kept exactly enough for percentiles (3 significant digits).
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// The summary line: count, mean and percentiles, in ns.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

impl Latencies {
    pub fn new() -> Self {
        Latencies {
            // 3 significant digits, from 1 ns up to the largest value recorded: sized for what
            // it holds (about 40 KB for latencies under 10 us, 250 KB for an hour) instead of
            // 250 KB from the start, which a thousand traced functions would multiply.
            hist: Histogram::new(3).expect("valid histogram bounds"),
        }
    }

    pub fn record(&mut self, ns: u64) {
        let ns = ns.max(1);
        // Grows the histogram as needed (saturating_record would clamp instead); only a value
        // past what it can ever track (2^62 ns) is clamped.
        if self.hist.record(ns).is_err() {
            self.hist.saturating_record(ns);
        }
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn reset(&mut self) {
        self.hist.reset();
    }

    pub fn summary(&self) -> Summary {
        let q = |p: f64| self.hist.value_at_quantile(p);
        Summary {
            count: self.hist.len(),
            mean_ns: self.hist.mean(),
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            max_ns: self.hist.max(),
        }
    }

    /// Counts per power-of-two bucket of the value in `unit`: bucket i holds [2^i, 2^(i+1)),
    /// bucket 0 also holds 0.
    pub fn log2_buckets(&self, unit: Unit) -> Vec<u64> {
        let mut buckets = Vec::new();
        for v in self.hist.iter_recorded() {
            let value = v.value_iterated_to() / unit.divisor();
            let slot = if value == 0 {
                0
            } else {
                63 - value.leading_zeros() as usize
            };
            if buckets.len() <= slot {
                buckets.resize(slot + 1, 0);
            }
            buckets[slot] += v.count_since_last_iteration();
        }
        buckets
    }
}

/// Prints log2 buckets as funclatency does:
/// `     usecs               : count    distribution`.
pub fn print_log2(out: &mut dyn Write, buckets: &[u64], unit: Unit) -> io::Result<()> {
    let first = buckets.iter().position(|&c| c > 0);
    let last = buckets.iter().rposition(|&c| c > 0);
    let (Some(_), Some(last)) = (first, last) else {
        return Ok(());
    };
    let max = *buckets.iter().max().unwrap_or(&1);
    // As libbpf-tools' print_log2_hist: 5 spaces, the unit left-aligned in 19.
    writeln!(out, "{:5}{:<19} : count    distribution", "", unit.label())?;
    for (i, &count) in buckets.iter().enumerate().take(last + 1) {
        let low: u64 = if i == 0 { 0 } else { 1 << i };
        let high: u64 = (1u64 << (i + 1)) - 1;
        let stars = if max > 0 {
            (count * 40).div_ceil(max)
        } else {
            0
        } as usize;
        writeln!(
            out,
            "{:>10} -> {:<10} : {:<8} |{:<40}|",
            low,
            high,
            count,
            "*".repeat(stars)
        )?;
    }
    Ok(())
}

/// Formats ns in the most readable unit: 850ns, 12.3us, 4.56ms, 1.20s.
pub fn human_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{:.1}us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

impl Summary {
    /// From a histogram's count, sum and max, and its quantile function (the same percentiles
    /// whatever kind of histogram holds them).
    pub fn from_parts(count: u64, sum_ns: u64, max_ns: u64, quantile: impl Fn(f64) -> u64) -> Self {
        Summary {
            count,
            mean_ns: if count == 0 {
                0.0
            } else {
                sum_ns as f64 / count as f64
            },
            p50_ns: quantile(0.50),
            p90_ns: quantile(0.90),
            p99_ns: quantile(0.99),
            p999_ns: quantile(0.999),
            max_ns,
        }
    }

    /// `count 100  mean 1.2ms  p50 1.1ms  p90 ...`
    pub fn line(&self) -> String {
        format!(
            "count {}  mean {}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            self.count,
            human_ns(self.mean_ns),
            human_ns(self.p50_ns as f64),
            human_ns(self.p90_ns as f64),
            human_ns(self.p99_ns as f64),
            human_ns(self.p999_ns as f64),
            human_ns(self.max_ns as f64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_percentiles() {
        let mut lat = Latencies::new();
        for _ in 0..90 {
            lat.record(1_500_000); // 1.5 ms
        }
        for _ in 0..10 {
            lat.record(10_000_000); // 10 ms
        }
        let s = lat.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ns as f64 - 1.5e6).abs() / 1.5e6 < 0.01, "{s:?}");
        assert!((s.p99_ns as f64 - 1e7).abs() / 1e7 < 0.01);
        let b = lat.log2_buckets(Unit::Millis);
        assert_eq!(b[0], 90); // 1 ms .. 1 ms
        assert_eq!(b[3], 10); // 8 .. 15 ms
        let mut out = Vec::new();
        print_log2(&mut out, &b, Unit::Millis).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("msecs"), "{text}");
        assert!(text.contains("8 -> 15"), "{text}");
    }
}
