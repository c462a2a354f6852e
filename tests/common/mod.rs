//! The integration-test harness: runs a built tool the way a user would, waits until it has
//! attached, collects what it prints, and stops it with a signal.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Asserts that this test can load BPF here (root and kernel BTF), or fails it with the reason.
///
/// Tests that load BPF are `#[ignore]`d, so a plain `cargo test` (say, not as root) lists them
/// as ignored instead of passing them untested; `tools/test.sh` runs them with
/// `--include-ignored`, and then a machine that cannot load BPF is a failure, never a skip.
/// CORETRACE_REQUIRE_BPF=1 (CI) states that intent; the check is the same either way.
/// [`bpf_test!`] writes both for a test.
pub fn require_bpf() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    if root && btf {
        return;
    }
    let why = if !root { "not root" } else { "no kernel BTF" };
    let ci = std::env::var("CORETRACE_REQUIRE_BPF").as_deref() == Ok("1");
    panic!(
        "this test loads BPF and cannot here ({why}){}: run it as root on a kernel with BTF, or leave out --include-ignored",
        if ci { " and CORETRACE_REQUIRE_BPF=1" } else { "" }
    );
}

/// A test that loads BPF (or needs root as loading does): `#[test]`, `#[ignore]`d with the
/// reason, and [`require_bpf`] first, so it is listed as ignored by a plain `cargo test`, runs
/// with `--include-ignored`, and there fails, never skips, where BPF cannot load. Written with
/// parentheses, so that rustfmt formats the test:
///
/// ```ignore
/// bpf_test!(
///     /// What it shows.
///     fn name() { ... }
/// );
/// ```
///
/// A test with a reason of its own gives it first: `bpf_test!(#[ignore = "..."] fn ...);`.
#[macro_export]
macro_rules! bpf_test {
    (#[ignore = $why:literal] $(#[$attr:meta])* fn $name:ident() $body:block) => {
        $(#[$attr])*
        #[test]
        #[ignore = $why]
        fn $name() {
            $crate::common::require_bpf();
            $body
        }
    };
    ($(#[$attr:meta])* fn $name:ident() $body:block) => {
        $crate::bpf_test!(
            #[ignore = "loads BPF: needs root; run with --include-ignored (tools/test.sh does)"]
            $(#[$attr])* fn $name() $body
        );
    };
}

/// A unique marker for this test run, for argv and file names.
pub fn marker(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("ctm-{tag}-{}-{nanos:x}", std::process::id())
}

/// A running tool whose output is being collected.
pub struct Traced {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// What a tool printed, and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
}

impl Finished {
    /// stdout lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.contains(needle)).collect()
    }

    /// stdout lines parsed as JSON (every line must be JSON).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// Every tool's name, from the registry through the hidden `coretrace --list-tools` (as the
/// scripts read it), for tests that loop over the tools.
pub fn tools() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_coretrace"))
        .arg("--list-tools")
        .output()
        .unwrap();
    assert!(out.status.success(), "coretrace --list-tools: {out:?}");
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "coretrace --list-tools printed nothing");
    names
}

/// Path of a tool as users run it: a link named after the tool to the multicall `coretrace`
/// binary, made next to it on first use (as the package installs them). The kernel-matrix
/// guests provide the same links.
pub fn bin(name: &str) -> String {
    let coretrace = std::path::Path::new(env!("CARGO_BIN_EXE_coretrace"));
    let link = coretrace.with_file_name(name);
    if std::fs::read_link(&link).ok().as_deref() != Some(std::path::Path::new("coretrace")) {
        // A unique temporary name renamed into place: tests running in parallel may race here.
        let tmp = coretrace.with_file_name(format!(".{name}.{}", marker("link")));
        std::os::unix::fs::symlink("coretrace", &tmp)
            .unwrap_or_else(|e| panic!("cannot link {} to coretrace: {e}", tmp.display()));
        std::fs::rename(&tmp, &link)
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", link.display()));
    }
    link.to_string_lossy().into_owned()
}

impl Traced {
    /// Starts `tool` with `args` plus `-v`, and waits until it says it has attached.
    pub fn start(tool: &str, args: &[&str]) -> Traced {
        let mut cmd = Command::new(bin(tool));
        cmd.args(args).arg("-v");
        Self::start_cmd(cmd)
    }

    /// Starts a prepared command (which must include `-v`) and waits for `attached`.
    pub fn start_cmd(mut cmd: Command) -> Traced {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        let mut traced = Traced {
            child,
            stdout,
            stderr,
            readers,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let err = traced.stderr_text();
            if err.lines().any(|l| l.contains(": attached")) {
                break;
            }
            if let Ok(Some(status)) = traced.child.try_wait() {
                let out = traced.finish_after_exit(status);
                panic!("{cmd:?} exited before attaching: {out:?}");
            }
            if Instant::now() > deadline {
                let out = traced.stop();
                panic!("{cmd:?} did not attach within 30 s: {out:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
        traced
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stdout satisfies `pred` (true) or `timeout` passes (false).
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        self.wait_until(timeout, || pred(&self.stdout_text()))
    }

    /// Waits until stderr satisfies `pred` (true) or `timeout` passes (false): for what a tool
    /// says about itself after attaching (a metrics address, a warning).
    pub fn wait_for_stderr(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        self.wait_until(timeout, || pred(&self.stderr_text()))
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and collects everything the tool printed until it exits.
    pub fn stop_with(mut self, signal: i32) -> Finished {
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                let out = self.finish_after_exit(status);
                panic!("tool did not stop within 20 s of signal {signal}: {out:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        self.finish_after_exit(status)
    }

    /// Ctrl-C.
    pub fn stop(self) -> Finished {
        self.stop_with(libc::SIGINT)
    }

    /// Waits for the tool to end by itself (e.g. --timeout).
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return self.finish_after_exit(status);
            }
            if Instant::now() > deadline {
                return self.stop_with(libc::SIGKILL);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish_after_exit(&mut self, status: ExitStatus) -> Finished {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            stdout: self.stdout_text(),
            stderr: self.stderr_text(),
            status,
        }
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Starts one of tests/programs, which prints `ready` once it is set up and then waits to be
/// told to go (a line on stdin, a signal, or a time): returns it after that line, so a tool
/// started next finds it running. Its stdout is piped; pipe its stdin in `cmd` if it reads it.
pub fn spawn_ready(cmd: &mut Command) -> Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut ready = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("ready"), "{cmd:?} said {ready:?}");
    child
}

/// Runs a command the test traces to its end, quietly; returns its pid. No stdin: `rm` asks
/// before removing a file the user cannot write when stdin is a terminal (as on a VM console).
pub fn run_traced(cmd: &mut Command) -> u32 {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Runs a tool to completion (for errors and --check): (exit code, stdout, stderr).
pub fn run_tool(tool: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin(tool))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that stderr is one line naming the problem (contains each of `words`), not a panic.
pub fn assert_one_line_error(code: i32, stderr: &str, words: &[&str]) {
    assert_ne!(code, 0, "expected a failure exit, stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line of error, got: {stderr}");
    for w in words {
        assert!(lines[0].contains(w), "error line lacks {w:?}: {}", lines[0]);
    }
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
}

/// Reads a line-oriented stream to the end (helper for pipes in tests).
pub fn read_lines(r: impl Read) -> Vec<String> {
    BufReader::new(r).lines().map_while(Result::ok).collect()
}

/// Compiles tests/programs/NAME.c with `flags` into a fresh temporary directory; returns the
/// executable. (In the kernel-matrix guests, `cc` hands over the host's build.)
pub fn build_c_program(name: &str, flags: &[&str]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(marker(name));
    std::fs::create_dir_all(&dir).unwrap();
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/programs/{name}.c"));
    let exe = dir.join(name);
    let status = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc must be installed to build the test programs");
    assert!(status.success(), "building {}", src.display());
    exe
}

/// A user id no process on this machine runs as, for tests that filter by UID (`-u`) so that
/// only their own processes count.
pub fn unused_uid() -> u32 {
    // Tests of one binary run in parallel: each call starts from a different number.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let offset = NEXT.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
    let mut uid = 40_000 + (std::process::id() % 200) * 100 + offset;
    loop {
        let used = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path().join("status")).is_ok_and(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Uid:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        == Some(uid.to_string().as_str())
                })
            });
        if !used {
            return uid;
        }
        uid += 1;
    }
}

/// The loss record a `--json` run ends with: (total, the count of each cause by name).
pub fn final_losses(out: &Finished) -> (u64, serde_json::Map<String, serde_json::Value>) {
    let last = out
        .json()
        .into_iter()
        .rev()
        .find(|r| r.get("lost_by_cause").is_some())
        .unwrap_or_else(|| panic!("no loss record at the end: {out:?}"));
    (
        last["lost_events"].as_u64().unwrap(),
        last["lost_by_cause"].as_object().unwrap().clone(),
    )
}

/// kmemleak-lite's last report of a `--json` run (`"final": true`), among the JSON lines of its
/// stdout (the traced command may print there too).
pub fn final_report(out: &Finished) -> serde_json::Value {
    out.stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["final"] == serde_json::Value::Bool(true))
        .unwrap_or_else(|| panic!("no final report: {}", out.stdout))
}

/// The loss cause of a full event buffer under the transport the environment forces
/// (CORETRACE_TRANSPORT=perf, as the kernel matrix sets it: the perf buffer; otherwise the ring
/// buffer): its key in the JSON loss record, and its words on stderr.
pub fn buffer_full() -> (&'static str, &'static str) {
    buffer_full_for(&std::env::var("CORETRACE_TRANSPORT").unwrap_or_default())
}

/// [`buffer_full`] for the transport `CORETRACE_TRANSPORT=transport` forces.
pub fn buffer_full_for(transport: &str) -> (&'static str, &'static str) {
    match transport {
        "perf" => (
            "perfbuf_full",
            "events lost: the perf buffer was full (raise --ringbuf-size",
        ),
        _ => (
            "ringbuf_full",
            "events lost: the ring buffer was full (raise --ringbuf-size",
        ),
    }
}

/// Starts `tool` like [`Traced::start`] with CORETRACE_TRANSPORT=`transport` (perf or
/// ringbuf), and checks that `-v` says it took that transport.
pub fn start_with_transport(tool: &str, args: &[&str], transport: &str) -> Traced {
    let mut cmd = Command::new(bin(tool));
    cmd.env("CORETRACE_TRANSPORT", transport)
        .args(args)
        .arg("-v");
    let t = Traced::start_cmd(cmd);
    let name = match transport {
        "perf" => "perf buffer",
        _ => "ring buffer",
    };
    let said = format!(": transport: {name} (forced by CORETRACE_TRANSPORT={transport})");
    assert!(t.stderr_text().contains(&said), "{}", t.stderr_text());
    t
}
