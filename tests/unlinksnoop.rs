//! unlinksnoop as a user runs it: files and directories the test makes and removes, by absolute
//! path, relative path, directory fd, rmdir, and failing removals.
//!
//! The attach method is the kernel's best (here: the syscall tracepoints). To run the same
//! assertions with another method (the kernel matrix does, on kernels that have them), set
//! CORETRACE_TEST_ATTACH=fentry or =kprobe: every tracer then runs with `--attach METHOD` and
//! must say it attached with it.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, marker, run_traced, Finished, Traced};

const WAIT: Duration = Duration::from_secs(10);

/// Starts unlinksnoop (with the method CORETRACE_TEST_ATTACH forces, if any).
fn tracer(args: &[&str]) -> Traced {
    let mut cmd = Command::new(common::bin("unlinksnoop"));
    cmd.args(args).arg("-v");
    let forced = std::env::var("CORETRACE_TEST_ATTACH").ok();
    if let Some(m) = &forced {
        cmd.args(["--attach", m]);
    }
    let t = Traced::start_cmd(cmd);
    if let Some(m) = &forced {
        let err = t.stderr_text();
        assert!(
            err.contains(&format!("attached with {m}")),
            "not attached with {m}: {err}"
        );
    }
    t
}

/// A fresh directory for one test (canonical: it is what the kernel will report).
fn workdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(marker(tag));
    fs::create_dir_all(&dir).unwrap();
    fs::canonicalize(&dir).unwrap()
}

fn touch(p: &Path) {
    fs::write(p, b"x").unwrap();
}

fn c(p: impl AsRef<Path>) -> CString {
    CString::new(p.as_ref().as_os_str().as_bytes()).unwrap()
}

/// One table row: PID COMM UID RET LAT(us) PATH.
#[derive(Debug)]
struct Row {
    pid: u32,
    comm: String,
    uid: u32,
    ret: String,
    lat_us: f64,
}

/// The row whose PATH is exactly `path`.
fn row(out: &Finished, path: &Path) -> Option<Row> {
    let path = path.to_str().unwrap();
    out.stdout.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.len() == 6 && cols[5] == path).then(|| Row {
            pid: cols[0].parse().unwrap(),
            comm: cols[1].to_string(),
            uid: cols[2].parse().unwrap(),
            ret: cols[3].to_string(),
            lat_us: cols[4].parse().unwrap(),
        })
    })
}

fn expect_row(out: &Finished, path: &Path) -> Row {
    row(out, path).unwrap_or_else(|| panic!("no row for {}: {out:?}", path.display()))
}

/// Stops the tracer once it has printed `last` (a table row ending in it, or a JSON record).
fn stop_after(t: Traced, last: &Path) -> Finished {
    let row_end = last.to_str().unwrap().to_string();
    let json = format!("\"file.path\":\"{row_end}\"");
    t.wait_for(WAIT, |out| {
        out.lines()
            .any(|l| l.ends_with(&row_end) || l.contains(&json))
    });
    t.stop()
}

