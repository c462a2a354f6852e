//! Prometheus export: the text exposition format (version 0.0.4), written to a file that is
//! replaced atomically every interval (node_exporter's textfile collector reads it) and/or
//! served on `GET /metrics` over HTTP.
//!
//! The consumer (src/consumer) builds an [`Exposition`] at each interval with what every tool
//! has (events received, losses by cause) and asks the tool's `Handler::metrics` for its own
//! families (uprobe-lat's histograms, kmemleak-lite's outstanding memory), then hands it to the
//! [`Exporter`]. Nothing here runs per event.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::http;
use crate::output::losses::LossCounts;

/// The content type of the text format, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape's worth of metric families, in the text format. Families are written whole:
/// `# HELP`, `# TYPE`, then every sample of that family.
#[derive(Default)]
pub struct Exposition {
    text: String,
    families: Vec<Family>,
}

/// One family, as OTLP sends it (src/output/otlp): the same names, labels and values as the
/// text.
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub points: Vec<Point>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

pub struct Point {
    pub labels: Vec<(String, String)>,
    pub value: PointValue,
}

pub enum PointValue {
    Number(f64),
    /// `counts` holds each bucket's own count, one more than `bounds`: the last is above the
    /// highest bound.
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        sum: f64,
    },
}

/// Label pairs of one sample; values are escaped as the format asks.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: `kind` is counter, gauge or histogram.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        self.families.push(Family {
            name: name.to_string(),
            kind: match kind {
                "counter" => Kind::Counter,
                "histogram" => Kind::Histogram,
                _ => Kind::Gauge,
            },
            help: help.to_string(),
            points: Vec::new(),
        });
    }

    /// The families written so far, for OTLP.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    fn point(&mut self, labels: Labels, value: PointValue) {
        if let Some(f) = self.families.last_mut() {
            let labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            f.points.push(Point { labels, value });
        }
    }

    /// One sample of the family started last (for a counter, `name` ends in `_total`).
    pub fn sample(&mut self, name: &str, labels: Labels, value: f64) {
        self.text.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.text, " {}", number(value));
        self.point(labels, PointValue::Number(value));
    }

    /// One histogram of the family started last: `upper` holds each bucket's upper bound (in
    /// the family's unit, increasing) and the count of the observations in that bucket alone;
    /// they are written cumulative, with the `+Inf` bucket, `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, labels: Labels, buckets: &[(f64, u64)], sum: f64) {
        let mut cumulative = 0;
        let mut le = String::new();
        for &(upper, count) in buckets {
            cumulative += count;
            le.clear();
            le.push_str(&number(upper));
            self.text.push_str(name);
            self.text.push_str("_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.text, " {cumulative}");
        }
        self.text.push_str(name);
        self.text.push_str("_bucket");
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.text, " {cumulative}");
        self.text.push_str(name);
        self.text.push_str("_sum");
        self.labels(labels, None);
        let _ = writeln!(self.text, " {}", number(sum));
        self.text.push_str(name);
        self.text.push_str("_count");
        self.labels(labels, None);
        let _ = writeln!(self.text, " {cumulative}");
        let hist = PointValue::Histogram {
            bounds: buckets.iter().map(|b| b.0).collect(),
            counts: buckets.iter().map(|b| b.1).chain([0]).collect(),
            sum,
        };
        self.point(labels, hist);
    }

    /// What every tool exports: the records its BPF side sent, and what was lost, by cause.
    pub fn common(&mut self, tool: &str, events: u64, losses: &LossCounts) {
        self.family(
            "coretrace_events_total",
            "counter",
            "Records received from the kernel.",
        );
        self.sample("coretrace_events_total", &[("tool", tool)], events as f64);
        self.family(
            "coretrace_lost_events_total",
            "counter",
            "Events lost, by cause (see the tool's --help and README for each cause).",
        );
        for (cause, n) in &losses.counts {
            self.sample(
                "coretrace_lost_events_total",
                &[("tool", tool), ("cause", cause.key)],
                *n as f64,
            );
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn labels(&mut self, labels: Labels, le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.text.push('{');
        let mut first = true;
        for (name, value) in labels.iter().copied().chain(le.map(|v| ("le", v))) {
            if !first {
                self.text.push(',');
            }
            first = false;
            self.text.push_str(name);
            self.text.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '"' => self.text.push_str("\\\""),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
            self.text.push('"');
        }
        self.text.push('}');
    }
}

/// A number as the format writes it: integers without a fraction, `+Inf`, `NaN`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `--metrics-listen ADDR`: `HOST:PORT`, or a bare `PORT` for 127.0.0.1 (loopback: only this
/// machine can scrape it; to let others, give the address to listen on, e.g. 0.0.0.0:9464).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("'{s}' is not an address to listen on: give PORT (on 127.0.0.1) or HOST:PORT with an IP address, e.g. 127.0.0.1:9464 or [::1]:9464")
    })
}

