//! Prometheus export as a user sets it up: `--metrics-file` for node_exporter's textfile
//! collector (checked with Prometheus' own `promtool check metrics`), `--metrics-listen`
//! scraped over HTTP while the tool runs, and the errors for a bad address, a port in use and
//! a directory that cannot be written.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_one_line_error, build_c_program, marker, require_bpf, run_tool, unused_uid, Traced,
};

/// `promtool check metrics` must accept `text` (lint problems included).
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package prometheus; tools/setup-debian.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the one sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(marker(tag));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Only the metrics file is left in `dir`: the temporary file was renamed over it.
fn only_file(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["coretrace.prom"], "{names:?}");
    std::fs::read_to_string(dir.join("coretrace.prom")).unwrap()
}

/// Runs uprobe_target's scenario under `uprobe-lat --metrics-file ... ARGS TARGET:work_sleep`;
/// returns the file (checked by promtool), the labels of work_sleep's series without the
/// closing brace, and the target's pid.
fn uprobe_lat_metrics(args: &[&str]) -> (String, String, u32) {
    let exe = build_c_program("uprobe_target", &["-O1", "-g", "-fno-inline", "-pthread"]);
    let dir = temp_dir("metrics-uprobe");
    let file = dir.join("coretrace.prom");
    let mut target = common::spawn_ready(Command::new(&exe).arg("run").stdin(Stdio::piped()));
    let func = format!("{}:work_sleep", exe.display());
    let mut all = vec!["--metrics-file", file.to_str().unwrap(), &func];
    all.extend_from_slice(args);
    let t = Traced::start("uprobe-lat", &all);
    writeln!(target.stdin.as_mut().unwrap(), "go").unwrap();
    target.wait().unwrap();
    let out = t.stop();
    assert!(out.status.success(), "{out:?}");
    let text = only_file(&dir);
    promtool_accepts(&text);
    let _ = std::fs::remove_dir_all(&dir);
    let labels = format!("{{binary=\"{}\",function=\"work_sleep\"", exe.display());
    (text, labels, target.id())
}

