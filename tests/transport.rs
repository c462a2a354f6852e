//! The transport: every tool delivers real events through the perf buffer when it is forced
//! (CORETRACE_TRANSPORT=perf, the fallback for kernels without a BPF ring buffer), `--check`
//! says which transport a run would take, and a bad choice is a one-line error. (uprobe-lat's
//! and kmemleak-lite's perf-buffer runs are in their own test files, beside their scenarios;
//! exitsnoop's loss test runs on both transports.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, bin, marker, run_tool, run_traced, start_with_transport};

const WAIT: Duration = Duration::from_secs(10);

bpf_test!(
    fn execsnoop_delivers_an_exec_through_the_perf_buffer() {
        let m = marker("perf-exec");
        let t = start_with_transport("execsnoop", &[], "perf");
        run_traced(Command::new("/bin/echo").arg(&m));
        assert!(t.wait_for(WAIT, |o| o.contains(&m)), "{}", t.stdout_text());
        let out = t.stop();
        let rows = out.lines_with(&m);
        assert_eq!(rows.len(), 1, "{out:?}");
        assert!(rows[0].starts_with("echo "), "{out:?}");
    }
);

bpf_test!(
    fn exitsnoop_delivers_an_exit_through_the_perf_buffer() {
        let t = start_with_transport("exitsnoop", &["--json"], "perf");
        let pid = run_traced(Command::new("/bin/sh").args(["-c", "exit 7"]));
        let mine = |o: &str| o.contains(&format!("\"process.pid\":{pid},"));
        assert!(t.wait_for(WAIT, mine), "{}", t.stdout_text());
        let out = t.stop();
        let rec: Vec<_> = out
            .json()
            .into_iter()
            .filter(|r| r["process.pid"] == pid)
            .collect();
        assert_eq!(rec.len(), 1, "{out:?}");
        assert_eq!(rec[0]["process.exit.code"], 7, "{}", rec[0]);
    }
);

bpf_test!(
    fn unlinksnoop_delivers_a_removal_through_the_perf_buffer() {
        let file = std::env::temp_dir().join(marker("perf-rm"));
        std::fs::write(&file, b"x").unwrap();
        let file = file.canonicalize().unwrap();
        let t = start_with_transport("unlinksnoop", &[], "perf");
        run_traced(Command::new("rm").arg(&file));
        let path = file.to_str().unwrap().to_string();
        assert!(
            t.wait_for(WAIT, |o| o.lines().any(|l| l.ends_with(&path))),
            "{}",
            t.stdout_text()
        );
        let out = t.stop();
        assert_eq!(out.lines_with(&path).len(), 1, "{out:?}");
    }
);

/// The line `--check` prints for the transport (the kernel matrix reads its prefix).
fn check_line(tool: &str, env: Option<&str>, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(bin(tool));
    cmd.arg("--check").args(args);
    match env {
        Some(v) => cmd.env("CORETRACE_TRANSPORT", v),
        None => cmd.env_remove("CORETRACE_TRANSPORT"),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("transport: "))
        .unwrap_or_else(|| panic!("no transport line: {stdout}"))
        .to_string();
    (out.status.code().unwrap_or(-1), line)
}

bpf_test!(
    fn check_reports_the_transport_a_run_would_take() {
        for tool in ["execsnoop", "exitsnoop", "unlinksnoop", "kmemleak-lite"] {
            let (code, line) = check_line(tool, Some("perf"), &[]);
            assert_eq!(
                line, "transport: perf buffer (forced by CORETRACE_TRANSPORT=perf)",
                "{tool}"
            );
            assert_eq!(code, 0, "{tool}: {line}");
            // The hidden flag wins over the environment.
            let (code, line) = check_line(tool, Some("perf"), &["--transport", "ringbuf"]);
            assert_eq!(
                line, "transport: ring buffer (forced by --transport)",
                "{tool}"
            );
            assert_eq!(code, 0, "{tool}: {line}");
        }
        // Left to itself, on this kernel (which has ring buffers): the ring buffer.
        let (_, line) = check_line("execsnoop", None, &[]);
        assert!(
            line.starts_with("transport: ring buffer (this kernel has BPF_MAP_TYPE_RINGBUF)"),
            "{line}"
        );
        // And in JSON.
        let out = Command::new(bin("exitsnoop"))
            .args(["--check", "--json"])
            .env("CORETRACE_TRANSPORT", "perf")
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["transport"], "perf buffer", "{report}");
    }
);

#[test]
fn an_unknown_transport_is_a_one_line_error() {
    let out = Command::new(bin("execsnoop"))
        .env("CORETRACE_TRANSPORT", "shm")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_one_line_error(
        out.status.code().unwrap_or(-1),
        &stderr,
        &[
            "CORETRACE_TRANSPORT='shm' is not a transport",
            "perf, ringbuf or auto",
        ],
    );
    let (code, _, stderr) = run_tool("exitsnoop", &["--transport", "shm"]);
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(code, &stderr, &["--transport", "shm"]);
}