/// Where the metrics go, and when.
pub struct Exporter {
    file: Option<PathBuf>,
    served: Option<Arc<http::Shared>>,
    otlp: Option<Arc<super::otlp::Client>>,
    interval: Duration,
    next: Instant,
}

impl Exporter {
    /// Checks that `file`'s directory is writable and starts the HTTP server on `listen`; the
    /// first export happens at once, then every `interval`, to each of them and to `otlp`.
    pub fn new(
        tool: &str,
        file: Option<&Path>,
        listen: Option<SocketAddr>,
        otlp: Option<Arc<super::otlp::Client>>,
        interval: Duration,
        verbose: bool,
    ) -> Result<Option<Exporter>> {
        if file.is_none() && listen.is_none() && otlp.is_none() {
            return Ok(None);
        }
        if let Some(path) = file {
            // Fail now, not at the first interval: write (and remove) the temporary file.
            let tmp = tmp_path(path);
            std::fs::write(&tmp, b"").with_context(|| {
                format!(
                    "--metrics-file {}: cannot write in its directory ({}): give a path in a writable directory",
                    path.display(),
                    tmp.display()
                )
            })?;
            let _ = std::fs::remove_file(&tmp);
        }
        let served = match listen {
            Some(addr) => Some(serve(tool, addr, verbose)?),
            None => None,
        };
        Ok(Some(Exporter {
            file: file.map(Path::to_path_buf),
            served,
            otlp,
            interval,
            next: Instant::now(),
        }))
    }

    /// Whether an export is due.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Writes the file (a temporary file renamed over it, so a reader never sees half of it)
    /// and replaces what the server serves.
    pub fn publish(&mut self, exp: Exposition, now: Instant) -> Result<()> {
        self.next = now + self.interval;
        if let Some(path) = &self.file {
            let tmp = tmp_path(path);
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(exp.as_str().as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
            };
            write().with_context(|| format!("writing --metrics-file {}", path.display()))?;
        }
        if let Some(otlp) = &self.otlp {
            otlp.metrics(&exp);
        }
        if let Some(served) = &self.served {
            *served.text.lock().unwrap_or_else(|e| e.into_inner()) = Arc::from(exp.text);
        }
        Ok(())
    }
}

/// `PATH.tmp.PID` next to PATH, so the rename stays within one file system. The textfile
/// collector reads only `*.prom`, so it never reads the temporary file.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp.{}", std::process::id()));
    PathBuf::from(name)
}

/// Serves the latest exposition on `GET /metrics` from a thread of its own (see [`http`]: a
/// bounded number of connections, timeouts, no request body read; it only takes a reference to
/// the text under a lock, so it never slows the consumer down).
fn serve(tool: &str, addr: SocketAddr, verbose: bool) -> Result<Arc<http::Shared>> {
    let (shared, local) = http::serve(tool, addr, http::Limits::default())?;
    if verbose {
        eprintln!("{tool}: serving metrics on http://{local}/metrics");
    }
    Ok(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let mut e = Exposition::new();
        e.family("x_seconds", "histogram", "h");
        e.histogram(
            "x_seconds",
            &[("function", "f\"1")],
            &[(0.001, 2), (0.002, 0), (0.004, 3)],
            0.01,
        );
        assert_eq!(
            e.as_str(),
            "# HELP x_seconds h\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{function=\"f\\\"1\",le=\"0.001\"} 2\n\
             x_seconds_bucket{function=\"f\\\"1\",le=\"0.002\"} 2\n\
             x_seconds_bucket{function=\"f\\\"1\",le=\"0.004\"} 5\n\
             x_seconds_bucket{function=\"f\\\"1\",le=\"+Inf\"} 5\n\
             x_seconds_sum{function=\"f\\\"1\"} 0.01\n\
             x_seconds_count{function=\"f\\\"1\"} 5\n"
        );
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:1").unwrap(),
            "0.0.0.0:1".parse().unwrap()
        );
        assert!(parse_listen("localhost:99999")
            .unwrap_err()
            .contains("HOST:PORT"));
    }
}
