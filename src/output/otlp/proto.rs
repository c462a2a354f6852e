//! The protocol-buffers encoding of the few OTLP messages coretrace sends (opentelemetry-proto,
//! `collector/logs/v1` and `collector/metrics/v1`), written by hand: a generated encoder and its
//! runtime would cost more of the binary's 3 MB than these 200 lines. Field numbers are those of
//! the official .proto files; tests/otlp.rs decodes every request with the official Python
//! definitions.

use serde_json::Value;

use crate::output::metrics::{Family, Kind, PointValue};

/// Wire types.
const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from(field << 3 | wire));
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    fixed64(out, field, v.to_bits());
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A nested message: `body` writes it into a buffer of its own, which goes in length-prefixed.
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    bytes(out, field, &inner);
}

/// `KeyValue { string key = 1; AnyValue value = 2; }`
fn key_value(out: &mut Vec<u8>, field: u32, k: &str, v: &Value) {
    message(out, field, |m| {
        bytes(m, 1, k.as_bytes());
        message(m, 2, |a| any_value(a, v));
    });
}

/// A string attribute.
pub fn attribute(out: &mut Vec<u8>, field: u32, k: &str, v: &str) {
    message(out, field, |m| {
        bytes(m, 1, k.as_bytes());
        message(m, 2, |a| bytes(a, 1, v.as_bytes()));
    });
}

/// `AnyValue`: string 1, bool 2, int 3, double 4, array 5, kvlist 6; null is the empty value.
fn any_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => {}
        Value::Bool(b) => uint(out, 2, u64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => uint(out, 3, i as u64),
            None => double(out, 4, n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => bytes(out, 1, s.as_bytes()),
        Value::Array(items) => message(out, 5, |arr| {
            for item in items {
                message(arr, 1, |a| any_value(a, item));
            }
        }),
        Value::Object(map) => message(out, 6, |list| {
            for (k, item) in map {
                key_value(list, 1, k, item);
            }
        }),
    }
}

/// Severity numbers of the log data model.
pub const SEVERITY_INFO: u64 = 9;
pub const SEVERITY_WARN: u64 = 13;

/// One `LogRecord` from one JSON record: every field becomes an attribute of the same name and
/// value (nested objects as key-value lists), `event.name` is also the record's event name, and
/// `time` (RFC 3339) its time.
pub fn log_record(record: &Value, observed_ns: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let obj = record.as_object();
    let field = |name: &str| obj.and_then(|o| o.get(name)).and_then(Value::as_str);
    if let Some(t) = field("time").and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        if let Some(ns) = t.timestamp_nanos_opt().filter(|&ns| ns > 0) {
            fixed64(&mut out, 1, ns as u64);
        }
    }
    let severity = if field("event.name") == Some(crate::output::schema::event::LOSSES) {
        SEVERITY_WARN
    } else {
        SEVERITY_INFO
    };
    uint(&mut out, 2, severity);
    for (k, v) in obj.into_iter().flatten() {
        key_value(&mut out, 6, k, v);
    }
    fixed64(&mut out, 11, observed_ns);
    if let Some(name) = field("event.name") {
        bytes(&mut out, 12, name.as_bytes());
    }
    out
}

/// What every request carries: the resource (`Resource { repeated KeyValue attributes = 1 }`)
/// and the instrumentation scope (`InstrumentationScope { name = 1; version = 2 }`).
pub struct Origin<'a> {
    pub resource: &'a [(String, String)],
    pub scope: &'a str,
}

impl Origin<'_> {
    fn resource(&self, out: &mut Vec<u8>) {
        message(out, 1, |r| {
            for (k, v) in self.resource {
                attribute(r, 1, k, v);
            }
        });
    }

    fn scope(&self, out: &mut Vec<u8>) {
        message(out, 1, |s| {
            bytes(s, 1, self.scope.as_bytes());
            bytes(s, 2, env!("CARGO_PKG_VERSION").as_bytes());
        });
    }
}

/// `ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1 }`, ResourceLogs
/// `{ resource = 1; scope_logs = 2 }`, ScopeLogs `{ scope = 1; log_records = 2 }`, from
/// records made by [`log_record`].
pub fn logs_request(origin: &Origin, records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    message(&mut out, 1, |rl| {
        origin.resource(rl);
        message(rl, 2, |sl| {
            origin.scope(sl);
            for r in records {
                bytes(sl, 2, r);
            }
        });
    });
    out
}

/// AggregationTemporality CUMULATIVE: every value counts from the tool's start.
const CUMULATIVE: u64 = 2;

/// `ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1 }`,
/// ResourceMetrics `{ resource = 1; scope_metrics = 2 }`, ScopeMetrics `{ scope = 1; metrics = 2 }`:
/// counters as monotonic cumulative sums, gauges as gauges, histograms as explicit-bucket
/// histograms, all from the exposition's families.
pub fn metrics_request(
    origin: &Origin,
    families: &[Family],
    start_ns: u64,
    now_ns: u64,
) -> Vec<u8> {
    let mut out = Vec::new();
    message(&mut out, 1, |rm| {
        origin.resource(rm);
        message(rm, 2, |sm| {
            origin.scope(sm);
            for f in families {
                message(sm, 2, |m| metric(m, f, start_ns, now_ns));
            }
        });
    });
    out
}

