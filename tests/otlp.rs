//! OTLP export as a user sets it up: `--otlp-endpoint` pointed at a receiver
//! (tests/otlp_receiver.py) that decodes every request with the official OpenTelemetry protobuf
//! definitions and checks what the specification requires; and endpoints that are down, refuse,
//! or hang, whose losses must be counted by cause and printed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{final_losses, marker, run_traced, Finished, Traced};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// The Python that has the opentelemetry-proto package: CORETRACE_OTLP_PYTHON, or the venv
/// tools/setup-debian.sh makes, or python3.
fn python() -> String {
    if let Ok(p) = std::env::var("CORETRACE_OTLP_PYTHON") {
        return p;
    }
    let venv = "/opt/coretrace-test-venv/bin/python3";
    if std::path::Path::new(venv).exists() {
        return venv.into();
    }
    "python3".into()
}

/// tests/otlp_receiver.py, running: its port, and each request it decoded (one JSON value).
struct Receiver {
    child: Child,
    port: u16,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Answers every request with `status`.
    fn start(status: u16) -> Receiver {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp_receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(status.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(port) = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the OTLP receiver did not start ({}): install the opentelemetry-proto Python package (tools/setup-debian.sh does)",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap();
                into.lock().unwrap().push(v);
            }
        });
        Receiver { child, port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request decoded so far; none may have broken the specification.
    fn requests(&self) -> Vec<Value> {
        let seen = self.seen.lock().unwrap().clone();
        for r in &seen {
            assert!(r.get("error").is_none(), "a request broke the spec: {r}");
        }
        seen
    }

    /// Every log record received so far.
    fn log_records(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r["signal"] == "logs")
            .flat_map(|r| r["records"].as_array().unwrap().clone())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `pred` holds of the receiver's requests.
fn wait_until(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

bpf_test!(
    fn an_execsnoop_record_arrives_as_a_log_record_with_the_attributes_of_its_json_line() {
        let rx = Receiver::start(200);
        let m = marker("otlp-exec");
        let t = Traced::start("execsnoop", &["--json", "--otlp-endpoint", &rx.url()]);
        run_traced(Command::new("/bin/echo").args([m.as_str(), "two words"]));
        let has_marker = |r: &Value| r.to_string().contains(&m);
        wait_until("the exec's log record", || {
            rx.log_records().iter().any(has_marker)
        });
        let out = t.stop();
        assert!(out.status.success(), "{out:?}");
        let json: Vec<Value> = out.json().into_iter().filter(has_marker).collect();
        assert_eq!(json.len(), 1, "{out:?}");
        let records: Vec<Value> = rx.log_records().into_iter().filter(has_marker).collect();
        assert_eq!(records.len(), 1, "{records:?}");
        let r = &records[0];
        assert_eq!(
            r["attributes"], json[0],
            "attributes = the JSON line's fields"
        );
        assert_eq!(r["event_name"], "exec");
        assert_eq!(r["severity_number"], 9, "INFO");
        assert!(r["time_unix_nano"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["scope"], "coretrace/execsnoop");
        let res = &r["resource"];
        assert_eq!(res["service.name"], "coretrace");
        assert_eq!(res["service.version"], env!("CARGO_PKG_VERSION"));
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(res["host.name"], host.trim());
    }
);

bpf_test!(
    fn a_uprobe_lat_histogram_over_otlp_has_the_count_of_the_json_report() {
        let rx = Receiver::start(200);
        let exe =
            common::build_c_program("uprobe_target", &["-O1", "-g", "-fno-inline", "-pthread"]);
        let mut target = Command::new(&exe)
            .arg("run")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(target.stdout.take().unwrap()).lines();
        let ready = lines.next().unwrap().unwrap();
        assert!(ready.starts_with("ready"), "{ready}");
        let func = format!("{}:work_sleep", exe.display());
        let t = Traced::start(
            "uprobe-lat",
            &["--json", "--otlp-endpoint", &rx.url(), &func],
        );
        target.stdin.take().unwrap().write_all(b"go\n").unwrap();
        for line in lines {
            line.unwrap();
        }
        assert!(target.wait().unwrap().success());
        std::thread::sleep(Duration::from_millis(300));
        let out = t.stop();
        assert!(out.status.success(), "{out:?}");
        let json = out.json();
        let report: Vec<&Value> = json
            .iter()
            .filter(|v| v["event.name"] == "latency_histogram")
            .collect();
        assert_eq!(report.len(), 1, "{out:?}");
        let count = report[0]["count"].as_u64().unwrap();
        assert_eq!(count, 20, "the scenario's 20 calls of work_sleep");
        // The last snapshot, sent at exit, holds the whole run.
        let requests = rx.requests();
        let last = requests
            .iter()
            .rfind(|r| r["signal"] == "metrics")
            .expect("a metrics request");
        let metric = last["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "coretrace_uprobe_lat_duration_seconds")
            .unwrap_or_else(|| panic!("no histogram in {last}"));
        assert_eq!(metric["kind"], "histogram");
        assert_eq!(metric["unit"], "s");
        assert_eq!(metric["temporality"], 2, "cumulative");
        let points = metric["points"].as_array().unwrap();
        assert_eq!(points.len(), 1, "{metric}");
        assert_eq!(points[0]["attributes"]["function"], "work_sleep");
        assert_eq!(points[0]["count"], count, "{metric}");
        // Each call slept 5 ms: the sum is at least 100 ms.
        assert!(points[0]["sum"].as_f64().unwrap() >= 0.1, "{metric}");
        // The JSON report went out as a log record too.
        let logs = rx.log_records();
        let hist = logs
            .iter()
            .find(|r| r["event_name"] == "latency_histogram")
            .expect("the report as a log record");
        assert_eq!(&hist["attributes"], report[0]);
    }
);

/// Runs execsnoop with `env` against `endpoint`, execs `execs` times, and returns what it
/// printed and how many records it had to export: its JSON lines but the final loss record
/// (written after export ends) and its two metrics snapshots (at start and at exit: the
/// interval is an hour).
fn export_against(endpoint: &str, env: &[(&str, &str)], execs: usize) -> (Finished, u64) {
    let mut cmd = Command::new(common::bin("execsnoop"));
    cmd.args(["--json", "--metrics-interval", "3600", "--otlp-endpoint"])
        .arg(endpoint)
        .arg("-v")
        .envs(env.iter().copied());
    let t = Traced::start_cmd(cmd);
    let m = marker("otlp-loss");
    for _ in 0..execs {
        run_traced(Command::new("/bin/true").arg(&m));
    }
    t.wait_for(WAIT, |out| out.contains(&m));
    let out = t.stop();
    let records = out.stdout.lines().count() as u64 - 1 + 2;
    (out, records)
}

fn lost(by_cause: &serde_json::Map<String, Value>, key: &str) -> u64 {
    by_cause
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {key} in {by_cause:?}"))
}

bpf_test!(
    fn an_endpoint_down_counts_every_record_as_lost_and_says_so() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (out, records) = export_against(&format!("http://127.0.0.1:{port}"), &[], 3);
        assert!(out.status.success(), "{out:?}");
        let (_, by_cause) = final_losses(&out);
        assert_eq!(lost(&by_cause, "otlp_endpoint_down"), records, "{out:?}");
        assert_eq!(lost(&by_cause, "otlp_queue_full"), 0);
        assert!(
            out.stderr.contains(&format!(
                "execsnoop: {records} records not exported over OTLP: the endpoint could not be reached"
            )),
            "{}",
            out.stderr
        );
    }
);

bpf_test!(
    fn a_refusing_endpoint_counts_every_record_as_rejected() {
        let rx = Receiver::start(400);
        let (out, records) = export_against(&rx.url(), &[], 3);
        assert!(out.status.success(), "{out:?}");
        let (_, by_cause) = final_losses(&out);
        assert_eq!(lost(&by_cause, "otlp_rejected"), records, "{out:?}");
        assert_eq!(lost(&by_cause, "otlp_endpoint_down"), 0);
        assert!(out.stderr.contains("the endpoint refused the request"));
        // The requests themselves were well-formed.
        assert!(!rx.requests().is_empty());
    }
);

bpf_test!(
    fn a_hanging_endpoint_fills_the_queue_without_slowing_tracing() {
        // Connections are queued by the kernel and never answered.
        let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", hang.local_addr().unwrap());
        let timeout = [("OTEL_EXPORTER_OTLP_TIMEOUT", "4000")];
        // More records than the queue holds (2048) while the first batch waits.
        let (out, records) = export_against(&url, &timeout, 2600);
        assert!(out.status.success(), "{out:?}");
        let (_, by_cause) = final_losses(&out);
        let full = lost(&by_cause, "otlp_queue_full");
        let down = lost(&by_cause, "otlp_endpoint_down");
        assert!(full > 0, "{by_cause:?}");
        assert_eq!(
            full + down,
            records,
            "every record sent or counted: {by_cause:?}"
        );
        // Tracing itself lost nothing.
        assert_eq!(lost(&by_cause, common::buffer_full().0), 0, "{by_cause:?}");
        assert!(out.stderr.contains("the queue to the endpoint was full"));
    }
);

bpf_test!(
    #[ignore = "needs root (the tools check privileges first); run with --include-ignored"]
    fn https_and_bad_variables_are_one_line_errors() {
        let (code, _, err) = common::run_tool(
            "execsnoop",
            &[
                "--otlp-endpoint",
                "https://collector:4318",
                "--timeout",
                "1",
            ],
        );
        common::assert_one_line_error(code, &err, &["https is not supported", "http://"]);
        let out = Command::new(common::bin("exitsnoop"))
            .args(["--otlp-endpoint", "http://127.0.0.1:4318", "--timeout", "1"])
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        common::assert_one_line_error(out.status.code().unwrap_or(-1), &err, &["http/protobuf"]);
    }
);