bpf_test!(
    fn absolute_relative_dirfd_rmdir_and_failures_show_full_paths() {
        let d = workdir("paths");
        let sub = d.join("sub");
        let dirfd_dir = d.join("byfd");
        fs::create_dir_all(&sub).unwrap();
        fs::create_dir_all(dirfd_dir.join("fdsubdir")).unwrap();
        fs::create_dir_all(d.join("emptydir")).unwrap();
        fs::create_dir_all(d.join("full")).unwrap();
        for f in [
            d.join("abs-file"),
            sub.join("rel-file"),
            d.join("up-file"),
            dirfd_dir.join("fd-file"),
            d.join("full/keep"),
        ] {
            touch(&f);
        }

        let t = tracer(&[]);
        let abs = run_traced(Command::new("rm").arg(d.join("abs-file")));
        // Relative to the caller's working directory (and `..` from it).
        let rel = run_traced(Command::new("rm").arg("rel-file").current_dir(&sub));
        let up = run_traced(Command::new("rm").arg("../up-file").current_dir(&sub));
        // Relative to a directory fd, from this process: a file, then a directory.
        let dir = fs::File::open(&dirfd_dir).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        // SAFETY: the paths are NUL-terminated C strings alive across the call.
        assert_eq!(unsafe { libc::unlinkat(fd, c"fd-file".as_ptr(), 0) }, 0);
        let removedir = libc::AT_REMOVEDIR;
        assert_eq!(
            // SAFETY: the paths are NUL-terminated C strings alive across the call.
            unsafe { libc::unlinkat(fd, c"fdsubdir".as_ptr(), removedir) },
            0
        );
        drop(dir);
        let rmdir = run_traced(Command::new("rmdir").arg("emptydir").current_dir(&d));
        // Failures: a name that does not exist, a directory that is not empty.
        let missing = d.join("missing");
        // SAFETY: the paths are NUL-terminated C strings alive across the call.
        assert_eq!(unsafe { libc::unlink(c(&missing).as_ptr()) }, -1);
        // SAFETY: the paths are NUL-terminated C strings alive across the call.
        assert_eq!(unsafe { libc::rmdir(c(d.join("full")).as_ptr()) }, -1);
        let last = d.join("last");
        touch(&last);
        fs::remove_file(&last).unwrap();
        let out = stop_after(t, &last);
        assert!(out.stdout.starts_with("    PID COMM"), "{}", out.stdout);

        let me = std::process::id();
        let r = expect_row(&out, &d.join("abs-file"));
        assert_eq!((r.pid, r.comm.as_str(), r.uid), (abs, "rm", 0));
        assert_eq!(r.ret, "0");
        assert!(r.lat_us > 0.0 && r.lat_us < 1e6, "{r:?}");
        assert_eq!(expect_row(&out, &sub.join("rel-file")).pid, rel);
        assert_eq!(expect_row(&out, &d.join("up-file")).pid, up);
        let r = expect_row(&out, &dirfd_dir.join("fd-file"));
        assert_eq!((r.pid, r.ret.as_str()), (me, "0"));
        assert_eq!(expect_row(&out, &dirfd_dir.join("fdsubdir")).pid, me);
        let r = expect_row(&out, &d.join("emptydir"));
        assert_eq!(
            (r.pid, r.comm.as_str(), r.ret.as_str()),
            (rmdir, "rmdir", "0")
        );
        assert_eq!(expect_row(&out, &missing).ret, "ENOENT");
        assert_eq!(expect_row(&out, &d.join("full")).ret, "ENOTEMPTY");
        let _ = fs::remove_dir_all(&d);
    }
);

