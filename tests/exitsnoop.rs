//! exitsnoop as a user runs it: processes and threads the test starts and ends.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, marker, run_tool, Finished, Traced};

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

bpf_test!(
    fn exit_codes_signals_and_age() {
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
);

bpf_test!(
    fn failed_only() {
        let t = Traced::start("exitsnoop", &["-x"]);
        let ok = sh("exit 0");
        let bad = sh("exit 3");
        let out = stop_after_pid(t, bad);
        assert!(row_of(&out, ok).is_none(), "{out:?}");
        assert_eq!(&row_of(&out, bad).unwrap()[5..], ["code", "3"]);
    }
);

bpf_test!(
    fn pid_filter_and_min_duration() {
        // Two processes that live until the test closes their stdin: both end after the tool has
        // attached, however long attaching takes.
        let waiter = || {
            Command::new("/bin/cat")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let (mut a, mut b) = (waiter(), waiter());
        let t = Traced::start("exitsnoop", &["-p", &a.id().to_string()]);
        drop(a.stdin.take());
        drop(b.stdin.take());
        a.wait().unwrap();
        b.wait().unwrap();
        let out = stop_after_pid(t, a.id());
        assert!(row_of(&out, a.id()).is_some(), "{out:?}");
        assert!(row_of(&out, b.id()).is_none(), "{out:?}");

        // Room for a slow machine: `sh -c 'exit 0'` takes over 100 ms under QEMU's emulation.
        let t = Traced::start("exitsnoop", &["-d", "400"]);
        let short = sh("exit 0");
        let long = sh("sleep 0.6");
        let out = stop_after_pid(t, long);
        assert!(row_of(&out, long).is_some(), "{out:?}");
        assert!(row_of(&out, short).is_none(), "{out:?}");
    }
);

bpf_test!(
    fn thread_exits_only_with_threaded() {
        let me = std::process::id().to_string();
        for (args, expect) in [
            (vec!["-p", me.as_str()], false),
            (vec!["-T", "-p", me.as_str()], true),
        ] {
            let t = Traced::start("exitsnoop", &args);
            // SAFETY: gettid has no preconditions.
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
);

bpf_test!(
    fn json_and_timestamps() {
        let t = Traced::start("exitsnoop", &["--json"]);
        let pid = sh("exit 5");
        let out = stop_after_pid_json(t, pid);
        let rec = out
            .json()
            .into_iter()
            .find(|r| r["process.pid"] == pid)
            .unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(rec["process.exit.code"], 5);
        assert_eq!(rec["signal"], serde_json::Value::Null);
        assert_eq!(rec["process.executable.name"], "sh");
        assert_eq!(rec["thread.id"], pid);
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
);

fn stop_after_pid_json(t: Traced, pid: u32) -> Finished {
    let needle = format!("\"process.pid\":{pid},");
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

bpf_test!(
    fn a_process_ends_with_its_last_thread_not_its_main_thread() {
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
);

/// Where cgroup v2 is mounted here, from /proc/self/mounts (never assumed).
fn cgroup2_root() -> std::path::PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"cgroup2"))
        .map(|f| std::path::PathBuf::from(f[1]))
        .expect("this test needs a cgroup v2 mount")
}

/// A fresh cgroup v2 directory, removed when dropped (once its processes have ended).
struct Cgroup(std::path::PathBuf);

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let dir = cgroup2_root().join(marker(tag));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Cgroup(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Runs `sh -c script` inside this cgroup (it moves itself in before exec); returns its pid
    /// once it has ended.
    fn sh(&self, script: &str) -> u32 {
        use std::os::unix::process::CommandExt;
        let procs = CString::new(format!("{}/cgroup.procs", self.path())).unwrap();
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
        common::run_traced(&mut cmd)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // An emptied cgroup can stay busy for a moment after its last process is reaped.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

use std::ffi::CString;

bpf_test!(
    fn cgroup_filter_traces_exactly_the_processes_inside() {
        let cg = Cgroup::new("cg");
        let t = Traced::start("exitsnoop", &["-c", cg.path()]);
        let outside = sh("exit 4");
        let inside = cg.sh("/bin/sh -c 'exit 6'; exit 5");
        let out = stop_after_pid(t, inside);
        assert_eq!(
            &row_of(&out, inside).unwrap()[5..],
            ["code", "5"],
            "{out:?}"
        );
        assert!(row_of(&out, outside).is_none(), "{out:?}");
        // The inner shell ran in the cgroup too (its child), and nothing else did.
        let rows: Vec<_> = out.stdout.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{out:?}");
        assert!(rows.iter().any(|r| r.ends_with("code 6")), "{out:?}");
    }
);

bpf_test!(
    fn a_full_ring_buffer_is_counted_exactly() {
        full_buffer_is_counted_exactly(None);
    }
);

bpf_test!(
    fn a_full_perf_buffer_is_counted_exactly() {
        full_buffer_is_counted_exactly(Some("perf"));
    }
);

/// A frozen consumer and a burst of exits, with the transport the environment chooses or
/// `transport`: shown + lost is exactly what happened, and the loss names its cause.
fn full_buffer_is_counted_exactly(transport: Option<&str>) {
    // Only the processes of a cgroup of our own count, so shown + lost must be exactly what
    // happened: N children of one shell, and the shell.
    const N: usize = 300;
    let cg = Cgroup::new("lost");
    let args = ["--json", "--ringbuf-size", "4", "-c", cg.path()];
    let (t, (key, what)) = match transport {
        Some(tr) => (
            common::start_with_transport("exitsnoop", &args, tr),
            common::buffer_full_for(tr),
        ),
        None => (Traced::start("exitsnoop", &args), common::buffer_full()),
    };
    // Freeze the consumer: a 4 KiB ring holds about 70 exits (a perf buffer of 4 KiB per CPU,
    // about 60 per CPU).
    // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
    unsafe { libc::kill(t.pid() as i32, libc::SIGSTOP) };
    cg.sh(&format!(
        "i=0; while [ $i -lt {N} ]; do /bin/true; i=$((i+1)); done"
    ));
    // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
    unsafe { libc::kill(t.pid() as i32, libc::SIGCONT) };
    let out = t.stop();
    let shown = out
        .json()
        .into_iter()
        .filter(|r| r.get("process.pid").is_some())
        .count();
    let (total, by_cause) = common::final_losses(&out);
    let lost = by_cause[key].as_u64().unwrap() as usize;
    assert!(
        lost > 0 && shown < N,
        "a 4 KiB buffer held them all: {out:?}"
    );
    assert_eq!(shown + lost, N + 1, "shown {shown} + lost {lost}: {out:?}");
    assert_eq!(total as usize, lost, "{by_cause:?}");
    assert_eq!(by_cause["probe_skipped"], 0, "{by_cause:?}");
    let line = format!("exitsnoop: {lost} {what}");
    assert!(out.stderr.contains(&line), "{}", out.stderr);
}

/// A cgroup v1 directory: an existing v1 hierarchy, or a named one mounted for the test.
struct V1Dir {
    path: std::path::PathBuf,
    mounted: bool,
}

impl V1Dir {
    fn find_or_mount() -> V1Dir {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        if let Some(dir) = mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(2) == Some(&"cgroup"))
            .map(|f| std::path::PathBuf::from(f[1]))
        {
            return V1Dir {
                path: dir,
                mounted: false,
            };
        }
        let dir = std::env::temp_dir().join(marker("v1"));
        std::fs::create_dir_all(&dir).unwrap();
        let target = CString::new(dir.to_str().unwrap()).unwrap();
        // SAFETY: mount reads NUL-terminated strings (or null) alive across the call.
        let ret = unsafe {
            libc::mount(
                c"cgroup".as_ptr(),
                target.as_ptr(),
                c"cgroup".as_ptr(),
                0,
                c"none,name=coretrace-test".as_ptr().cast(),
            )
        };
        assert_eq!(
            ret,
            0,
            "no cgroup v1 hierarchy here, and mounting one failed: {}",
            std::io::Error::last_os_error()
        );
        V1Dir {
            path: dir,
            mounted: true,
        }
    }
}

impl Drop for V1Dir {
    fn drop(&mut self) {
        if self.mounted {
            let target = CString::new(self.path.to_str().unwrap()).unwrap();
            // SAFETY: target is a NUL-terminated path; the mount is this test's own.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

bpf_test!(
    fn a_cgroup_that_is_not_v2_is_refused_in_one_line_naming_the_v2_mount() {
        // Needs root: the privilege check comes first.
        let v2 = cgroup2_root();
        let v2 = v2.to_str().unwrap();
        let v1 = V1Dir::find_or_mount();
        let v1 = v1.path.to_str().unwrap();
        let plain = std::env::temp_dir().join(marker("plain"));
        std::fs::create_dir_all(&plain).unwrap();
        let plain = plain.to_str().unwrap();
        for tool in ["exitsnoop", "unlinksnoop", "execsnoop"] {
            for (dir, words) in [
                (v1, &["is a cgroup v1 directory", "needs cgroup v2"][..]),
                (plain, &["is not a cgroup directory"][..]),
                (
                    "/nonexistent/cgroup",
                    &["cannot open cgroup", "No such file"][..],
                ),
            ] {
                let (code, _, err) = run_tool(tool, &["-c", dir, "--timeout", "1"]);
                let mut words = words.to_vec();
                words.extend([dir, v2, "cgroup v2 is mounted at"]);
                assert_one_line_error(code, &err, &words);
                assert!(!err.contains("Bad file descriptor"), "{tool}: {err}");
            }
        }
        let _ = std::fs::remove_dir(plain);
    }
);

#[test]
fn flags_out_of_range_are_refused_naming_the_flag_and_range() {
    for (args, words) in [
        (&["-d", "0"][..], &["--min-duration", "1 to 86400000"][..]),
        (&["-d", "-1"], &["--min-duration", "1 to 86400000"]),
        (&["-d", "86400001"], &["--min-duration", "1 to 86400000"]),
        (&["-p", "0"], &["--pid", "1 to 2147483647"]),
        (&["-p", "-1"], &["--pid", "1 to 2147483647"]),
        (
            &["--ringbuf-size", "-4"],
            &["--ringbuf-size", "4 and 1048576"],
        ),
        (
            &["--ringbuf-size", "2097152"],
            &["--ringbuf-size", "4 and 1048576"],
        ),
        (&["--timeout", "-1"], &["--timeout", "more than 0"]),
        // exitsnoop has one attach method and offers no --attach.
        (&["--attach", "tracepoint"], &["--attach"]),
    ] {
        let (code, _, err) = run_tool("exitsnoop", args);
        assert_one_line_error(code, &err, words);
        assert_eq!(code, 2, "{args:?}: usage errors exit 2: {err}");
    }
}
