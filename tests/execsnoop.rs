//! execsnoop as a user runs it: real execs the test starts, marked with unique argv.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_one_line_error, marker, run_tool, Traced};

const WAIT: Duration = Duration::from_secs(10);

/// Runs a command to its end; returns its pid.
fn run(cmd: &mut Command) -> u32 {
    common::run_traced(cmd)
}

/// Stops the tool once a line containing `needle` has appeared (or WAIT passed).
fn stop_after(t: Traced, needle: &str) -> common::Finished {
    t.wait_for(WAIT, |out| out.contains(needle));
    t.stop()
}

bpf_test!(
    fn argv_with_spaces_is_shown_in_order() {
        let m = marker("argv");
        let t = Traced::start("execsnoop", &[]);
        run(Command::new("/bin/echo").args([m.as_str(), "hello world", "x"]));
        let out = stop_after(t, &m);
        let rows = out.lines_with(&m);
        assert_eq!(rows.len(), 1, "{out:?}");
        let cols: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(cols[0], "echo", "PCOMM: {}", rows[0]);
        assert_eq!(cols[3], "0", "RET: {}", rows[0]);
        assert!(
            rows[0].ends_with(&format!(" /bin/echo {m} hello world x")),
            "{}",
            rows[0]
        );
        assert!(out.stdout.starts_with("PCOMM "), "header: {}", out.stdout);
    }
);

bpf_test!(
    fn execveat_is_traced_too() {
        use std::ffi::CString;
        let m = marker("execveat");
        let path = CString::new("/bin/echo").unwrap();
        let args = [path.clone(), CString::new(m.clone()).unwrap()];
        let argv: Vec<*const libc::c_char> = args
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let t = Traced::start("execsnoop", &[]);
        // SAFETY: the child only makes raw system calls before it execs or exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the forked child: raw system calls on memory prepared before the fork, then exec or _exit.
            unsafe {
                let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
                libc::dup2(devnull, 1);
                libc::syscall(
                    libc::SYS_execveat,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    0,
                );
                libc::_exit(127);
            }
        }
        // SAFETY: waits for our own child; the status pointer is a live i32 or null.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        let out = stop_after(t, &m);
        let rows = out.lines_with(&m);
        assert_eq!(rows.len(), 1, "{out:?}");
        assert!(rows[0].ends_with(&format!(" /bin/echo {m}")), "{}", rows[0]);
        assert_eq!(
            rows[0].split_whitespace().nth(1),
            Some(pid.to_string().as_str())
        );
    }
);

bpf_test!(
    fn quote_and_uid_and_time_columns() {
        let m = marker("quote");
        let t = Traced::start("execsnoop", &["-q", "-U", "-T"]);
        run(Command::new("/bin/echo").args([m.as_str(), "say \"hi\""]));
        let out = stop_after(t, &m);
        let row = out.lines_with(&m)[0].to_string();
        assert!(
            row.ends_with(&format!("\"/bin/echo\" \"{m}\" \"say \\\"hi\\\"\"")),
            "{row}"
        );
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1], "0", "UID column: {row}");
        let time = cols[0].as_bytes();
        assert!(
            time.len() == 8 && time[2] == b':' && time[5] == b':',
            "TIME: {row}"
        );
        assert!(
            out.stdout.starts_with("TIME     UID    PCOMM"),
            "{}",
            out.stdout
        );
    }
);

bpf_test!(
    fn long_argument_lists_are_cut_with_a_marker() {
        let m = marker("trunc");
        let long = "y".repeat(400);
        let t = Traced::start("execsnoop", &["--max-args", "3"]);
        run(Command::new("/bin/echo").args([m.as_str(), "second", "third", "fourth"]));
        run(Command::new("/bin/echo").args([&format!("{m}-long"), long.as_str()]));
        let out = stop_after(t, &format!("{m}-long"));
        let rows = out.lines_with(&m);
        assert_eq!(rows.len(), 2, "{out:?}");
        assert!(
            rows[0].ends_with(&format!("/bin/echo {m} second ...")),
            "{}",
            rows[0]
        );
        // A long argument is shown whole (the argument area is read at once, up to 3584 bytes).
        assert!(rows[1].ends_with(&format!(" {long}")), "{}", rows[1]);
    }
);

