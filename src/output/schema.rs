//! The names of the JSON records, in one place: every record starts with a [`Header`] (the
//! schema version and what kind of record it is), and the fields that have an OpenTelemetry
//! semantic-convention name are written through [`Attrs`] (and [`CodeLocation`] for a stack
//! frame). Fields coretrace defines itself keep short snake_case names without a dot (`ret`,
//! `lat_us`, `buckets`), so they can never collide with an OpenTelemetry name; the ones that
//! need a namespace go under `coretrace.`. docs/json.md lists every name, and
//! docs/schema/coretrace-events.schema.json describes every record (tests validate real output
//! against it).

use serde::Serialize;

use crate::render::exit_status::ExitStatus;

/// The schema the records follow. The number changes only when a field is renamed, removed,
/// or changes meaning; a new optional field leaves it as it is.
pub const SCHEMA_URL: &str = "urn:coretrace:events:1";

/// What kind of record a line is (`event.name`).
pub mod event {
    pub const EXEC: &str = "exec";
    pub const EXIT: &str = "exit";
    pub const UNLINK: &str = "unlink";
    pub const LATENCY_HISTOGRAM: &str = "latency_histogram";
    pub const SLOW_CALL: &str = "slow_call";
    pub const LEAK_REPORT: &str = "leak_report";
    /// The loss record: while running when losses grow, and once at the end.
    pub const LOSSES: &str = "losses";
}

/// The first fields of every record.
#[derive(Serialize, Debug, Clone)]
pub struct Header {
    pub schema_url: &'static str,
    #[serde(rename = "event.name")]
    pub name: &'static str,
    /// RFC 3339, local time; absent in the loss record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl Header {
    pub fn new(name: &'static str, time: String) -> Self {
        Header {
            schema_url: SCHEMA_URL,
            name,
            time: Some(time),
        }
    }

    /// A record without a time of its own.
    pub fn untimed(name: &'static str) -> Self {
        Header {
            schema_url: SCHEMA_URL,
            name,
            time: None,
        }
    }
}

/// The attributes that have an OpenTelemetry name. A tool fills the ones it knows
/// (`..Default::default()` for the rest); an absent one is left out of the record.
#[derive(Serialize, Debug, Default)]
pub struct Attrs<'a> {
    #[serde(rename = "process.pid", skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(rename = "process.parent_pid", skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    #[serde(rename = "thread.id", skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// The kernel's command name (`comm`, 15 bytes at most), escaped: what OpenTelemetry's
    /// host-metrics process scraper reports under this name too.
    #[serde(
        rename = "process.executable.name",
        skip_serializing_if = "Option::is_none"
    )]
    pub comm: Option<String>,
    /// The real user id (what `bpf_get_current_uid_gid` returns); OpenTelemetry's `user.id`
    /// is a string for directory ids, this one is the Linux number.
    #[serde(
        rename = "process.real_user.id",
        skip_serializing_if = "Option::is_none"
    )]
    pub uid: Option<u32>,
    /// argv, each argument escaped.
    #[serde(
        rename = "process.command_args",
        skip_serializing_if = "Option::is_none"
    )]
    pub args: Option<Vec<String>>,
    #[serde(rename = "file.path", skip_serializing_if = "Option::is_none")]
    pub file_path: Option<&'a str>,
    /// The errno name of a failed call (`ENOENT`).
    #[serde(rename = "error.type", skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::render::errno::ErrnoName>,
    #[serde(rename = "code.function.name", skip_serializing_if = "Option::is_none")]
    pub function: Option<&'a str>,
    /// How a process ended.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Exit>,
}

/// How a process ended: `process.exit.code` when it exited, the signal fields when a signal
/// killed it.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct Exit {
    #[serde(rename = "process.exit.code", skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_name: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub core_dumped: bool,
}

impl From<ExitStatus> for Exit {
    fn from(s: ExitStatus) -> Self {
        Exit {
            code: s.exit_code,
            signal: s.signal,
            signal_name: s.signal_name,
            core_dumped: s.core_dumped,
        }
    }
}

/// Where a stack frame is in the code, with OpenTelemetry's `code.*` names.
#[derive(Serialize, Debug, Default)]
pub struct CodeLocation<'a> {
    #[serde(rename = "code.function.name", skip_serializing_if = "Option::is_none")]
    pub function: Option<&'a str>,
    #[serde(rename = "code.file.path", skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a str>,
    #[serde(rename = "code.line.number", skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Rec<'a> {
        #[serde(flatten)]
        head: Header,
        #[serde(flatten)]
        attrs: Attrs<'a>,
        ret: i32,
    }

    #[test]
    fn records_carry_the_schema_and_otel_names() {
        let rec = Rec {
            head: Header::new(event::EXIT, "t".into()),
            attrs: Attrs {
                pid: Some(7),
                comm: Some("sh".into()),
                exit: Some(ExitStatus::from_wait_status(9).into()),
                ..Default::default()
            },
            ret: 0,
        };
        assert_eq!(
            serde_json::to_string(&rec).unwrap(),
            r#"{"schema_url":"urn:coretrace:events:1","event.name":"exit","time":"t","process.pid":7,"process.executable.name":"sh","signal":9,"signal_name":"SIGKILL","ret":0}"#
        );
    }
}