bpf_test!(
    fn paths_cross_mounts_and_deep_paths_are_marked() {
        let d = workdir("mounts");
        let mnt = d.join("mnt");
        fs::create_dir_all(&mnt).unwrap();
        // SAFETY: mount reads NUL-terminated strings (or null) alive across the call.
        let mounted = unsafe {
            libc::mount(
                c"none".as_ptr(),
                c(&mnt).as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        } == 0;
        let inner = mnt.join("inner");
        fs::create_dir_all(&inner).unwrap();
        touch(&inner.join("f"));
        // Deeper than the BPF side walks (64 levels): the top is cut and marked with "...".
        let mut deep = d.join("deep");
        for _ in 0..70 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        touch(&deep.join("g"));

        let t = tracer(&[]);
        run_traced(Command::new("rm").arg("f").current_dir(&inner));
        run_traced(Command::new("rm").arg("g").current_dir(&deep));
        let last = d.join("last");
        touch(&last);
        fs::remove_file(&last).unwrap();
        let out = stop_after(t, &last);
        if mounted {
            // SAFETY: target is a NUL-terminated path; the mount is this test's own.
            unsafe { libc::umount2(c(&mnt).as_ptr(), libc::MNT_DETACH) };
        }
        expect_row(&out, &inner.join("f"));
        let tail = format!("{}/g", "/d".repeat(40));
        let deep_line = out
            .stdout
            .lines()
            .find(|l| l.ends_with(&tail))
            .unwrap_or_else(|| panic!("no row for the deep file: {out:?}"));
        let path = deep_line.split_whitespace().last().unwrap();
        assert!(path.starts_with(".../d/"), "{path}");
        let _ = fs::remove_dir_all(&d);
    }
);

bpf_test!(
    fn pid_uid_name_and_failed_filters() {
        let d = workdir("filters");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let path = |n: &str| d.join(n);
        for n in ["by-me", "by-child", "by-nobody", "by-root", "by-rm", "ok"] {
            touch(&path(n));
        }
        fs::create_dir(path("by-rmdir")).unwrap();
        let me = std::process::id().to_string();
        let nobody = 65534u32;

        let by_pid = tracer(&["-p", &me]);
        let by_uid = tracer(&["-u", &nobody.to_string()]);
        let by_name = tracer(&["-n", "rmdi"]);
        let failed = tracer(&["-x"]);

        fs::remove_file(path("by-me")).unwrap();
        run_traced(Command::new("rm").arg(path("by-child")));
        run_traced(
            Command::new("rm")
                .arg(path("by-nobody"))
                .uid(nobody)
                .gid(nobody),
        );
        run_traced(Command::new("rm").arg(path("by-root")));
        run_traced(Command::new("rm").arg(path("by-rm")));
        run_traced(Command::new("rmdir").arg(path("by-rmdir")));
        fs::remove_file(path("ok")).unwrap();
        let missing = path("missing");
        // SAFETY: the paths are NUL-terminated C strings alive across the call.
        assert_eq!(unsafe { libc::unlink(c(&missing).as_ptr()) }, -1);
        // The last event the uid, name and failed tracers all let through.
        let last = path("last-missing");
        run_traced(Command::new("rmdir").arg(&last).uid(nobody).gid(nobody));

        let out = stop_after(by_pid, &missing);
        assert!(row(&out, &path("by-me")).is_some(), "{out:?}");
        assert!(row(&out, &path("by-child")).is_none(), "{out:?}");

        let out = stop_after(by_uid, &last);
        assert_eq!(expect_row(&out, &path("by-nobody")).uid, nobody);
        assert!(row(&out, &path("by-root")).is_none(), "{out:?}");

        let out = stop_after(by_name, &last);
        assert!(row(&out, &path("by-rmdir")).is_some(), "{out:?}");
        assert!(row(&out, &path("by-rm")).is_none(), "{out:?}");

        let out = stop_after(failed, &last);
        assert_eq!(expect_row(&out, &missing).ret, "ENOENT");
        assert!(row(&out, &path("ok")).is_none(), "{out:?}");
        assert!(row(&out, &path("by-rm")).is_none(), "{out:?}");
        let _ = fs::remove_dir_all(&d);
    }
);

bpf_test!(
    fn json_lines_have_stable_fields() {
        let d = workdir("json");
        let file = d.join("file");
        let dir = d.join("dir");
        touch(&file);
        fs::create_dir(&dir).unwrap();
        let t = tracer(&["--json"]);
        let rm = run_traced(Command::new("rm").arg("file").current_dir(&d));
        fs::remove_dir(&dir).unwrap();
        let missing = d.join("missing");
        // SAFETY: the paths are NUL-terminated C strings alive across the call.
        assert_eq!(unsafe { libc::unlink(c(&missing).as_ptr()) }, -1);
        let out = stop_after(t, &missing);
        let records = out.json();
        let by_path = |p: &Path| {
            records
                .iter()
                .find(|r| r["file.path"] == p.to_str().unwrap())
                .unwrap_or_else(|| panic!("no record for {}: {out:?}", p.display()))
        };
        let r = by_path(&file);
        assert_eq!(r["process.pid"], rm);
        assert_eq!(r["process.executable.name"], "rm");
        assert_eq!(r["process.real_user.id"], 0);
        assert_eq!(r["op"], "unlink");
        assert_eq!(r["ret"], 0);
        assert!(r["error.type"].is_null());
        assert!(r["lat_us"].as_f64().unwrap() > 0.0);
        assert!(r["time"].as_str().unwrap().contains('T'));
        assert_eq!(by_path(&dir)["op"], "rmdir");
        let r = by_path(&missing);
        assert_eq!(r["ret"], -libc::ENOENT);
        assert_eq!(r["error.type"], "ENOENT");
        let _ = fs::remove_dir_all(&d);
    }
);

/// What `--check --json` says about each method.
fn methods_here() -> Vec<(String, bool)> {
    let out = Command::new(common::bin("unlinksnoop"))
        .args(["--check", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

bpf_test!(
    fn forcing_a_method_this_kernel_lacks_fails_in_one_line() {
        let methods = methods_here();
        let working: Vec<&str> = methods
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(m, _)| m.as_str())
            .collect();
        assert!(!working.is_empty(), "no method works: {methods:?}");
        for (m, ok) in &methods {
            if *ok {
                continue;
            }
            let out = Command::new(common::bin("unlinksnoop"))
                .args(["--attach", m])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let can = format!("this kernel can do: --attach {}", working.join(" or "));
            assert_one_line_error(
                out.status.code().unwrap_or(-1),
                &stderr,
                &[&format!("cannot attach with {m}"), &can],
            );
        }
        // A method this tool has no programs for.
        let out = Command::new(common::bin("unlinksnoop"))
            .args(["--attach", "uprobe"])
            .output()
            .unwrap();
        assert_one_line_error(
            out.status.code().unwrap_or(-1),
            &String::from_utf8_lossy(&out.stderr),
            &[
                "'uprobe' is not an attach method of unlinksnoop",
                "give auto, fentry, kprobe, tracepoint",
            ],
        );
    }
);

bpf_test!(
    fn check_says_what_the_kernel_offers_and_what_each_tool_uses() {
        for tool in ["unlinksnoop", "execsnoop", "exitsnoop"] {
            let (code, out, err) = common::run_tool(tool, &["--check"]);
            assert_eq!(code, 0, "{tool}: {err}");
            for feature in [
                "BTF",
                "ring buffer",
                "fentry/fexit",
                "kprobes",
                "tracepoints",
                "uprobes",
            ] {
                assert!(
                    out.lines().any(|l| l.trim_start().starts_with(feature)),
                    "{tool}: no {feature} line: {out}"
                );
            }
            assert!(out.contains(&format!("{tool}:\n")), "{out}");
            let would = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("would use:"))
                .unwrap_or_else(|| panic!("{tool}: no 'would use': {out}"));
            assert!(
                ["fentry", "kprobe", "tracepoint"].contains(&would.trim()),
                "{out}"
            );
        }
        // What unlinksnoop says it would use is what it then attaches with.
        let would = methods_here()
            .into_iter()
            .find(|(_, ok)| *ok)
            .map(|(m, _)| m)
            .unwrap();
        let t = Traced::start_cmd({
            let mut c = Command::new(common::bin("unlinksnoop"));
            c.arg("-v");
            c
        });
        let out = t.stop();
        assert!(
            out.stderr.contains(&format!("attached with {would}")),
            "{out:?}"
        );
    }
);

#[test]
fn bad_input_is_one_line_and_nonzero() {
    for (args, words) in [
        (&["--attach", "ebpf"][..], &["ebpf", "fentry"][..]),
        (&["-n", "a-name-longer-than-15"], &["15 bytes"]),
        (&["-p", "2147483647"], &["no process"]),
    ] {
        let (code, _, err) = common::run_tool("unlinksnoop", args);
        assert_one_line_error(code, &err, words);
    }
}

/// Records (not loss records) of a `--json` run.
fn events(out: &Finished) -> Vec<serde_json::Value> {
    out.json()
        .into_iter()
        .filter(|r| r.get("process.pid").is_some())
        .collect()
}

/// `n` files with long names in a fresh directory that anyone may remove from.
fn files_anyone_may_remove(tag: &str, n: usize) -> Vec<PathBuf> {
    let d = workdir(tag);
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    (0..n)
        .map(|i| {
            let p = d.join(format!("{i:04}-{}", "r".repeat(200)));
            touch(&p);
            p
        })
        .collect()
}

/// Removes `files` with `rm -f` (one unlinkat per file) as `uid`, split among `parallel`
/// processes running at once.
fn rm_as(uid: u32, files: &[PathBuf], parallel: usize) {
    let chunk = files.len().div_ceil(parallel);
    std::thread::scope(|s| {
        for part in files.chunks(chunk) {
            s.spawn(move || {
                run_traced(Command::new("rm").arg("-f").args(part).uid(uid).gid(uid));
            });
        }
    });
    for f in files {
        assert!(!f.exists(), "{} was not removed", f.display());
    }
}

/// The count at the start of the stderr line "unlinksnoop: N <what> (<advice>...".
fn stderr_count(out: &Finished, what_and_advice: &str) -> u64 {
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("unlinksnoop: ") && l.contains(what_and_advice))
        .unwrap_or_else(|| panic!("no line with {what_and_advice:?} on stderr: {out:?}"));
    line["unlinksnoop: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

bpf_test!(
    fn a_full_ring_buffer_is_counted_exactly() {
        // Only this test's removals count (-u with a UID nobody else runs as), so shown + lost must
        // be exactly what happened.
        const N: usize = 200;
        let uid = common::unused_uid();
        let u = uid.to_string();
        let files = files_anyone_may_remove("ringfull", N);
        let t = tracer(&["--json", "--ringbuf-size", "4", "-u", &u]);
        // Freeze the consumer: a 4 KiB ring holds about a dozen of these records.
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
        unsafe { libc::kill(t.pid() as i32, libc::SIGSTOP) };
        rm_as(uid, &files, 1);
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
        unsafe { libc::kill(t.pid() as i32, libc::SIGCONT) };
        let out = t.stop();
        let shown = events(&out).len() as u64;
        let (total, by_cause) = common::final_losses(&out);
        let (key, what) = common::buffer_full();
        let lost = by_cause[key].as_u64().unwrap();
        assert!(lost > 0, "a 4 KiB ring held {N} records: {out:?}");
        assert_eq!(
            shown + lost,
            N as u64,
            "shown {shown} + lost {lost}: {by_cause:?}"
        );
        assert_eq!(total, lost, "no other cause: {by_cause:?}");
        assert_eq!(by_cause["inflight_full"], 0);
        assert_eq!(by_cause["no_return"], 0);
        assert_eq!(by_cause["probe_skipped"], 0);
        assert_eq!(stderr_count(&out, what), lost);
        let _ = fs::remove_dir_all(files[0].parent().unwrap());
    }
);

bpf_test!(
    fn a_full_inflight_table_is_counted_so_shown_plus_lost_is_every_removal() {
        let uid = common::unused_uid();
        let u = uid.to_string();
        // One slot for removals in flight, and removals from two processes at once: some find the
        // slot taken. Repeated until that has happened at least once.
        let t = tracer(&["--json", "-u", &u, "--max-inflight", "1"]);
        let mut happened = 0;
        let mut dirs = Vec::new();
        for round in 0..20 {
            let files = files_anyone_may_remove(&format!("inflight{round}"), 400);
            rm_as(uid, &files, 2);
            happened += files.len() as u64;
            dirs.push(files[0].parent().unwrap().to_path_buf());
            if t.wait_for(Duration::from_secs(3), |out| {
                out.contains("\"inflight_full\":") && !out.contains("\"inflight_full\":0")
            }) {
                break;
            }
        }
        let out = t.stop();
        let shown = events(&out).len() as u64;
        let (total, by_cause) = common::final_losses(&out);
        let lost = by_cause["inflight_full"].as_u64().unwrap();
        assert!(lost > 0, "two removal loops never collided: {}", out.stderr);
        assert_eq!(total, lost, "no other cause: {by_cause:?}");
        assert_eq!(shown + lost, happened, "{by_cause:?}");
        assert_eq!(
            stderr_count(
                &out,
                "removals lost: the table of removals in flight was full (raise --max-inflight"
            ),
            lost
        );
        for d in dirs {
            let _ = fs::remove_dir_all(d);
        }
    }
);

#[test]
fn flags_out_of_range_are_refused_naming_the_flag_and_range() {
    for (args, words) in [
        (
            &["--max-inflight", "0"][..],
            &["--max-inflight", "1..=16384"][..],
        ),
        (
            &["--max-inflight", "16385"],
            &["--max-inflight", "1..=16384"],
        ),
        (&["-u", "4294967295"], &["--uid", "0 to 4294967294"]),
        (&["-u", "-5"], &["--uid", "0 to 4294967294"]),
        (
            &["--ringbuf-size", "3"],
            &["--ringbuf-size", "4 and 1048576"],
        ),
        (&["--timeout", "0"], &["--timeout", "more than 0"]),
        (
            &["--attach", "uprobe"],
            &["--attach", "give auto, fentry, kprobe, tracepoint"],
        ),
        (
            &["--attach", "foo"],
            &["--attach", "give auto, fentry, kprobe, tracepoint"],
        ),
        (&["-n", ""], &["--name", "must not be empty"]),
    ] {
        let (code, _, err) = common::run_tool("unlinksnoop", args);
        assert_one_line_error(code, &err, words);
        assert_eq!(code, 2, "{args:?}: usage errors exit 2: {err}");
        assert!(
            !err.contains("uprobe,") && !err.contains("or uprobe"),
            "{err}"
        );
    }
}