bpf_test!(
    fn arguments_longer_than_the_buffer_are_cut_with_a_marker() {
        let m = marker("area");
        let long = "z".repeat(5000);
        let t = Traced::start("execsnoop", &["--json"]);
        run(Command::new("/bin/echo").args([m.as_str(), long.as_str()]));
        let out = json_stop_after(t, &m);
        let mine: Vec<_> = events(&out)
            .into_iter()
            .filter(|r| r["process.command_args"][1] == m.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{out:?}");
        assert_eq!(mine[0]["args_truncated"], true);
        let shown = mine[0]["process.command_args"][2].as_str().unwrap();
        assert!(shown.len() > 3000 && shown.len() < 5000, "{}", shown.len());
        assert!(shown.bytes().all(|b| b == b'z'));
    }
);

bpf_test!(
    fn failed_execs_only_with_x() {
        let m = marker("fail");
        let missing = format!("/nonexistent/{m}");
        for (args, expect) in [(&[][..], 0), (&["-x"][..], 1)] {
            let t = Traced::start("execsnoop", args);
            let _ = Command::new(&missing).status(); // ENOENT
            run(Command::new("/bin/echo").arg(format!("{m}-ok")));
            let out = stop_after(t, &format!("{m}-ok"));
            let rows = out.lines_with(&missing);
            assert_eq!(rows.len(), expect, "args {args:?}: {out:?}");
            if expect == 1 {
                let cols: Vec<&str> = rows[0].split_whitespace().collect();
                assert_eq!(cols[3], "-2", "RET is -ENOENT: {}", rows[0]);
            }
        }
    }
);

bpf_test!(
    fn min_duration_keeps_long_lived_and_drops_short_lived() {
        let m = marker("dur");
        // The threshold leaves room for a slow machine (a `sh -c 'exit 0'` takes over 100 ms under
        // QEMU's software emulation).
        let t = Traced::start("execsnoop", &["-d", "300"]);
        run(Command::new("/bin/sh").args(["-c", "sleep 0.6; exit 3", &format!("{m}-long")]));
        run(Command::new("/bin/sh").args(["-c", "exit 0", &format!("{m}-short")]));
        // Something long-lived after the short one, so its absence is not a matter of timing.
        run(Command::new("/bin/sh").args(["-c", "sleep 0.4", &format!("{m}-last")]));
        let out = stop_after(t, &format!("{m}-last"));
        assert!(out.stdout.starts_with("PCOMM"), "{}", out.stdout);
        assert!(
            out.stdout.lines().next().unwrap().contains("AGE(ms) EXIT"),
            "{}",
            out.stdout
        );
        let long = out.lines_with(&format!("{m}-long"));
        assert_eq!(long.len(), 1, "{out:?}");
        let cols: Vec<&str> = long[0].split_whitespace().collect();
        let age: f64 = cols[3].parse().unwrap();
        assert!(
            (600.0..3000.0).contains(&age),
            "AGE(ms) of a 600 ms process: {}",
            long[0]
        );
        assert_eq!(&cols[4..6], ["code", "3"], "{}", long[0]);
        assert!(out.lines_with(&format!("{m}-short")).is_empty(), "{out:?}");
        assert_eq!(out.lines_with(&format!("{m}-last")).len(), 1, "{out:?}");
    }
);

bpf_test!(
    fn uid_name_and_line_filters() {
        let m = marker("filt");
        let t = Traced::start("execsnoop", &["-u", "65534", "-U"]);
        run(Command::new("/bin/echo")
            .arg(format!("{m}-nobody"))
            .uid(65534)
            .gid(65534));
        run(Command::new("/bin/echo").arg(format!("{m}-root")));
        let out = stop_after(t, &format!("{m}-nobody"));
        assert_eq!(out.lines_with(&format!("{m}-nobody")).len(), 1, "{out:?}");
        assert!(out.lines_with(&format!("{m}-nobody"))[0].starts_with("65534 "));
        assert!(out.lines_with(&format!("{m}-root")).is_empty(), "{out:?}");

        let t = Traced::start("execsnoop", &["-n", "ech", "-l", &format!("{m}-yes")]);
        run(Command::new("/bin/true").arg(format!("{m}-yes")));
        run(Command::new("/bin/echo").arg(format!("{m}-no")));
        run(Command::new("/bin/echo").args(["x", &format!("{m}-yes")]));
        let out = stop_after(t, &format!("x {m}-yes"));
        let rows = out.lines_with(&m);
        assert_eq!(rows.len(), 1, "only echo with the line: {out:?}");
        assert!(rows[0].starts_with("echo "), "{}", rows[0]);
    }
);

bpf_test!(
    fn cgroup_filter() {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root = mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(2) == Some(&"cgroup2"))
            .map(|f| std::path::PathBuf::from(f[1]))
            .expect("this test needs a cgroup v2 mount");
        let m = marker("cg");
        let cg = root.join(&m);
        std::fs::create_dir(&cg).unwrap();
        let t = Traced::start("execsnoop", &["-c", cg.to_str().unwrap()]);
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec /bin/echo {m}-in",
            cg.display()
        );
        run(Command::new("/bin/sh").args(["-c", &script]));
        run(Command::new("/bin/echo").arg(format!("{m}-out")));
        let out = stop_after(t, &format!("{m}-in"));
        let _ = std::fs::remove_dir(&cg);
        assert_eq!(out.lines_with(&format!("{m}-in")).len(), 1, "{out:?}");
        assert!(out.lines_with(&format!("{m}-out")).is_empty(), "{out:?}");
    }
);

