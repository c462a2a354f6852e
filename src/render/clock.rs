//! Event timestamps. BPF programs stamp events with `bpf_ktime_get_ns()` (CLOCK_MONOTONIC);
//! this turns them into wall-clock time (`-T`) or seconds since the tool started (`-t`),
//! without a clock or time-zone lookup per event.

use chrono::{DateTime, Local, TimeZone};

/// How a tool shows the time of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeMode {
    None,
    /// HH:MM:SS, local time.
    Wall,
    /// Seconds since the tool started.
    Relative,
}

impl TimeMode {
    /// From the usual pair of flags: `-T` (wall clock) wins over `-t` (relative).
    pub fn from_flags(wall: bool, relative: bool) -> Self {
        if wall {
            TimeMode::Wall
        } else if relative {
            TimeMode::Relative
        } else {
            TimeMode::None
        }
    }

    /// The table column for this mode, if it has one.
    pub fn column(self) -> Option<crate::render::column::Column> {
        use crate::render::column::Column;
        match self {
            TimeMode::None => None,
            TimeMode::Wall => Some(Column::left("TIME", 8)),
            TimeMode::Relative => Some(Column::left("TIME(s)", 9)),
        }
    }
}

/// Converts monotonic BPF timestamps to wall-clock and relative time.
#[derive(Clone, Debug)]
pub struct Clock {
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, in ns.
    realtime_offset_ns: i128,
    start_ns: u64,
    /// Cached "HH:MM:SS" of the last second formatted.
    cached_sec: i64,
    cached_hms: String,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        let real = clock_ns(libc::CLOCK_REALTIME);
        Clock {
            realtime_offset_ns: real as i128 - mono as i128,
            start_ns: mono,
            cached_sec: i64::MIN,
            cached_hms: String::new(),
        }
    }

    /// Now, on the clock BPF programs use.
    pub fn monotonic_now_ns() -> u64 {
        clock_ns(libc::CLOCK_MONOTONIC)
    }

    pub fn wall(&self, ts_ns: u64) -> DateTime<Local> {
        let ns = ts_ns as i128 + self.realtime_offset_ns;
        Local.timestamp_nanos(ns as i64)
    }

    /// Seconds from the tool's start to `ts_ns` (negative for events stamped just before).
    pub fn since_start(&self, ts_ns: u64) -> f64 {
        (ts_ns as i128 - self.start_ns as i128) as f64 / 1e9
    }

    /// "HH:MM:SS" of `ts_ns`, formatted once per second.
    pub fn hms(&mut self, ts_ns: u64) -> &str {
        let sec = ((ts_ns as i128 + self.realtime_offset_ns) / 1_000_000_000) as i64;
        if sec != self.cached_sec {
            self.cached_sec = sec;
            self.cached_hms = self.wall(ts_ns).format("%H:%M:%S").to_string();
        }
        &self.cached_hms
    }

    /// RFC 3339 time with microseconds, for JSON.
    pub fn rfc3339(&self, ts_ns: u64) -> String {
        self.wall(ts_ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
    }

    /// The time cell for `mode`, written into `buf`.
    pub fn cell<'a>(&'a mut self, mode: TimeMode, ts_ns: u64, buf: &'a mut String) -> &'a str {
        match mode {
            TimeMode::None => "",
            TimeMode::Wall => self.hms(ts_ns),
            TimeMode::Relative => {
                use std::fmt::Write;
                buf.clear();
                let _ = write!(buf, "{:.3}", self.since_start(ts_ns));
                buf
            }
        }
    }
}

fn clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_time_counts_from_start() {
        let clock = Clock::new();
        let later = clock.start_ns + 1_500_000_000;
        assert!((clock.since_start(later) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn wall_time_matches_now() {
        let mut clock = Clock::new();
        let now = Clock::monotonic_now_ns();
        let expect = Local::now().format("%H:%M:%S").to_string();
        let got = clock.hms(now).to_string();
        // Allow for a second boundary between the two reads.
        let then = (Local::now() - chrono::Duration::seconds(1))
            .format("%H:%M:%S")
            .to_string();
        assert!(got == expect || got == then, "{got} vs {expect}");
    }
}
