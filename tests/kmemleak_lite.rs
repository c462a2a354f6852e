//! kmemleak-lite as a user runs it: against a test program that leaks known amounts from named
//! functions (user mode, -c and -p), against pipes the test holds open (kernel mode), and with
//! bad input.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_one_line_error, marker, require_bpf, run_tool, Traced};
use serde_json::Value;

const TOOL: &str = "kmemleak-lite";

/// Compiles tests/programs/NAME.c the way the brief says stacks stay walkable.
fn build_program(name: &str, extra: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(marker("kml"));
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/programs/{name}.c"));
    let exe = dir.join(name);
    let status = Command::new("cc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-fno-inline"])
        .args(extra)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc must be installed to build the test programs");
    assert!(status.success(), "building {}", src.display());
    exe
}

/// The stacks of a JSON report whose frames name `function`: (bytes, allocations) each.
fn stacks_naming(report: &Value, function: &str) -> Vec<(u64, u64)> {
    report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["symbol"].as_str() == Some(function))
        })
        .map(|s| {
            (
                s["bytes"].as_u64().unwrap(),
                s["allocations"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn command_mode_names_the_leaking_functions_with_exact_counts() {
    require_bpf();
    let leaky = build_program("leaky", &[]);
    let command = format!("{} run 1.2", leaky.display());
    let traced = Traced::start(TOOL, &["-c", &command, "--json", "-i", "30"]);
    let out = traced.wait(Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.contains("ended: code 0"), "{}", out.stderr);
    // The command shares the tool's stdout (it prints "done"): keep the JSON lines.
    let reports: Vec<Value> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = reports
        .iter()
        .find(|r| r["final"] == Value::Bool(true))
        .unwrap_or_else(|| panic!("no final report: {}", out.stdout));
    assert_eq!(
        stacks_naming(last, "leak_big"),
        vec![(8 * 65536, 8)],
        "{}",
        out.stdout
    );
    assert_eq!(
        stacks_naming(last, "leak_small"),
        vec![(300, 3)],
        "{}",
        out.stdout
    );
    assert!(stacks_naming(last, "churn").is_empty(), "{}", out.stdout);
    // file:line from the test program's DWARF.
    assert!(
        out.stdout.contains("\"file\":\"leaky.c\""),
        "{}",
        out.stdout
    );
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn pid_mode_reports_a_running_process_in_memleak_format() {
    require_bpf();
    let leaky = build_program("leaky", &[]);
    let mut target = Command::new(&leaky)
        .args(["wait", "1.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(target.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.starts_with("ready"), "{ready}");
    let pid = target.id().to_string();
    let traced = Traced::start(TOOL, &["-p", &pid, "-i", "30", "-T", "5"]);
    unsafe { libc::kill(target.id() as i32, libc::SIGUSR1) };
    assert!(target.wait().unwrap().success());
    // The tool notices the process is gone, prints its last report and exits by itself.
    let out = traced.wait(Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains(&format!("process {pid} ended")),
        "{}",
        out.stderr
    );
    let text = &out.stdout;
    let after = |header: &str| -> String {
        let i = text
            .find(header)
            .unwrap_or_else(|| panic!("no {header:?} in:\n{text}"));
        text[i..].lines().nth(1).unwrap_or("").to_string()
    };
    assert!(
        after("524288 bytes in 8 allocations from stack").contains("leak_big+0x"),
        "{text}"
    );
    assert!(
        after("300 bytes in 3 allocations from stack").contains("leak_small+0x"),
        "{text}"
    );
    assert!(text.contains("Top "), "{text}");
    assert!(!text.contains("churn"), "{text}");
}

/// Sum of allocations over the stacks through the pipe allocation path, in the last report.
fn pipe_allocations(stdout: &str) -> Option<u64> {
    let last = stdout.lines().rev().find(|l| l.starts_with('{'))?;
    let report: Value = serde_json::from_str(last).ok()?;
    Some(
        stacks_naming(&report, "alloc_pipe_info")
            .iter()
            .map(|s| s.1)
            .sum(),
    )
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn kernel_mode_sees_pipes_held_and_then_released() {
    require_bpf();
    const PIPES: u64 = 300;
    let traced = Traced::start(TOOL, &["--json", "-i", "0.5", "-o", "100", "-T", "500"]);
    let mut fds = Vec::new();
    for _ in 0..PIPES {
        let mut p = [0i32; 2];
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        fds.extend(p);
    }
    let held = traced.wait_for(Duration::from_secs(20), |out| {
        pipe_allocations(out).is_some_and(|n| n >= PIPES)
    });
    let seen_held = pipe_allocations(&traced.stdout_text());
    for fd in fds {
        unsafe { libc::close(fd) };
    }
    let released = traced.wait_for(Duration::from_secs(20), |out| {
        // A report taken after the close (the held count was seen before it).
        held && pipe_allocations(out).is_some_and(|n| n < PIPES / 10)
    });
    let out = traced.stop();
    assert!(
        held,
        "never saw {PIPES} allocations through alloc_pipe_info (last: {seen_held:?}): {}",
        &out.stdout[out.stdout.len().saturating_sub(4000)..]
    );
    assert!(
        released,
        "pipe allocations still outstanding after close: {:?}",
        pipe_allocations(&out.stdout)
    );
    assert!(out.status.success(), "{:?}", out.stderr);
}

#[test]
fn bad_targets_get_one_line_and_a_failure() {
    let (code, _, err) = run_tool(TOOL, &["-p", "2147483646"]);
    assert_one_line_error(code, &err, &["no process", "2147483646"]);

    let (code, _, err) = run_tool(TOOL, &["-c", "no-such-command-kml --flag"]);
    assert_one_line_error(code, &err, &["cannot start", "no-such-command-kml"]);
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn static_binary_without_an_allocator_is_refused_in_one_line() {
    require_bpf();
    // A static binary with no libc and no malloc of its own.
    let nolibc = build_program("nolibc", &["-static", "-nostdlib"]);
    let (code, _, err) = run_tool(TOOL, &["-c", nolibc.to_str().unwrap()]);
    assert_one_line_error(code, &err, &["statically linked", "no allocator"]);

    let mut running = Command::new(&nolibc).spawn().unwrap();
    let pid = running.id().to_string();
    let (code, _, err) = run_tool(TOOL, &["-p", &pid]);
    let _ = running.kill();
    let _ = running.wait();
    assert_one_line_error(code, &err, &["maps no libc", "no allocator"]);
}
