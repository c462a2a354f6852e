//! OTLP export (`--otlp-endpoint`, or the OpenTelemetry SDK variables): the `--json` records as
//! OTLP logs and the metrics of the exposition (src/output/metrics) as OTLP metrics, sent over
//! OTLP/HTTP in protobuf ([`proto`]) by a thread of their own ([`client`]). The consumer's
//! thread only encodes a record and offers it to a bounded queue: it never waits for the
//! network, and what cannot be sent is counted by cause like every other loss ([`causes`]).

mod client;
mod http;
mod proto;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Result};

pub use client::Client;

use crate::output::losses::LossCause;

/// Records not exported because the queue to the sending thread was full.
pub const QUEUE_FULL: LossCause = LossCause {
    slot: None,
    key: "otlp_queue_full",
    what: "records not exported over OTLP: the queue to the endpoint was full (log records, and metric snapshots, which the next one replaces)",
    advice: "the endpoint is slower than the events: check it, or narrow the filters",
};

/// Records not exported because the endpoint could not be reached, timed out, or answered
/// that it is unavailable (429, 502, 503, 504), its retries included.
pub const ENDPOINT_DOWN: LossCause = LossCause {
    slot: None,
    key: "otlp_endpoint_down",
    what: "records not exported over OTLP: the endpoint could not be reached, timed out or was unavailable, retries included (log records, and metric snapshots, which the next one replaces)",
    advice: "check that the OpenTelemetry Collector listens at --otlp-endpoint (OTEL_EXPORTER_OTLP_TIMEOUT sets the time allowed, 10 s by default)",
};

/// Records not exported because the endpoint refused the request (any other non-2xx status),
/// or accepted it but rejected them (a partial success).
pub const REJECTED: LossCause = LossCause {
    slot: None,
    key: "otlp_rejected",
    what: "records not exported over OTLP: the endpoint refused the request, or rejected them in a partial success",
    advice: "check the endpoint's URL path (/v1/logs, /v1/metrics) and OTEL_EXPORTER_OTLP_HEADERS (e.g. authentication)",
};

/// The counts behind the three causes, shared by the consumer's thread and the sender.
#[derive(Default)]
pub struct Lost {
    pub queue_full: AtomicU64,
    pub endpoint_down: AtomicU64,
    pub rejected: AtomicU64,
}

static LOST: OnceLock<Arc<Lost>> = OnceLock::new();

/// The OTLP causes and their counts, when this run exports over OTLP (read by
/// `LossCounts::read`, so they are reported, exported and fail `--fail-on-loss` like the rest).
pub fn causes() -> Vec<(&'static LossCause, u64)> {
    let Some(lost) = LOST.get() else {
        return Vec::new();
    };
    vec![
        (&QUEUE_FULL, lost.queue_full.load(Ordering::Relaxed)),
        (&ENDPOINT_DOWN, lost.endpoint_down.load(Ordering::Relaxed)),
        (&REJECTED, lost.rejected.load(Ordering::Relaxed)),
    ]
}

/// An `http://HOST[:PORT]/PATH` URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `HOST:PORT` as connected to (the port defaults to 80).
    pub authority: String,
    /// `HOST[:PORT]` as the Host header says it.
    pub host: String,
    pub path: String,
}

/// Where and how to export, from the command line and the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub logs: Option<Url>,
    pub metrics: Option<Url>,
    pub headers: Vec<(String, String)>,
    pub resource: Vec<(String, String)>,
    pub timeout: Duration,
}

/// The variables of the OpenTelemetry SDK that coretrace reads.
pub const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const ENV_LOGS: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
const ENV_METRICS: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";

impl Config {
    /// `flag` is `--otlp-endpoint`, the base URL (as OTEL_EXPORTER_OTLP_ENDPOINT, which it
    /// overrides): logs go to BASE/v1/logs, metrics to BASE/v1/metrics, unless the signal's own
    /// variable gives its full URL. None when no endpoint is given anywhere.
    pub fn from_env(flag: Option<&str>, tool: &str) -> Result<Option<Config>> {
        Self::from(flag, tool, &|name| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        })
    }

    fn from(
        flag: Option<&str>,
        tool: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Config>> {
        let (base, base_name) = match flag {
            Some(f) => (Some(f.to_string()), "--otlp-endpoint"),
            None => (env(ENV_ENDPOINT), ENV_ENDPOINT),
        };
        let signal = |var: &str, suffix: &str| -> Result<Option<Url>> {
            match (env(var), &base) {
                (Some(url), _) => parse_url(&url, var).map(Some),
                (None, Some(base)) => {
                    let url = format!("{}/{suffix}", base.trim_end_matches('/'));
                    parse_url(&url, base_name).map(Some)
                }
                (None, None) => Ok(None),
            }
        };
        let logs = signal(ENV_LOGS, "v1/logs")?;
        let metrics = signal(ENV_METRICS, "v1/metrics")?;
        if logs.is_none() && metrics.is_none() {
            return Ok(None);
        }
        for var in [
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ] {
            if let Some(p) = env(var).filter(|p| p.trim() != "http/protobuf") {
                bail!("{var}={p}: coretrace exports OTLP over http/protobuf only: unset it or set it to http/protobuf");
            }
        }
        let timeout = match env("OTEL_EXPORTER_OTLP_TIMEOUT") {
            None => Duration::from_secs(10),
            Some(ms) => match ms.trim().parse::<u64>() {
                Ok(ms) if (1..=600_000).contains(&ms) => Duration::from_millis(ms),
                _ => bail!("OTEL_EXPORTER_OTLP_TIMEOUT={ms}: give milliseconds, 1 to 600000"),
            },
        };
        let headers = match env("OTEL_EXPORTER_OTLP_HEADERS") {
            Some(h) => pairs(&h, "OTEL_EXPORTER_OTLP_HEADERS")?,
            None => Vec::new(),
        };
        if let Some((k, _)) = headers.iter().find(|(k, _)| !is_token(k)) {
            bail!("OTEL_EXPORTER_OTLP_HEADERS: '{k}' is not an HTTP header name (letters, digits, and -_.)");
        }
        Ok(Some(Config {
            logs,
            metrics,
            headers,
            resource: resource(tool, env)?,
            timeout,
        }))
    }
}

