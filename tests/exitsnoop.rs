//! exitsnoop as a user runs it: processes and threads the test starts and ends.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, marker, require_bpf, run_tool, Finished, Traced};

const WAIT: Duration = Duration::from_secs(10);

/// Runs `sh -c script` and returns its pid once it has ended.
fn sh(script: &str) -> u32 {
    common::run_traced(Command::new("/bin/sh").args(["-c", script]))
}

/// The table row of `pid`, split into cells.
fn row_of(out: &Finished, pid: u32) -> Option<Vec<String>> {
    out.stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cols| cols.get(1).map(String::as_str) == Some(&pid.to_string()))
}

fn stop_after_pid(t: Traced, pid: u32) -> Finished {
    let needle = format!(" {pid} ");
    t.wait_for(WAIT, |out| out.contains(&needle));
    t.stop()
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn exit_codes_signals_and_age() {
    require_bpf();
    let t = Traced::start("exitsnoop", &[]);
    let seven = sh("sleep 0.3; exit 7");
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let killed = sleeper.id();
    std::thread::sleep(Duration::from_millis(100));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let out = stop_after_pid(t, killed);
    assert!(out.stdout.starts_with("PCOMM"), "{}", out.stdout);
    let row = row_of(&out, seven).unwrap_or_else(|| panic!("no row for {seven}: {out:?}"));
    assert_eq!(row[0], "sh");
    assert_eq!(row[2], std::process::id().to_string(), "PPID is the test");
    assert_eq!(row[3], seven.to_string(), "TID of a process is its PID");
    let age: f64 = row[4].parse().unwrap();
    assert!((0.3..2.0).contains(&age), "AGE(s) {age}");
    assert_eq!(&row[5..], ["code", "7"]);
    let row = row_of(&out, killed).unwrap();
    assert_eq!(row[0], "sleep");
    assert_eq!(&row[5..], ["signal", "9", "(SIGKILL)"]);
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn failed_only() {
    require_bpf();
    let t = Traced::start("exitsnoop", &["-x"]);
    let ok = sh("exit 0");
    let bad = sh("exit 3");
    let out = stop_after_pid(t, bad);
    assert!(row_of(&out, ok).is_none(), "{out:?}");
    assert_eq!(&row_of(&out, bad).unwrap()[5..], ["code", "3"]);
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn pid_filter_and_min_duration() {
    require_bpf();
    let mut a = Command::new("/bin/sleep").arg("0.5").spawn().unwrap();
    let mut b = Command::new("/bin/sleep").arg("0.5").spawn().unwrap();
    let t = Traced::start("exitsnoop", &["-p", &a.id().to_string()]);
    a.wait().unwrap();
    b.wait().unwrap();
    let out = stop_after_pid(t, a.id());
    assert!(row_of(&out, a.id()).is_some(), "{out:?}");
    assert!(row_of(&out, b.id()).is_none(), "{out:?}");

    let t = Traced::start("exitsnoop", &["-d", "200"]);
    let short = sh("exit 0");
    let long = sh("sleep 0.3");
    let out = stop_after_pid(t, long);
    assert!(row_of(&out, long).is_some(), "{out:?}");
    assert!(row_of(&out, short).is_none(), "{out:?}");
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn thread_exits_only_with_threaded() {
    require_bpf();
    let me = std::process::id().to_string();
    for (args, expect) in [
        (vec!["-p", me.as_str()], false),
        (vec!["-T", "-p", me.as_str()], true),
    ] {
        let t = Traced::start("exitsnoop", &args);
        let tid = std::thread::spawn(|| unsafe { libc::gettid() } as u32)
            .join()
            .unwrap();
        // Give the exit time to arrive before deciding it did not.
        let needle = format!(" {tid} ");
        t.wait_for(Duration::from_secs(if expect { 10 } else { 1 }), |o| {
            o.contains(&needle)
        });
        let out = t.stop();
        let row = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some(tid.to_string().as_str()));
        assert_eq!(row.is_some(), expect, "args {args:?}: {out:?}");
        if let Some(row) = row {
            assert_eq!(row.split_whitespace().nth(1), Some(me.as_str()), "{row}");
        }
    }
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn json_and_timestamps() {
    require_bpf();
    let t = Traced::start("exitsnoop", &["--json"]);
    let pid = sh("exit 5");
    let out = stop_after_pid_json(t, pid);
    let rec = out
        .json()
        .into_iter()
        .find(|r| r["pid"] == pid)
        .unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(rec["exit_code"], 5);
    assert_eq!(rec["signal"], serde_json::Value::Null);
    assert_eq!(rec["comm"], "sh");
    assert_eq!(rec["tid"], pid);
    assert!(rec["age_s"].as_f64().unwrap() >= 0.0);

    let m = marker("ts");
    let t = Traced::start("exitsnoop", &["-t"]);
    let pid = sh(&format!("exit 0 # {m}"));
    let out = stop_after_pid(t, pid);
    assert!(out.stdout.starts_with("TIME     PCOMM"), "{}", out.stdout);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(&format!(" {pid} ")))
        .unwrap();
    let b = line.as_bytes();
    assert!(b[2] == b':' && b[5] == b':', "{line}");
}

fn stop_after_pid_json(t: Traced, pid: u32) -> Finished {
    let needle = format!("\"pid\":{pid},");
    t.wait_for(WAIT, |out| out.contains(&needle));
    t.stop()
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    let (code, _, err) = run_tool("exitsnoop", &["-p", "2147483646"]);
    assert_one_line_error(code, &err, &["no process with pid 2147483646"]);
    let (code, _, err) = run_tool("exitsnoop", &["-p", "abc"]);
    assert_one_line_error(code, &err, &["not a process id"]);
    let (code, _, err) = run_tool("exitsnoop", &["--timeout=0"]);
    assert_one_line_error(code, &err, &["--timeout"]);
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn a_process_ends_with_its_last_thread_not_its_main_thread() {
    require_bpf();
    let prog = common::build_c_program("leader_exits_first", &["-O1", "-pthread"]);
    let t = Traced::start("exitsnoop", &[]);
    let pid = common::run_traced(&mut Command::new(&prog));
    let out = stop_after_pid(t, pid);
    let rows: Vec<_> = out
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(&pid.to_string()))
        .collect();
    assert_eq!(rows.len(), 1, "one row for the process: {out:?}");
    let row: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(&row[5..], ["code", "7"], "{}", rows[0]);
    let age: f64 = row[4].parse().unwrap();
    assert!(
        age >= 0.3,
        "the process lived until its last thread ended: {}",
        rows[0]
    );
}