const LATENCY: &str = "coretrace_uprobe_lat_duration_seconds";

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn uprobe_lat_textfile_has_cumulative_histograms_that_promtool_accepts() {
    require_bpf();
    let (text, labels, _) = uprobe_lat_metrics(&[]);
    let name = LATENCY;
    // uprobe_target calls work_sleep 20 times; each sleeps at least 5 ms.
    assert_eq!(
        sample(&text, &format!("{name}_count{labels}}}")),
        Some(20.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("{name}_bucket{labels},le=\"+Inf\"}}")),
        Some(20.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("{name}_bucket{labels},le=\"0.004194304\"}}")
        ),
        Some(0.0),
        "no call can be under 4.19 ms: {text}"
    );
    assert!(
        sample(&text, &format!("{name}_sum{labels}}}")).unwrap() >= 0.1,
        "{text}"
    );
    assert_eq!(
        sample(&text, "coretrace_events_total{tool=\"uprobe-lat\"}"),
        Some(20.0),
        "{text}"
    );
    // The buffer's cause is named after the transport the environment forces.
    let (cause, _) = common::buffer_full();
    let series = format!("coretrace_lost_events_total{{tool=\"uprobe-lat\",cause=\"{cause}\"}} 0");
    assert!(text.contains(&series), "{series} missing: {text}");
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn uprobe_lat_kernel_histograms_per_pid_are_labelled_with_the_pid() {
    require_bpf();
    let (text, labels, pid) = uprobe_lat_metrics(&["--per-pid", "--kernel-hist"]);
    let labels = format!("{labels},pid=\"{pid}\"");
    assert_eq!(
        sample(&text, &format!("{LATENCY}_count{labels}}}")),
        Some(20.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("{LATENCY}_bucket{labels},le=\"0.004194304\"}}")
        ),
        Some(0.0),
        "{text}"
    );
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn kmemleak_lite_textfile_has_outstanding_memory_per_stack() {
    require_bpf();
    let leaky = build_c_program(
        "leaky",
        &["-O0", "-g", "-fno-omit-frame-pointer", "-fno-inline"],
    );
    let dir = temp_dir("metrics-kml");
    let file = dir.join("coretrace.prom");
    let command = format!("{} run 1.2", leaky.display());
    let t = Traced::start(
        "kmemleak-lite",
        &["-c", &command, "--metrics-file", file.to_str().unwrap()],
    );
    let out = t.wait(Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    let text = only_file(&dir);
    promtool_accepts(&text);
    // leaky leaks 8 x 64 KiB through leak_big and 3 x 100 bytes through leak_small.
    let bytes: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("coretrace_kmemleak_outstanding_bytes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(bytes.contains(&524288.0), "{text}");
    // Labelled with the function that called the allocator.
    assert!(
        text.lines()
            .any(|l| l.starts_with("coretrace_kmemleak_outstanding_bytes{")
                && l.contains(",top_frame=\"leak_big\"")
                && l.ends_with("} 524288")),
        "{text}"
    );
    assert!(bytes.contains(&300.0), "{text}");
    let allocations: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("coretrace_kmemleak_outstanding_allocations{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(allocations.contains(&8.0), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// GET `path` from `addr`: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn execsnoop_serves_its_counters_over_http() {
    require_bpf();
    let uid = unused_uid();
    let t = Traced::start(
        "execsnoop",
        &[
            "-u",
            &uid.to_string(),
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-interval",
            "0.2",
        ],
    );
    // The endpoint is announced just after the attach line.
    t.wait_for_stderr(Duration::from_secs(10), |e| e.contains("/metrics"));
    let err = t.stderr_text();
    let addr = err
        .lines()
        .find_map(|l| l.split("http://").nth(1)?.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address in: {err}"))
        .to_string();
    // Three execs by a user nobody else is: the kernel filter lets only these through.
    for _ in 0..3 {
        let status = Command::new("/bin/true").uid(uid).status().unwrap();
        assert!(status.success());
    }
    let series = "coretrace_events_total{tool=\"execsnoop\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = http_get(&addr, "/metrics");
        assert!(status.contains(" 200"), "{status}");
        if sample(&body, series) == Some(3.0) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sample(&body, series), Some(3.0), "{body}");
    promtool_accepts(&body);
    assert!(http_get(&addr, "/other").0.contains(" 404"));
    let out = t.stop();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_bad_listen_address_is_a_usage_error() {
    let (code, _, err) = run_tool("execsnoop", &["--metrics-listen", "localhost:http"]);
    assert_one_line_error(code, &err, &["--metrics-listen", "HOST:PORT"]);
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn a_port_in_use_and_an_unwritable_directory_are_one_line_errors() {
    require_bpf();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let (code, _, err) = run_tool("exitsnoop", &["--metrics-listen", &addr, "--timeout", "5"]);
    assert_one_line_error(code, &err, &["--metrics-listen", &addr, "another"]);
    // Refused before anything is loaded (with -v, libbpf's log would show a load).
    let refused_before_load = |tool: &str, args: &[&str]| {
        let (code, _, err) = run_tool(tool, args);
        assert_ne!(code, 0, "{tool}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains("--metrics-listen") && last.contains(&addr),
            "{tool}: {err}"
        );
        assert!(
            !err.contains("loading object"),
            "{tool} loaded first: {err}"
        );
    };
    refused_before_load(
        "exitsnoop",
        &["--metrics-listen", &addr, "-v", "--timeout", "5"],
    );
    // Told before anything starts: kmemleak-lite's -c command never runs.
    let touched = std::env::temp_dir().join(marker("port-in-use"));
    let command = format!("touch {}", touched.display());
    let (code, _, err) = run_tool(
        "kmemleak-lite",
        &["--metrics-listen", &addr, "-c", &command],
    );
    assert_one_line_error(code, &err, &["--metrics-listen", &addr, "another"]);
    assert!(
        !touched.exists(),
        "the command ran before the port was refused"
    );
    refused_before_load(
        "uprobe-lat",
        &["--metrics-listen", &addr, "-v", "-d", "1", "libc:malloc"],
    );
    refused_before_load(
        "kmemleak-lite",
        &["--metrics-listen", &addr, "-v", "-T", "1"],
    );

    let file = format!("/nonexistent-{}/coretrace.prom", marker("dir"));
    let (code, _, err) = run_tool("exitsnoop", &["--metrics-file", &file, "--timeout", "5"]);
    assert_one_line_error(code, &err, &["--metrics-file", &file, "writable"]);
}

#[test]
#[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
fn kmemleak_lite_kernel_stacks_are_named_by_their_caller_not_the_allocator() {
    require_bpf();
    const PIPES: u64 = 300;
    let dir = temp_dir("metrics-kml-kernel");
    let file = dir.join("coretrace.prom");
    let t = Traced::start(
        "kmemleak-lite",
        &[
            "-i",
            "0.5",
            "-o",
            "100",
            "-T",
            "500",
            "--metrics-interval",
            "0.5",
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    let mut fds = Vec::new();
    for _ in 0..PIPES {
        let mut p = [0i32; 2];
        // SAFETY: pipe writes two fds into a 2-element array.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        fds.extend(p);
    }
    // The pipe buffers, allocated in alloc_pipe_info through kmalloc and friends.
    let held = |text: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("coretrace_kmemleak_outstanding_allocations{")
                    && l.contains(",top_frame=\"alloc_pipe_info\"}")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&file).unwrap_or_default();
        if held(&text) >= PIPES as f64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for fd in fds {
        // SAFETY: closes an fd this test opened, once.
        unsafe { libc::close(fd) };
    }
    let out = t.stop();
    assert!(out.status.success(), "{out:?}");
    assert!(held(&text) >= PIPES as f64, "{text}");
    promtool_accepts(&text);
    assert!(
        !text.contains("top_frame=\"kmem_cache_alloc"),
        "an allocator named as the caller: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
