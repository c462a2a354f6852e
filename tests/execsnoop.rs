//! execsnoop as a user runs it: real execs the test starts, marked with unique argv.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_one_line_error, marker, require_bpf, run_tool, Traced};

const WAIT: Duration = Duration::from_secs(10);

fn run(cmd: &mut Command) {
    common::run_traced(cmd);
}

/// Stops the tool once a line containing `needle` has appeared (or WAIT passed).
fn stop_after(t: Traced, needle: &str) -> common::Finished {
    t.wait_for(WAIT, |out| out.contains(needle));
    t.stop()
}

#[test]
fn argv_with_spaces_is_shown_in_order() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn execveat_is_traced_too() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn quote_and_uid_and_time_columns() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn long_argument_lists_are_cut_with_a_marker() {
    if !require_bpf() {
        return;
    }
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
    // One argument longer than execsnoop reads (255 bytes) is cut too, visibly.
    assert!(rows[1].ends_with(" ..."), "{}", rows[1]);
    assert!(rows[1].contains(&"y".repeat(200)), "{}", rows[1]);
    assert!(!rows[1].contains(&long), "{}", rows[1]);
}

#[test]
fn failed_execs_only_with_x() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn min_duration_keeps_long_lived_and_drops_short_lived() {
    if !require_bpf() {
        return;
    }
    let m = marker("dur");
    let t = Traced::start("execsnoop", &["-d", "100"]);
    run(Command::new("/bin/sh").args(["-c", "sleep 0.4; exit 3", &format!("{m}-long")]));
    run(Command::new("/bin/sh").args(["-c", "exit 0", &format!("{m}-short")]));
    // Something long-lived after the short one, so its absence is not a matter of timing.
    run(Command::new("/bin/sh").args(["-c", "sleep 0.2", &format!("{m}-last")]));
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
        (400.0..2000.0).contains(&age),
        "AGE(ms) of a 400 ms process: {}",
        long[0]
    );
    assert_eq!(&cols[4..6], ["code", "3"], "{}", long[0]);
    assert!(out.lines_with(&format!("{m}-short")).is_empty(), "{out:?}");
    assert_eq!(out.lines_with(&format!("{m}-last")).len(), 1, "{out:?}");
}

#[test]
fn uid_name_and_line_filters() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn cgroup_filter() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn control_bytes_from_traced_processes_are_escaped() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn json_lines_have_stable_fields() {
    if !require_bpf() {
        return;
    }
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
        .filter(|r| r["args"].to_string().contains(&m))
        .collect();
    assert_eq!(mine.len(), 1, "{out:?}");
    let r = mine[0];
    assert_eq!(r["pid"], pid);
    assert_eq!(r["comm"], "echo");
    assert_eq!(r["ret"], 0);
    assert_eq!(r["args"], serde_json::json!(["/bin/echo", m, "a b"]));
    assert_eq!(r["args_truncated"], false);
    assert!(r["time"].as_str().unwrap().contains('T'), "{r}");
    assert!(r["uid"].is_number() && r["ppid"].is_number(), "{r}");
}

#[test]
fn lost_events_are_counted_and_reported() {
    if !require_bpf() {
        return;
    }
    let m = marker("lost");
    // A 4 KiB ring holds about one record with this much argv; freeze the consumer meanwhile.
    let t = Traced::start("execsnoop", &["--ringbuf-size", "4"]);
    let big: Vec<String> = (0..14)
        .map(|i| format!("{i:02}{}", "z".repeat(240)))
        .collect();
    unsafe { libc::kill(t.pid() as i32, libc::SIGSTOP) };
    const EXECS: usize = 40;
    for _ in 0..EXECS {
        run(Command::new("/bin/true").arg(&m).args(&big));
    }
    unsafe { libc::kill(t.pid() as i32, libc::SIGCONT) };
    std::thread::sleep(Duration::from_millis(1500));
    let out = t.stop();
    let shown = out.lines_with(&m).len();
    let total: usize = out
        .stderr
        .lines()
        .find_map(|l| l.split_once(" events lost in all").map(|(n, _)| n.trim()))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no loss summary on stderr: {out:?}"));
    assert!(out.stderr.contains("WARNING:"), "{}", out.stderr);
    assert!(
        shown < EXECS,
        "a 4 KiB ring cannot have held {EXECS} big records: {out:?}"
    );
    assert!(
        shown + total >= EXECS,
        "shown {shown} + lost {total} < {EXECS}: events vanished"
    );
}

#[test]
fn closed_pipe_ends_quietly() {
    if !require_bpf() {
        return;
    }
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

#[test]
fn sigterm_detaches_and_prints_what_was_gathered() {
    if !require_bpf() {
        return;
    }
    let m = marker("term");
    let t = Traced::start("execsnoop", &[]);
    run(Command::new("/bin/echo").arg(&m));
    std::thread::sleep(Duration::from_millis(50));
    let out = t.stop_with(libc::SIGTERM);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.lines_with(&m).len(), 1, "{out:?}");
}

#[test]
fn timeout_stops_by_itself() {
    if !require_bpf() {
        return;
    }
    let m = marker("timeout");
    let t = Traced::start("execsnoop", &["--timeout", "1.5"]);
    run(Command::new("/bin/echo").arg(&m));
    let out = t.wait(Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.lines_with(&m).len(), 1, "{out:?}");
}

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
    if require_bpf() {
        let (code, _, err) = run_tool("execsnoop", &["-c", "/nonexistent/cgroup"]);
        assert_one_line_error(code, &err, &["cgroup", "/sys/fs/cgroup"]);
    }
}

#[test]
fn unprivileged_user_is_told_to_use_sudo() {
    if !require_bpf() {
        return; // needs root to drop to another user
    }
    let out = Command::new(common::bin("execsnoop"))
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_one_line_error(out.status.code().unwrap_or(-1), &err, &["root", "sudo"]);
}
