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

use common::{assert_one_line_error, build_c_program, marker, run_tool, unused_uid, Traced};

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

/// Held by the tests that open hundreds or thousands of descriptors: they run as threads of one
/// process, which shares one open-file limit.
static MANY_FDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

bpf_test!(
    fn uprobe_lat_textfile_has_cumulative_histograms_that_promtool_accepts() {
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
        let series =
            format!("coretrace_lost_events_total{{tool=\"uprobe-lat\",cause=\"{cause}\"}} 0");
        assert!(text.contains(&series), "{series} missing: {text}");
    }
);

bpf_test!(
    fn uprobe_lat_kernel_histograms_per_pid_are_labelled_with_the_pid() {
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
);

bpf_test!(
    fn kmemleak_lite_textfile_has_outstanding_memory_per_stack() {
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
);

/// GET `path` from `addr`: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

bpf_test!(
    fn execsnoop_serves_its_counters_over_http() {
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
);

#[test]
fn a_bad_listen_address_is_a_usage_error() {
    let (code, _, err) = run_tool("execsnoop", &["--metrics-listen", "localhost:http"]);
    assert_one_line_error(code, &err, &["--metrics-listen", "HOST:PORT"]);
}

bpf_test!(
    fn a_port_in_use_and_an_unwritable_directory_are_one_line_errors() {
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
);

bpf_test!(
    fn kmemleak_lite_kernel_stacks_are_named_by_their_caller_not_the_allocator() {
        let _fds = MANY_FDS.lock().unwrap_or_else(|e| e.into_inner());
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
);

/// A tool's thread count and resident memory (kB), from /proc/PID/status.
fn threads_and_rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("Threads:"), field("VmRSS:"))
}

/// Sends `request` on a new connection and reads the answer (the server closes after it);
/// the status line, or what went wrong.
fn exchange(addr: &str, request: &[u8], within: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or("(closed without an answer)")
            .to_string(),
        Err(e) => format!("(no answer within {within:?}: {e})"),
    }
}

/// A well-formed scrape: its body, after asserting it answered 200 within a second.
fn timed_scrape(addr: &str) -> String {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let read = s.read_to_string(&mut response);
    let took = start.elapsed();
    assert!(
        read.is_ok() && response.starts_with("HTTP/1.1 200 "),
        "scrape failed after {took:?}: {read:?} {response}"
    );
    assert!(took < Duration::from_secs(1), "scrape took {took:?}");
    response.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// Raises this process's open-file limit to what `want` descriptors need (up to the hard
/// limit); returns how many hostile connections fit under it.
fn room_for_connections(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which lives on this stack.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max.min(want + 256);
    // SAFETY: setrlimit reads one rlimit from `lim`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    (lim.rlim_cur.saturating_sub(256)).min(want)
}

bpf_test!(
    /// Issue 25: one `POST` with a large Content-Length and no body, requests that are malformed or
    /// too large, and thousands of idle and half-sent connections neither block a scrape nor grow
    /// the tool, and tracing goes on losing nothing.
    fn hostile_clients_never_delay_a_scrape_nor_grow_the_tool() {
        let _fds = MANY_FDS.lock().unwrap_or_else(|e| e.into_inner());
        const HOSTILE: u64 = 3000;
        const EXECS: usize = 60;
        let hostile = room_for_connections(HOSTILE);
        assert!(
            hostile >= 1000,
            "the open-file limit allows only {hostile} connections"
        );
        let uid = unused_uid();
        let t = Traced::start(
            "execsnoop",
            &[
                "--json",
                "-u",
                &uid.to_string(),
                "--metrics-listen",
                "127.0.0.1:0",
                "--metrics-interval",
                "0.2",
            ],
        );
        t.wait_for_stderr(Duration::from_secs(10), |e| e.contains("/metrics"));
        let err = t.stderr_text();
        let addr = err
            .lines()
            .find_map(|l| l.split("http://").nth(1)?.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("no address in: {err}"))
            .to_string();
        timed_scrape(&addr);
        let (threads0, rss0) = threads_and_rss(t.pid());

        // The request of the issue, left open: answered at once, and it blinds nobody.
        let mut post = TcpStream::connect(&addr).unwrap();
        post.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
            .unwrap();
        post.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut answer = String::new();
        post.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        assert!(answer.contains("\r\nAllow: GET, HEAD\r\n"), "{answer}");
        timed_scrape(&addr);

        // Oversized and malformed requests: each answered with its 4xx within a second.
        let second = Duration::from_secs(1);
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(4000));
        let long_head = format!(
            "GET /metrics HTTP/1.1\r\n{}\r\n",
            "X-Pad: aaaaaaaaaaaaaaaa\r\n".repeat(600)
        );
        for (request, status) in [
            (long_line.as_bytes(), "HTTP/1.1 414 "),
            (long_head.as_bytes(), "HTTP/1.1 431 "),
            (b"HELLO\r\n\r\n".as_slice(), "HTTP/1.1 400 "),
            (
                b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
                "HTTP/1.1 400 ",
            ),
            (b"GET /metrics HTTP/9.9\r\n\r\n", "HTTP/1.1 505 "),
            (b"DELETE /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 "),
            (b"GET /other HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
            (b"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 "),
        ] {
            let got = exchange(&addr, request, second);
            assert!(got.starts_with(status), "{status}expected, got {got}");
        }

        // Thousands of connections that send nothing or half a request, held open, while a
        // marker process execs now and then and a scrape is timed every 250 connections.
        let markers: Vec<String> = (0..EXECS).map(|i| marker(&format!("hostile{i}"))).collect();
        let mut held = Vec::new();
        let mut refused = 0;
        let mut worst = (threads0, rss0);
        for i in 0..hostile {
            match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)) {
                Ok(mut s) => {
                    if i % 2 == 1 {
                        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n");
                    }
                    held.push(s);
                }
                Err(_) => refused += 1,
            }
            if i % (hostile / EXECS as u64) == 0 {
                let m = &markers[(i / (hostile / EXECS as u64)) as usize % EXECS];
                let status = Command::new("/bin/true").arg(m).uid(uid).status().unwrap();
                assert!(status.success());
            }
            if i % 250 == 0 {
                timed_scrape(&addr);
                let (threads, rss) = threads_and_rss(t.pid());
                worst = (worst.0.max(threads), worst.1.max(rss));
            }
        }
        let body = timed_scrape(&addr);
        promtool_accepts(&body);
        let (threads, rss) = threads_and_rss(t.pid());
        worst = (worst.0.max(threads), worst.1.max(rss));
        eprintln!(
        "{hostile} connections ({refused} refused): threads {threads0} -> at most {}, RSS {rss0} kB -> at most {} kB",
        worst.0, worst.1
    );
        assert_eq!(worst.0, threads0, "the tool started threads for clients");
        assert!(
            worst.1 < rss0 + 4096,
            "RSS grew from {rss0} to {} kB",
            worst.1
        );
        let series =
            |name: &str| sample(&body, name).unwrap_or_else(|| panic!("no {name}: {body}"));
        let open = series("coretrace_http_connections_open{tool=\"execsnoop\"}");
        assert!(open <= 64.0, "{body}");
        let evicted =
            "coretrace_http_connections_dropped_total{tool=\"execsnoop\",reason=\"over_limit\"}";
        assert!(series(evicted) >= (hostile - 64 - refused) as f64, "{body}");
        assert_eq!(
            series("coretrace_http_responses_total{tool=\"execsnoop\",code=\"405\"}"),
            2.0
        );
        assert_eq!(
            series("coretrace_http_responses_total{tool=\"execsnoop\",code=\"431\"}"),
            1.0
        );
        drop(held);
        drop(post);

        // Tracing lost nothing meanwhile: every marker's exec arrived, and no loss was counted.
        let last = markers.last().unwrap().clone();
        assert!(t.wait_for(Duration::from_secs(10), |out| out.contains(&last)));
        let out = t.stop();
        assert!(out.status.success(), "{out:?}");
        for m in &markers {
            assert_eq!(out.lines_with(m).len(), 1, "{m}: {}", out.stdout);
        }
        let (lost, _) = common::final_losses(&out);
        assert_eq!(lost, 0, "{}", out.stdout);
    }
);