/// `Metric { name = 1; description = 2; unit = 3; gauge = 5 | sum = 7 | histogram = 9 }`.
fn metric(m: &mut Vec<u8>, f: &Family, start_ns: u64, now_ns: u64) {
    bytes(m, 1, f.name.as_bytes());
    bytes(m, 2, f.help.as_bytes());
    let unit = if f.name.ends_with("_seconds") {
        "s"
    } else if f.name.ends_with("_bytes") {
        "By"
    } else {
        ""
    };
    if !unit.is_empty() {
        bytes(m, 3, unit.as_bytes());
    }
    let points = |d: &mut Vec<u8>| {
        for p in &f.points {
            message(d, 1, |dp| point(dp, &p.labels, &p.value, start_ns, now_ns));
        }
    };
    match f.kind {
        Kind::Gauge => message(m, 5, points),
        Kind::Counter => message(m, 7, |s| {
            points(s);
            uint(s, 2, CUMULATIVE);
            uint(s, 3, 1);
        }),
        Kind::Histogram => message(m, 9, |h| {
            points(h);
            uint(h, 2, CUMULATIVE);
        }),
    }
}

/// NumberDataPoint `{ attributes = 7; start_time_unix_nano = 2; time_unix_nano = 3;
/// as_double = 4 }`, or HistogramDataPoint `{ attributes = 9; start = 2; time = 3; count = 4;
/// sum = 5; bucket_counts = 6; explicit_bounds = 7 }` (bucket_counts one longer than the
/// bounds: the last bucket is above the highest bound).
fn point(
    dp: &mut Vec<u8>,
    labels: &[(String, String)],
    value: &PointValue,
    start_ns: u64,
    now_ns: u64,
) {
    fixed64(dp, 2, start_ns);
    fixed64(dp, 3, now_ns);
    match value {
        PointValue::Number(v) => {
            double(dp, 4, *v);
            for (k, v) in labels {
                attribute(dp, 7, k, v);
            }
        }
        PointValue::Histogram {
            bounds,
            counts,
            sum,
        } => {
            fixed64(dp, 4, counts.iter().sum());
            double(dp, 5, *sum);
            let mut packed = Vec::with_capacity(counts.len() * 8);
            for c in counts {
                packed.extend_from_slice(&c.to_le_bytes());
            }
            bytes(dp, 6, &packed);
            packed.clear();
            for b in bounds {
                packed.extend_from_slice(&b.to_bits().to_le_bytes());
            }
            bytes(dp, 7, &packed);
            for (k, v) in labels {
                attribute(dp, 9, k, v);
            }
        }
    }
}

/// Reads a varint at `*at`, moving past it; None when cut short or longer than ten bytes.
fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The last field `field` of wire type `wire` in message `b`, skipping the others: a varint's
/// value, or a LEN field's bytes (as the range they take). None if absent or malformed.
fn find_field(b: &[u8], field: u64, wire: u64) -> Option<(u64, std::ops::Range<usize>)> {
    let (mut at, mut found) = (0, None);
    while at < b.len() {
        let k = read_varint(b, &mut at)?;
        let start = at;
        let v = match k & 7 {
            0 => read_varint(b, &mut at)?,
            1 => 8,
            5 => 4,
            2 => read_varint(b, &mut at)?,
            _ => return None, // groups: not in these messages
        };
        let skip = if k & 7 == 0 {
            0
        } else {
            usize::try_from(v).ok()?
        };
        let (from, to) = if k & 7 == 2 {
            (at, at.checked_add(skip)?)
        } else {
            (start, at + skip)
        };
        if to > b.len() {
            return None;
        }
        at = to;
        if k >> 3 == field && k & 7 == wire {
            found = Some((v, from..to));
        }
    }
    found
}

/// In an ExportLogsServiceResponse or ExportMetricsServiceResponse (a 2xx answer's body): how
/// many log records or data points its `partial_success` says were rejected (field 1 of the
/// response, and field 1 of that message in both); 0 when there is none or it does not parse.
pub fn rejected(response: &[u8]) -> u64 {
    let Some((_, partial)) = find_field(response, 1, LEN as u64) else {
        return 0;
    };
    find_field(&response[partial], 1, VARINT as u64)
        .map_or(0, |(n, _)| i64::try_from(n).map_or(0, |n| n as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_as_the_wire_format_writes_them() {
        let mut out = Vec::new();
        uint(&mut out, 1, 150);
        assert_eq!(out, [0x08, 0x96, 0x01]);
        out.clear();
        uint(&mut out, 3, -2i64 as u64);
        assert_eq!(out.len(), 11, "a negative int64 takes ten bytes");
        out.clear();
        attribute(&mut out, 1, "a", "b");
        assert_eq!(out, [0x0a, 8, 0x0a, 1, b'a', 0x12, 3, 0x0a, 1, b'b']);
    }

    #[test]
    fn a_record_keeps_its_event_name_and_every_field() {
        let rec = serde_json::json!({"event.name": "exec", "process.pid": 7});
        let out = log_record(&rec, 5);
        assert!(out.ends_with(&[0x62, 4, b'e', b'x', b'e', b'c']), "{out:?}");
        assert!(out.windows(11).any(|w| w == b"process.pid"));
    }

    #[test]
    fn partial_success_is_read_from_either_response() {
        // partial_success { rejected = 300, error_message = "x" }, after an unknown field.
        let mut partial = Vec::new();
        uint(&mut partial, 1, 300);
        bytes(&mut partial, 2, b"x");
        let mut resp = Vec::new();
        fixed64(&mut resp, 9, 1);
        bytes(&mut resp, 1, &partial);
        assert_eq!(rejected(&resp), 300);
        assert_eq!(rejected(&[]), 0, "full success: an empty body");
        assert_eq!(rejected(&resp[..resp.len() - 2]), 0, "cut short");
        let mut negative = Vec::new();
        uint(&mut negative, 1, -1i64 as u64);
        let mut resp = Vec::new();
        bytes(&mut resp, 1, &negative);
        assert_eq!(rejected(&resp), 0);
        assert_eq!(rejected(b"<html>"), 0);
    }
}