bpf_test!(
    fn control_bytes_from_traced_processes_are_escaped() {
        let m = marker("esc");
        let dir = std::env::temp_dir().join(&m);
        std::fs::create_dir_all(&dir).unwrap();
        let evil = dir.join("\x1b[2Jevil");
        std::os::unix::fs::symlink("/bin/echo", &evil).unwrap();
        let t = Traced::start("execsnoop", &[]);
        run(Command::new(&evil).arg(format!("{m}\x1b]0;owned\x07")));
        let out = stop_after(t, &m);
        let _ = std::fs::remove_dir_all(&dir);
        let row = out.lines_with(&m)[0].to_string();
        assert!(
            !out.stdout.contains('\x1b') && !out.stdout.contains('\x07'),
            "{:?}",
            out.stdout
        );
        assert!(row.contains(&format!("{m}\\x1b]0;owned\\x07")), "{row}");
        assert!(row.starts_with("\\x1b[2Jevil"), "comm escaped: {row}");
    }
);

bpf_test!(
    fn json_lines_have_stable_fields() {
        let m = marker("json");
        let t = Traced::start("execsnoop", &["--json"]);
        let child = Command::new("/bin/echo")
            .args([m.as_str(), "a b"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait_with_output().unwrap();
        let out = stop_after(t, &m);
        let records = out.json();
        let mine: Vec<_> = records
            .iter()
            .filter(|r| r["process.command_args"].to_string().contains(&m))
            .collect();
        assert_eq!(mine.len(), 1, "{out:?}");
        let r = mine[0];
        assert_eq!(r["process.pid"], pid);
        assert_eq!(r["process.executable.name"], "echo");
        assert_eq!(r["ret"], 0);
        assert_eq!(
            r["process.command_args"],
            serde_json::json!(["/bin/echo", m, "a b"])
        );
        assert_eq!(r["args_truncated"], false);
        assert!(r["time"].as_str().unwrap().contains('T'), "{r}");
        assert!(
            r["process.real_user.id"].is_number() && r["process.parent_pid"].is_number(),
            "{r}"
        );
    }
);

bpf_test!(
    fn a_full_ring_buffer_is_counted_exactly_and_fail_on_loss_exits_3() {
        let uid = common::unused_uid();
        let u = uid.to_string();
        let m = marker("lost");
        // A 4 KiB ring holds about one record with this much argv; freeze the consumer meanwhile.
        // Only this test's execs count (-u with a UID nobody else runs as), so shown + lost must
        // be exactly what happened.
        let t = Traced::start(
            "execsnoop",
            &["--ringbuf-size", "4", "-u", &u, "--fail-on-loss"],
        );
        let mut argv = vec!["/bin/true".to_string(), m.clone()];
        argv.extend((0..14).map(|i| format!("{i:02}{}", "z".repeat(240))));
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
        unsafe { libc::kill(t.pid() as i32, libc::SIGSTOP) };
        const EXECS: usize = 40;
        execs_as(uid, &argv, EXECS, 1);
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
        unsafe { libc::kill(t.pid() as i32, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(1500));
        let out = t.stop();
        let shown = out.lines_with(&m).len();
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(common::buffer_full().1))
            .unwrap_or_else(|| panic!("no loss report by cause on stderr: {out:?}"));
        let lost: usize = line
            .trim_start_matches("execsnoop: ")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {line:?}"));
        assert!(out.stderr.contains("WARNING:"), "{}", out.stderr);
        assert!(
            shown < EXECS,
            "a 4 KiB ring cannot have held {EXECS} big records: {out:?}"
        );
        assert_eq!(
            shown + lost,
            EXECS,
            "shown {shown} + lost {lost}: {}",
            out.stderr
        );
        assert_eq!(out.status.code(), Some(3), "--fail-on-loss: {out:?}");
        assert!(out.stderr.contains("--fail-on-loss"), "{}", out.stderr);

        // Nothing lost: status 0, and the JSON stream still ends with a loss record saying so.
        let t = Traced::start("execsnoop", &["--json", "-u", &u, "--fail-on-loss"]);
        execs_as(uid, &["/bin/echo".to_string(), m.clone()], 2, 1);
        let out = json_stop_after(t, &m);
        assert!(out.status.success(), "{out:?}");
        let (total, by_cause) = common::final_losses(&out);
        assert_eq!(total, 0, "{out:?}");
        for key in [
            common::buffer_full().0,
            "inflight_full",
            "live_table_full",
            "probe_skipped",
        ] {
            assert_eq!(by_cause[key], 0, "{key}: {out:?}");
        }
    }
);

bpf_test!(
    fn closed_pipe_ends_quietly() {
        let m = marker("pipe");
        let mut child = Command::new(common::bin("execsnoop"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The header arrives once execsnoop has attached; then close our end, like `| head -1`.
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 5];
        std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
        assert_eq!(&first, b"PCOMM");
        drop(stdout);
        for _ in 0..20 {
            run(Command::new("/bin/echo").arg(&m));
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
);

bpf_test!(
    fn sigterm_detaches_and_prints_what_was_gathered() {
        let m = marker("term");
        let t = Traced::start("execsnoop", &[]);
        run(Command::new("/bin/echo").arg(&m));
        std::thread::sleep(Duration::from_millis(50));
        let out = t.stop_with(libc::SIGTERM);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.lines_with(&m).len(), 1, "{out:?}");
    }
);

bpf_test!(
    fn timeout_stops_by_itself() {
        let m = marker("timeout");
        let t = Traced::start("execsnoop", &["--timeout", "1.5"]);
        run(Command::new("/bin/echo").arg(&m));
        let out = t.wait(Duration::from_secs(10));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.lines_with(&m).len(), 1, "{out:?}");
    }
);

#[test]
fn bad_input_is_one_line_and_nonzero() {
    let (code, _, err) = run_tool("execsnoop", &["--max-args", "0"]);
    assert_one_line_error(code, &err, &["--max-args", "1..=60"]);
    let (code, _, err) = run_tool("execsnoop", &["-d", "0"]);
    assert_one_line_error(code, &err, &["out of range"]);
    let (code, _, err) = run_tool("execsnoop", &["-x", "-d", "100"]);
    assert_one_line_error(code, &err, &["--fails", "--min-duration"]);
    let (code, _, err) = run_tool("execsnoop", &["--ringbuf-size", "3"]);
    assert_one_line_error(code, &err, &["power of two"]);
}

bpf_test!(
    fn missing_cgroup_is_one_line_and_nonzero() {
        // Needs root: the privilege check comes first.
        let (code, _, err) = run_tool("execsnoop", &["-c", "/nonexistent/cgroup"]);
        assert_one_line_error(code, &err, &["cgroup", "/sys/fs/cgroup"]);
    }
);

bpf_test!(
    fn unprivileged_user_is_told_to_use_sudo() {
        let out = Command::new(common::bin("execsnoop"))
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_one_line_error(out.status.code().unwrap_or(-1), &err, &["root", "sudo"]);
    }
);

bpf_test!(
    fn exec_from_a_non_main_thread_is_one_row_with_the_process_id() {
        let m = marker("threxec");
        let prog = common::build_c_program("thread_exec", &["-O1", "-pthread"]);
        let t = Traced::start("execsnoop", &["--json"]);
        let pid = common::run_traced(Command::new(&prog).args(["/bin/echo", m.as_str(), "x y"]));
        let out = json_stop_after(t, &m);
        let rows: Vec<_> = out
            .json()
            .into_iter()
            .filter(|r| {
                r["process.command_args"][0] == "/bin/echo"
                    && r["process.command_args"][1] == m.as_str()
            })
            .collect();
        assert_eq!(rows.len(), 1, "{out:?}");
        let r = &rows[0];
        assert_eq!(r["process.pid"], pid, "{r}");
        assert_eq!(r["process.parent_pid"], std::process::id(), "{r}");
        assert_eq!(r["ret"], 0, "{r}");
        assert_eq!(r["process.executable.name"], "echo", "{r}");
        assert_eq!(
            r["process.command_args"],
            serde_json::json!(["/bin/echo", m, "x y"]),
            "{r}"
        );
    }
);

bpf_test!(
    fn backslashes_are_escaped_so_a_literal_escape_is_not_an_esc_byte() {
        let m = marker("bslash");
        let t = Traced::start("execsnoop", &[]);
        run(Command::new("/bin/echo").args([m.as_str(), "\\x1b[2J", "\x1b[2J"]));
        let out = stop_after(t, &m);
        let rows = out.lines_with(&m);
        assert_eq!(rows.len(), 1, "{out:?}");
        assert!(
            rows[0].ends_with(&format!("/bin/echo {m} \\\\x1b[2J \\x1b[2J")),
            "{}",
            rows[0]
        );
        assert!(!rows[0].contains('\x1b'), "raw ESC printed: {}", rows[0]);
    }
);

/// Stops a `--json` tool once a record mentions `needle`.
fn json_stop_after(t: Traced, needle: &str) -> common::Finished {
    t.wait_for(WAIT, |out| out.contains(needle));
    t.stop()
}

/// Rows (event records, not loss records) of a `--json` run.
fn events(out: &common::Finished) -> Vec<serde_json::Value> {
    out.json()
        .into_iter()
        .filter(|r| r.get("process.pid").is_some())
        .collect()
}

/// Runs `n` execs of `argv` as `uid` (so that `-u uid` sees only them), `parallel` at a time.
fn execs_as(uid: u32, argv: &[String], n: usize, parallel: usize) {
    std::thread::scope(|s| {
        for w in 0..parallel {
            s.spawn(move || {
                for _ in (w..n).step_by(parallel) {
                    run(Command::new(&argv[0]).args(&argv[1..]).uid(uid).gid(uid));
                }
            });
        }
    });
}

bpf_test!(
    fn a_full_live_table_under_d_is_counted_per_process() {
        let uid = common::unused_uid();
        let u = uid.to_string();
        let t = Traced::start(
            "execsnoop",
            &["--json", "-u", &u, "-d", "1", "--max-procs", "2"],
        );
        // Five processes alive at once; the table follows two.
        let sleepers: Vec<_> = (0..5)
            .map(|_| {
                Command::new("/bin/sleep")
                    .arg("1")
                    .uid(uid)
                    .gid(uid)
                    .stdin(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut s in sleepers {
            s.wait().unwrap();
        }
        t.wait_for(WAIT, |out| out.matches("\"pid\"").count() >= 2);
        let out = t.stop();
        let shown = events(&out);
        let (total, by_cause) = common::final_losses(&out);
        assert_eq!(shown.len(), 2, "{out:?}");
        assert_eq!(by_cause["live_table_full"], 3, "{out:?}");
        assert_eq!(total, 3, "{out:?}");
        assert!(
        out.stderr.contains("3 processes not followed by -d: the table of live processes was full (raise --max-procs"),
        "{}",
        out.stderr
    );
    }
);

bpf_test!(
    fn a_full_inflight_table_is_counted_so_shown_plus_lost_is_every_exec() {
        let uid = common::unused_uid();
        let u = uid.to_string();
        let m = marker("inflight");
        let argv = vec!["/bin/echo".to_string(), m.clone()];
        // One slot for execs in flight, and execs from two threads at once: some find the slot taken.
        // With -x each exec holds its slot from sys_enter to its end, so collisions are common.
        let t = Traced::start(
            "execsnoop",
            &["--json", "-x", "-u", &u, "--max-inflight", "1"],
        );
        let mut happened = 0;
        let (mut shown, mut lost) = (0, 0);
        for _round in 0..10 {
            execs_as(uid, &argv, 200, 2);
            happened += 200;
            if t.wait_for(Duration::from_secs(3), |out| {
                out.contains("\"inflight_full\":") && !out.contains("\"inflight_full\":0")
            }) {
                break;
            }
        }
        let out = json_stop_after(t, "");
        shown += events(&out).len();
        let (total, by_cause) = common::final_losses(&out);
        lost += by_cause["inflight_full"].as_u64().unwrap();
        assert!(lost > 0, "two exec loops never collided: {}", out.stderr);
        assert_eq!(total, lost, "no other cause: {by_cause:?}");
        assert_eq!(shown as u64 + lost, happened, "{by_cause:?}");
    }
);

bpf_test!(
    fn min_duration_reports_a_process_when_its_last_thread_ends() {
        // Its main thread ends at once (pthread_exit); another ends the process 300 ms later.
        let prog = common::build_c_program("leader_exits_first", &["-O1", "-pthread"]);
        let t = Traced::start("execsnoop", &["-d", "100", "--json"]);
        let pid = common::run_traced(&mut Command::new(&prog));
        let out = json_stop_after(t, &format!("\"process.pid\":{pid},"));
        let rows: Vec<_> = events(&out)
            .into_iter()
            .filter(|r| r["process.pid"] == pid)
            .collect();
        assert_eq!(rows.len(), 1, "{out:?}");
        let age = rows[0]["age_ms"].as_f64().unwrap();
        assert!(
            age >= 300.0,
            "age of the process, not its main thread: {}",
            rows[0]
        );
        assert_eq!(rows[0]["process.exit.code"], 7, "{}", rows[0]);
    }
);

#[test]
fn flags_out_of_range_are_refused_naming_the_flag_and_range() {
    for (args, words) in [
        (&["-u", "4294967295"][..], &["--uid", "0 to 4294967294"][..]),
        (&["-u", "-1"], &["--uid", "0 to 4294967294"]),
        (&["-n", "a-name-longer-than-15"], &["--name", "15 bytes"]),
        (&["--max-args", "0"], &["--max-args", "1..=60"]),
        (&["--max-args", "-1"], &["--max-args", "1..=60"]),
        (&["--max-procs", "0"], &["--max-procs", "1..=1048576"]),
        (&["--max-inflight", "-3"], &["--max-inflight", "1..=65536"]),
        (&["-d", "-1"], &["--min-duration", "1 to 86400000"]),
        (&["--attach", "tracepoint"], &["--attach"]),
    ] {
        let (code, _, err) = run_tool("execsnoop", args);
        assert_one_line_error(code, &err, words);
        assert_eq!(code, 2, "{args:?}: usage errors exit 2: {err}");
    }
}

bpf_test!(
    fn min_duration_keeps_the_age_of_a_process_that_execs_again() {
        let m = marker("reexec");
        // The shell lives 0.5 s, then becomes a program that ends at once: the process lived 0.5 s.
        let t = Traced::start("execsnoop", &["-d", "300", "--json"]);
        let pid = common::run_traced(Command::new("/bin/sh").args([
            "-c",
            "sleep 0.5; exec /bin/true reexec",
            &m,
        ]));
        let out = json_stop_after(t, &format!("\"process.pid\":{pid},"));
        let rows: Vec<_> = events(&out)
            .into_iter()
            .filter(|r| r["process.pid"] == pid)
            .collect();
        assert_eq!(rows.len(), 1, "{out:?}");
        assert_eq!(
            rows[0]["process.command_args"],
            serde_json::json!(["/bin/true", "reexec"]),
            "the row shows the last program: {}",
            rows[0]
        );
        assert!(rows[0]["age_ms"].as_f64().unwrap() >= 500.0, "{}", rows[0]);
    }
);

/// tests/programs/literal_exec, which execs with string literals it never touched (pages of
/// its .rodata not resident yet, so unreadable at sys_enter), in `mode`: m (main thread), t (a
/// second thread), f (fexecve of /bin/true), x (a failed exec), e (argv a bad pointer).
/// Returns the pid of each run, which its exec row carries (a thread's exec gets the process id).
fn literal_execs(modes: &str) -> Vec<(char, u32)> {
    let prog = common::build_c_program("literal_exec", &["-O1", "-pthread"]);
    modes
        .chars()
        .map(|mode| (mode, run(Command::new(&prog).arg(mode.to_string()))))
        .collect()
}

/// What execsnoop must show for a literal_exec mode: (RET, every argument, path first).
fn literal_expected(mode: char) -> (i32, Vec<String>) {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    match mode {
        'm' | 't' => (
            0,
            strings(&[
                "/bin/true",
                "coretrace-literal-one",
                "coretrace literal two",
            ]),
        ),
        // fexecve: the path as the kernel resolved the descriptor, as /proc/PID/exe shows it.
        'f' => {
            let real = std::fs::canonicalize("/bin/true").unwrap();
            (
                0,
                vec![real.display().to_string(), "coretrace-literal-fd".into()],
            )
        }
        'x' => (
            -libc::ENOENT,
            strings(&[
                "/nonexistent/coretrace-literal-missing",
                "coretrace-literal-failed",
            ]),
        ),
        _ => unreachable!("mode {mode}"),
    }
}

/// The exec rows of `pid` that are not literal_exec's own start (same pid, earlier exec).
fn literal_rows(out: &common::Finished, pid: u32) -> Vec<serde_json::Value> {
    events(out)
        .into_iter()
        .filter(|r| r["process.pid"] == pid)
        .filter(|r| {
            !r["process.command_args"][0]
                .as_str()
                .unwrap()
                .contains("literal_exec")
        })
        .collect()
}

fn assert_literal_json(out: &common::Finished, runs: &[(char, u32)]) {
    for &(mode, pid) in runs {
        let (ret, args) = literal_expected(mode);
        let rows = literal_rows(out, pid);
        assert_eq!(rows.len(), 1, "mode {mode}, pid {pid}: {out:?}");
        assert_eq!(
            rows[0]["process.command_args"],
            serde_json::json!(args),
            "mode {mode}"
        );
        assert_eq!(rows[0]["ret"], ret, "mode {mode}");
        assert_eq!(rows[0]["args_unreadable"], false, "mode {mode}");
        assert_eq!(rows[0]["args_truncated"], false, "mode {mode}");
    }
}

bpf_test!(
    fn arguments_never_touched_by_the_caller_are_all_shown() {
        let t = Traced::start("execsnoop", &["-x"]);
        let runs = literal_execs("mtfx");
        t.wait_for(WAIT, |out| out.contains("coretrace-literal-failed"));
        let out = t.stop();
        for &(mode, pid) in &runs {
            let (ret, args) = literal_expected(mode);
            let want = format!(" {ret} {}", args.join(" "));
            let rows: Vec<&str> = out
                .stdout
                .lines()
                .filter(|l| l.split_whitespace().nth(1) == Some(&pid.to_string()))
                .filter(|l| l.ends_with(&want))
                .collect();
            assert_eq!(
                rows.len(),
                1,
                "mode {mode}: no row ending {want:?}: {}",
                out.stdout
            );
        }
        assert!(!out.stdout.contains("[args unreadable]"), "{}", out.stdout);
    }
);

bpf_test!(
    fn arguments_never_touched_are_shown_in_json_and_through_the_perf_buffer() {
        for transport in ["ringbuf", "perf"] {
            let t = common::start_with_transport("execsnoop", &["--json", "-x"], transport);
            let runs = literal_execs("mtfx");
            let out = json_stop_after(t, "coretrace-literal-failed");
            assert_literal_json(&out, &runs);
            let (total, _) = common::final_losses(&out);
            assert_eq!(total, 0, "{transport}: {out:?}");
        }
    }
);

bpf_test!(
    fn arguments_never_touched_are_kept_by_min_duration_until_exit() {
        let t = Traced::start("execsnoop", &["--json", "-d", "1"]);
        let runs = literal_execs("mtf");
        let out = json_stop_after(t, "coretrace-literal-fd");
        assert_literal_json(&out, &runs);
        for &(_, pid) in &runs {
            assert_eq!(
                literal_rows(&out, pid)[0]["process.exit.code"],
                0,
                "{out:?}"
            );
        }
    }
);

bpf_test!(
    fn unreadable_arguments_are_marked_and_counted() {
        // An exec whose argv pointer is bad: the kernel fails it with EFAULT, and no argument can
        // be read, at entry or at exit.
        let t = Traced::start("execsnoop", &["-x"]);
        let runs = literal_execs("e");
        let pid = runs[0].1.to_string();
        t.wait_for(WAIT, |out| out.contains("[args unreadable]"));
        let out = t.stop();
        let rows: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(pid.as_str()))
            .filter(|l| l.contains(&format!(" {} ", -libc::EFAULT)))
            .collect();
        assert_eq!(rows.len(), 1, "{}", out.stdout);
        assert!(
            rows[0].ends_with(" /bin/true [args unreadable]"),
            "{}",
            rows[0]
        );
        assert!(
            out.stderr
                .contains("1 execs shown without their arguments ([args unreadable])"),
            "{}",
            out.stderr
        );

        let t = Traced::start("execsnoop", &["-x", "--json"]);
        let runs = literal_execs("e");
        let out = json_stop_after(t, "\"args_unreadable\":true");
        let mine: Vec<_> = events(&out)
            .into_iter()
            .filter(|r| r["process.pid"] == runs[0].1 && r["ret"] == -libc::EFAULT)
            .collect();
        assert_eq!(mine.len(), 1, "{out:?}");
        assert_eq!(mine[0]["args_unreadable"], true);
        assert_eq!(
            mine[0]["process.command_args"],
            serde_json::json!(["/bin/true"])
        );
        let (total, by_cause) = common::final_losses(&out);
        assert_eq!(by_cause["args_unreadable"], 1, "{by_cause:?}");
        assert_eq!(total, 1, "{by_cause:?}");
    }
);

bpf_test!(
    fn a_script_shows_its_path_and_its_own_arguments() {
        use std::os::unix::fs::PermissionsExt;
        let m = marker("script");
        let dir = std::env::temp_dir().join(&m);
        std::fs::create_dir_all(&dir).unwrap();
        // Two shebang forms: an interpreter, and an interpreter with an argument (`#!/bin/sh -e`,
        // as `#!/usr/bin/env NAME` is; the kernel-matrix guests have /bin/sh but no /usr/bin/env).
        let plain = dir.join("plain.sh");
        let env = dir.join("with-arg.sh");
        std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::write(&env, "#!/bin/sh -e\nexit 0\n").unwrap();
        for script in [&plain, &env] {
            std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let t = Traced::start("execsnoop", &[]);
        run(Command::new(&plain).args([m.as_str(), "two"]));
        run(Command::new(&env).args([m.as_str(), "three"]));
        let out = stop_after(t, &format!("{m} three"));
        for (script, arg) in [(&plain, "two"), (&env, "three")] {
            let want = format!(" 0 {} {m} {arg}", script.display());
            let rows: Vec<&str> = out.stdout.lines().filter(|l| l.ends_with(&want)).collect();
            assert_eq!(rows.len(), 1, "no row ending {want:?}: {}", out.stdout);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
);