/// service.name (`coretrace`, or OTEL_SERVICE_NAME), service.version, host.name and
/// `coretrace.tool`, then OTEL_RESOURCE_ATTRIBUTES (which may override any but service.name,
/// as the SDKs do).
fn resource(tool: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut attrs: Vec<(String, String)> = vec![
        ("service.name".into(), "coretrace".into()),
        ("service.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("host.name".into(), host.trim().into()),
        ("coretrace.tool".into(), tool.into()),
    ];
    if let Some(list) = env("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, v) in pairs(&list, "OTEL_RESOURCE_ATTRIBUTES")? {
            attrs.retain(|(old, _)| *old != k);
            attrs.push((k, v));
        }
    }
    if let Some(name) = env("OTEL_SERVICE_NAME") {
        attrs.retain(|(k, _)| k != "service.name");
        attrs.insert(0, ("service.name".into(), name));
    }
    Ok(attrs)
}

/// `key1=value1,key2=value2`, values percent-encoded (the W3C Baggage form the SDKs read).
fn pairs(list: &str, var: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in list.split(',').filter(|i| !i.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            bail!("{var}: '{item}' is not key=value: give key1=value1,key2=value2");
        };
        let k = k.trim();
        let v = percent_decode(v.trim())
            .filter(|v| !v.chars().any(char::is_control))
            .ok_or_else(|| {
                anyhow::anyhow!("{var}: the value of '{k}' is not percent-encoded UTF-8 without control characters")
            })?;
        if k.is_empty() {
            bail!("{var}: '{item}' has no key: give key1=value1,key2=value2");
        }
        out.push((k.to_string(), v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
}

/// `http://HOST[:PORT][/PATH]`; `what` names where it came from, for the error.
pub fn parse_url(url: &str, what: &str) -> Result<Url> {
    let url = url.trim();
    let Some(rest) = url.strip_prefix("http://") else {
        if url.starts_with("https://") {
            bail!("{what} {url}: https is not supported (coretrace sends OTLP over plain http:// only): send to an OpenTelemetry Collector on this host or network, e.g. http://127.0.0.1:4318, and let it forward over TLS");
        }
        bail!("{what} {url}: give an http:// URL, e.g. http://127.0.0.1:4318");
    };
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let bad = || {
        anyhow::anyhow!(
            "{what} {url}: '{host}' is not HOST or HOST:PORT, e.g. http://127.0.0.1:4318"
        )
    };
    if host.is_empty()
        || host.contains('@')
        || path.bytes().any(|c| c <= b' ' || c == 0x7f)
        || host.bytes().any(|c| c <= b' ' || c == 0x7f)
    {
        return Err(bad());
    }
    // The port follows the last ':' outside the brackets of an IPv6 address.
    let port_at = host.rfind(':').filter(|&i| !host[i..].contains(']'));
    let authority = match port_at {
        Some(i) => {
            host[i + 1..].parse::<u16>().map_err(|_| bad())?;
            host.to_string()
        }
        None => format!("{host}:80"),
    };
    Ok(Url {
        authority,
        host: host.to_string(),
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flag: Option<&str>, vars: &[(&str, &str)]) -> Result<Option<Config>> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from(flag, "t", &move |n| {
            vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn endpoints_from_the_flag_the_base_variable_and_the_signals_own() {
        assert!(config(None, &[]).unwrap().is_none());
        let c = config(Some("http://h:4318/"), &[(ENV_ENDPOINT, "http://other:1")])
            .unwrap()
            .unwrap();
        assert_eq!(c.logs.unwrap().path, "/v1/logs");
        assert_eq!(c.metrics.unwrap().authority, "h:4318");
        let c = config(None, &[(ENV_METRICS, "http://[::1]/m")])
            .unwrap()
            .unwrap();
        assert!(c.logs.is_none());
        assert_eq!(c.metrics.unwrap().authority, "[::1]:80");
    }

    #[test]
    fn bad_urls_and_variables_are_one_line_errors_naming_the_fix() {
        let e = config(Some("https://h:4318"), &[]).unwrap_err().to_string();
        assert!(
            e.contains("https is not supported") && e.contains("http://"),
            "{e}"
        );
        assert!(config(Some("h:4318"), &[]).is_err());
        assert!(config(Some("http://h:99999"), &[]).is_err());
        let e = config(Some("http://h"), &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("http/protobuf"), "{e}");
        let e = config(Some("http://h"), &[("OTEL_RESOURCE_ATTRIBUTES", "novalue")]);
        assert!(e.unwrap_err().to_string().contains("key=value"));
    }

    #[test]
    fn resource_attributes_and_headers() {
        let c = config(
            Some("http://h"),
            &[
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod,a=b%20c",
                ),
                ("OTEL_SERVICE_NAME", "edge"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20x"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.resource[0], ("service.name".into(), "edge".into()));
        assert!(c.resource.contains(&("a".into(), "b c".into())));
        assert!(c.resource.iter().any(|(k, _)| k == "host.name"));
        assert_eq!(c.headers, [("Authorization".into(), "Bearer x".into())]);
    }
}
