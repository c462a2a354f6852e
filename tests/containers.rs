//! Which container an event came from: real cgroups named the way Docker, containerd, CRI-O,
//! Podman and the kubelet name theirs (under a test-owned parent in the cgroup v2 mount, and in
//! the v1 memory hierarchy as Docker's cgroupfs driver does on a hybrid host), a test process
//! moved into each, and what the tools print about it.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, marker, run_tool, Finished, Traced};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);
const POD_UID: &str = "0c5b2e1a-7f3d-4c8e-9a6b-2d1e0f9c8b7a";

/// Where a file system of `fstype` (with `option` among its options, if given) is mounted.
fn mount_of(fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let ok = f.get(2) == Some(&fstype)
            && option.is_none_or(|o| f.get(3).is_some_and(|opts| opts.split(',').any(|x| x == o)));
        ok.then(|| PathBuf::from(f[1]))
    })
}

fn v2_mount() -> PathBuf {
    mount_of("cgroup2", None).expect("this test needs cgroup v2 mounted (see /proc/mounts)")
}

/// The v1 memory hierarchy: where the host mounts it (a hybrid host), or else mounted by the
/// test (a v2 host where no v2 cgroup uses the memory controller, as in the kernel-matrix
/// guests). The guard unmounts what the test mounted.
fn v1_memory_mount() -> (PathBuf, Option<V1Mount>) {
    if let Some(dir) = mount_of("cgroup", Some("memory")) {
        return (dir, None);
    }
    let dir = std::env::temp_dir().join(marker("memcg-v1"));
    std::fs::create_dir_all(&dir).unwrap();
    let target = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: mount reads NUL-terminated strings (or null) alive across the call.
    let ret = unsafe {
        libc::mount(
            c"coretrace-test".as_ptr(),
            target.as_ptr(),
            c"cgroup".as_ptr(),
            0,
            c"memory".as_ptr().cast(),
        )
    };
    assert_eq!(
        ret,
        0,
        "no cgroup v1 memory hierarchy here and mounting one failed ({}): this kernel cannot show a hybrid layout",
        std::io::Error::last_os_error()
    );
    (dir.clone(), Some(V1Mount(dir)))
}

struct V1Mount(PathBuf);

impl Drop for V1Mount {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
        // SAFETY: target is a NUL-terminated path; the mount is this test's own.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A container id (64 hex digits) unique to this run; `salt` tells a test's containers apart
/// from their first digits on.
fn container_id(salt: u64) -> String {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ (u64::from(std::process::id()) << 40);
    let a = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    format!(
        "{a:016x}{:016x}{:016x}{:016x}",
        a.rotate_left(17),
        a ^ seed,
        !a
    )
}

/// Cgroups this test made under its own parent directory, removed (deepest first) at the end.
struct TestCgroups {
    root: PathBuf,
    made: Vec<PathBuf>,
}

impl TestCgroups {
    /// A new parent directory in the hierarchy mounted at `mount`.
    fn new(mount: &Path, tag: &str) -> Self {
        let mut t = TestCgroups {
            root: mount.join(marker(tag)),
            made: Vec::new(),
        };
        t.mkdir("");
        t
    }

    /// Makes `rel` (and the directories above it) under the parent; returns its path.
    fn mkdir(&mut self, rel: &str) -> PathBuf {
        let mut dir = self.root.clone();
        if !self.made.contains(&dir) {
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            self.made.push(dir.clone());
        }
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
                self.made.push(dir.clone());
            }
        }
        dir
    }

    /// The path of `dir` as the cgroup file system names it (from the hierarchy's root).
    fn cgroup_path(&self, dir: &Path, mount: &Path) -> String {
        format!("/{}", dir.strip_prefix(mount).unwrap().display())
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        for dir in self.made.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Runs `argv` inside cgroup `dir` (a shell moves itself in, then execs it); returns its pid
/// once it has ended.
fn run_in(dir: &Path, argv: &[&str]) -> u32 {
    let script = "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"";
    common::run_traced(
        Command::new("/bin/sh")
            .args(["-c", script])
            .arg(dir)
            .args(argv),
    )
}

/// The JSON record of the exec whose last argument is `needle` (not the shell that ran it).
fn exec_record<'a>(records: &'a [Value], needle: &str) -> &'a Value {
    records
        .iter()
        .find(|r| {
            r["process.command_args"].as_array().is_some_and(|a| {
                a.last().and_then(Value::as_str) == Some(needle) && a[0].as_str() != Some("/bin/sh")
            })
        })
        .unwrap_or_else(|| panic!("no exec of {needle} in {records:#?}"))
}

fn stop_after(t: Traced, needle: &str) -> Finished {
    assert!(
        t.wait_for(WAIT, |out| out.contains(needle)),
        "{needle} never printed: {}",
        t.stdout_text()
    );
    t.stop()
}

bpf_test!(
    fn every_runtime_layout_is_attributed_in_json() {
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "layouts");
        let uid_ = POD_UID.replace('-', "_");
        let layouts = [
        ("docker", format!("system.slice/docker-{}.scope", container_id(1)), None),
        ("containerd", format!("system.slice/cri-containerd-{}.scope", container_id(2)), None),
        ("cri-o", format!("machine.slice/crio-{}.scope", container_id(3)), None),
        ("podman", format!("machine.slice/libpod-{}.scope", container_id(4)), None),
        (
            "containerd",
            format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{}.scope", container_id(5)),
            Some(POD_UID),
        ),
    ];
        let t = Traced::start("execsnoop", &["--json"]);
        let mut runs = Vec::new();
        for (i, (runtime, rel, pod)) in layouts.iter().enumerate() {
            let dir = cg.mkdir(rel);
            let m = marker(&format!("layout{i}"));
            run_in(&dir, &["/bin/true", &m]);
            runs.push((m, dir, *runtime, *pod));
        }
        let outside = marker("outside");
        common::run_traced(Command::new("/bin/true").arg(&outside));
        let out = stop_after(t, &outside);
        let records = out.json();
        for (m, dir, runtime, pod) in &runs {
            let r = exec_record(&records, m);
            let name = dir.file_name().unwrap().to_str().unwrap();
            let id = &name[name.len() - 70..name.len() - 6]; // <prefix><64 hex>.scope
            assert_eq!(r["container.id"], *id, "{r}");
            assert_eq!(r["container.runtime"], *runtime, "{r}");
            assert_eq!(
                r["process.linux.cgroup"],
                format!("0::{}", cg.cgroup_path(dir, &mount)),
                "{r}"
            );
            assert_eq!(
                r["coretrace.cgroup.id"],
                std::fs::metadata(dir).unwrap().ino(),
                "the id is the cgroup directory's inode: {r}"
            );
            match pod {
                Some(uid) => assert_eq!(r["k8s.pod.uid"], *uid, "{r}"),
                None => assert!(r.get("k8s.pod.uid").is_none(), "{r}"),
            }
        }
        let r = exec_record(&records, &outside);
        assert!(r.get("container.id").is_none(), "{r}");
        assert!(r["coretrace.cgroup.id"].is_u64(), "{r}");
    }
);

bpf_test!(
    fn column_shows_the_short_id_or_the_path() {
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "column");
        let id = container_id(11);
        let docker = cg.mkdir(&format!("system.slice/docker-{id}.scope"));
        let plain = cg.mkdir("plain.service");
        let t = Traced::start("execsnoop", &["--print-container"]);
        let (in_docker, in_plain) = (marker("col-docker"), marker("col-plain"));
        run_in(&docker, &["/bin/true", &in_docker]);
        run_in(&plain, &["/bin/true", &in_plain]);
        let out = stop_after(t, &in_plain);
        assert!(
            out.stdout.lines().next().unwrap().contains(" CONTAINER "),
            "{}",
            out.stdout
        );
        // PCOMM PID PPID RET CONTAINER ARGS, for the `true` each shell became.
        let cells_of = |m: &str| -> Vec<String> {
            let rows: Vec<&str> = out
                .lines_with(m)
                .into_iter()
                .filter(|l| l.starts_with("true "))
                .collect();
            assert_eq!(rows.len(), 1, "{}", out.stdout);
            rows[0].split_whitespace().map(String::from).collect()
        };
        assert_eq!(cells_of(&in_docker)[4], &id[..12]);
        assert_eq!(cells_of(&in_plain)[4], cg.cgroup_path(&plain, &mount));
    }
);

bpf_test!(
    fn container_filter_takes_sub_cgroups_and_leaves_others_out() {
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "filter");
        let (id, other) = (container_id(21), container_id(22));
        let scope = cg.mkdir(&format!("system.slice/docker-{id}.scope"));
        let sub = cg.mkdir(&format!("system.slice/docker-{id}.scope/init.scope"));
        let other_scope = cg.mkdir(&format!("system.slice/docker-{other}.scope"));
        let t = Traced::start("execsnoop", &["--json", "--container", &id[..12]]);
        let (m_scope, m_sub, m_other, m_outside) = (
            marker("in-scope"),
            marker("in-sub"),
            marker("other-container"),
            marker("outside"),
        );
        run_in(&other_scope, &["/bin/true", &m_other]);
        common::run_traced(Command::new("/bin/true").arg(&m_outside));
        run_in(&scope, &["/bin/true", &m_scope]);
        run_in(&sub, &["/bin/true", &m_sub]);
        let out = stop_after(t, &m_sub);
        let records = out.json();
        assert_eq!(exec_record(&records, &m_scope)["container.id"], id);
        assert_eq!(exec_record(&records, &m_sub)["container.id"], id);
        assert!(!out.stdout.contains(&m_other), "{}", out.stdout);
        assert!(!out.stdout.contains(&m_outside), "{}", out.stdout);
        // Only the container's processes crossed into user space at all: the filter is the
        // kernel's (the shells that moved themselves in are the only other execs).
        for r in records
            .iter()
            .filter(|r| r.get("process.command_args").is_some())
        {
            assert_eq!(r["container.id"], id, "{r}");
        }
    }
);

bpf_test!(
    fn v1_memory_cgroup_on_a_hybrid_host() {
        let (mount, _mounted) = v1_memory_mount();
        let mut cg = TestCgroups::new(&mount, "v1");
        let id = container_id(31);
        let dir = cg.mkdir(&format!("docker/{id}"));
        let t = Traced::start(
            "execsnoop",
            &["--json", "--print-container", "--container", &id[..10]],
        );
        let (inside, outside) = (marker("v1-in"), marker("v1-out"));
        common::run_traced(Command::new("/bin/true").arg(&outside));
        run_in(&dir, &["/bin/true", &inside]);
        let out = stop_after(t, &inside);
        let records = out.json();
        let r = exec_record(&records, &inside);
        assert_eq!(r["container.id"], id, "{r}");
        assert_eq!(r["container.runtime"], "docker", "{r}");
        let cgroup = r["process.linux.cgroup"].as_str().unwrap();
        assert!(
            cgroup.ends_with(&format!(":memory:{}", cg.cgroup_path(&dir, &mount))),
            "{r}"
        );
        assert_eq!(
            r["coretrace.cgroup.id"],
            std::fs::metadata(&dir).unwrap().ino()
        );
        assert!(!out.stdout.contains(&outside), "{}", out.stdout);
    }
);

bpf_test!(
    fn exitsnoop_attributes_the_exiting_task() {
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "exit");
        let id = container_id(41);
        let dir = cg.mkdir(&format!("machine.slice/libpod-{id}.scope"));
        let t = Traced::start("exitsnoop", &["--json", "--container", &id[..12]]);
        let outside = common::run_traced(&mut Command::new("/bin/true"));
        let pid = run_in(&dir, &["/bin/sleep", "0.1"]);
        let needle = format!("\"process.pid\":{pid},");
        let out = stop_after(t, &needle);
        let records = out.json();
        let r = records
            .iter()
            .find(|r| r["process.pid"] == pid)
            .unwrap_or_else(|| panic!("no exit of {pid}: {}", out.stdout));
        assert_eq!(r["container.id"], id, "{r}");
        assert_eq!(r["container.runtime"], "podman", "{r}");
        assert!(
            !records.iter().any(|r| r["process.pid"] == outside),
            "{}",
            out.stdout
        );

        // The column: PCOMM PID PPID TID AGE(s) CONTAINER EXIT.
        let t = Traced::start("exitsnoop", &["--print-container"]);
        let pid = run_in(&dir, &["/bin/sleep", "0.1"]);
        let needle = format!(" {pid} ");
        let out = stop_after(t, &needle);
        let header: Vec<&str> = out
            .stdout
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(header[5], "CONTAINER", "{}", out.stdout);
        let row: Vec<&str> = out.lines_with(&needle)[0].split_whitespace().collect();
        assert_eq!(row[5], &id[..12], "{}", out.stdout);
    }
);

bpf_test!(
    fn unlinksnoop_attributes_and_filters() {
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "unlink");
        let id = container_id(51);
        let dir = cg.mkdir(&format!("machine.slice/crio-{id}.scope"));
        let tmp = std::env::temp_dir();
        let (inside, outside) = (tmp.join(marker("rm-in")), tmp.join(marker("rm-out")));
        std::fs::write(&inside, b"x").unwrap();
        std::fs::write(&outside, b"x").unwrap();
        let t = Traced::start(
            "unlinksnoop",
            &["--print-container", "--container", &id[..12]],
        );
        common::run_traced(Command::new("/bin/rm").arg(&outside));
        run_in(&dir, &["/bin/rm", inside.to_str().unwrap()]);
        let name = inside.file_name().unwrap().to_str().unwrap();
        let out = stop_after(t, name);
        let row = out.lines_with(name);
        assert!(row[0].contains(&format!(" {} ", &id[..12])), "{}", row[0]);
        assert!(
            !out.stdout
                .contains(outside.file_name().unwrap().to_str().unwrap()),
            "{}",
            out.stdout
        );
    }
);

bpf_test!(
    #[ignore = "makes cgroups: needs root; run with --include-ignored (tools/test.sh does)"]
    fn unknown_and_ambiguous_prefixes_are_one_line_errors() {
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "prefix");
        // Two containers sharing their first 16 digits.
        let a = container_id(61);
        let b = format!("{}{}", &a[..16], &container_id(62)[16..]);
        assert_ne!(a, b);
        cg.mkdir(&format!("system.slice/docker-{a}.scope"));
        cg.mkdir(&format!("system.slice/docker-{b}.scope"));
        let (code, _, err) = run_tool("execsnoop", &["--container", &a[..16]]);
        assert_one_line_error(code, &err, &["ambiguous", "2 containers", "more digits"]);
        let (code, _, err) = run_tool("exitsnoop", &["--container", "0123456789abcdeffedcba"]);
        assert_one_line_error(code, &err, &["no container", "docker ps"]);
        let (code, _, err) = run_tool("unlinksnoop", &["--container", "not-hex"]);
        assert_one_line_error(code, &err, &["not a container id", "hex"]);
    }
);

bpf_test!(
    #[ignore = "unmounts cgroups in a private mount namespace: needs root; run with --include-ignored (tools/test.sh does)"]
    fn without_cgroup_file_systems_the_message_says_so() {
        use std::os::unix::process::CommandExt;
        // Every cgroup file system, deepest first, to unmount in a private mount namespace.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let cgroup_mounts: Vec<std::ffi::CString> = mounts
            .lines()
            .rev()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(2)
                    .is_some_and(|t| t.starts_with("cgroup"))
                    .then(|| std::ffi::CString::new(f[1]).unwrap())
            })
            .collect();
        let mut cmd = Command::new(common::bin("execsnoop"));
        cmd.args(["--container", "3f2a1b9c"]);
        // SAFETY: pre_exec runs in the forked child before exec: the closure makes system calls only.
        unsafe {
            cmd.pre_exec(move || {
                // Private first: an unmount must not reach the host's namespace.
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                for m in &cgroup_mounts {
                    libc::umount2(m.as_ptr(), libc::MNT_DETACH);
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_one_line_error(
            out.status.code().unwrap_or(-1),
            &err,
            &["no cgroup v2 file system", "mount"],
        );
    }
);

bpf_test!(
    fn uprobe_lat_slow_calls_and_per_pid_rows_carry_the_container() {
        let exe =
            common::build_c_program("uprobe_target", &["-O1", "-g", "-fno-inline", "-pthread"]);
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "uprobe");
        let id = container_id(71);
        let dir = cg.mkdir(&format!("system.slice/cri-containerd-{id}.scope"));
        let func = format!("{}:work_sleep", exe.display());
        let t = Traced::start(
            "uprobe-lat",
            &[
                "--json",
                "--no-calibrate",
                "--per-pid",
                "--slower-than",
                "4ms",
                "--container",
                &id[..12],
                &func,
            ],
        );
        // The same program outside the container, then inside (`run` waits for a line first).
        let go = "echo go | \"$1\" run >/dev/null";
        common::run_traced(Command::new("/bin/sh").args(["-c", go, "sh"]).arg(&exe));
        let inside = format!("echo $$ > \"$0/cgroup.procs\" && {go}");
        common::run_traced(
            Command::new("/bin/sh")
                .args(["-c", &inside])
                .arg(&dir)
                .arg(&exe),
        );
        std::thread::sleep(Duration::from_millis(300));
        let out = t.stop();
        let json = out.json();
        let slow: Vec<&Value> = json
            .iter()
            .filter(|v| v["event.name"] == "slow_call")
            .collect();
        assert!(!slow.is_empty(), "{}", out.stdout);
        let pids: std::collections::HashSet<u64> = slow
            .iter()
            .map(|v| v["process.pid"].as_u64().unwrap())
            .collect();
        assert_eq!(pids.len(), 1, "only the process inside: {}", out.stdout);
        for v in &slow {
            assert_eq!(v["container.id"], id, "{v}");
            assert_eq!(v["container.runtime"], "containerd", "{v}");
        }
        let rows: Vec<&Value> = json
            .iter()
            .filter(|v| {
                v["event.name"] == "latency_histogram" && v["code.function.name"] == "work_sleep"
            })
            .collect();
        assert_eq!(rows.len(), 1, "{}", out.stdout);
        assert_eq!(rows[0]["container.id"], id, "{}", rows[0]);

        // The column of slow calls: TIME PID TID COMM CONTAINER FUNC LAT.
        let t = Traced::start(
            "uprobe-lat",
            &[
                "--no-calibrate",
                "--slower-than",
                "4ms",
                "--print-container",
                &func,
            ],
        );
        common::run_traced(
            Command::new("/bin/sh")
                .args(["-c", &inside])
                .arg(&dir)
                .arg(&exe),
        );
        let out = stop_after(t, " work_sleep ");
        let header: Vec<&str> = out
            .stdout
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(header[4], "CONTAINER", "{}", out.stdout);
        let row: Vec<&str> = out.lines_with(" work_sleep ")[0]
            .split_whitespace()
            .collect();
        assert_eq!(row[4], &id[..12], "{}", out.stdout);
    }
);

bpf_test!(
    fn kmemleak_lite_reports_carry_the_traced_process_container() {
        let leaky = common::build_c_program(
            "leaky",
            &["-O0", "-g", "-fno-omit-frame-pointer", "-fno-inline"],
        );
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "kmemleak");
        let id = container_id(81);
        let dir = cg.mkdir(&format!("system.slice/docker-{id}.scope"));
        let mut target = common::spawn_ready(
            Command::new("/bin/sh")
                .args([
                    "-c",
                    "echo $$ > \"$0/cgroup.procs\" && exec \"$1\" wait 1.2",
                ])
                .arg(&dir)
                .arg(&leaky),
        );
        let pid = target.id().to_string();
        let metrics = std::env::temp_dir().join(format!("{}.prom", common::marker("ctm-kmem")));
        let traced = Traced::start(
            "kmemleak-lite",
            &[
                "--json",
                "-p",
                &pid,
                "-i",
                "30",
                "--metrics-file",
                metrics.to_str().unwrap(),
            ],
        );
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
        unsafe { libc::kill(target.id() as i32, libc::SIGUSR1) };
        assert!(target.wait().unwrap().success());
        let out = traced.wait(Duration::from_secs(30));
        assert!(out.status.success(), "{out:?}");
        let reports: Vec<Value> = out
            .json()
            .into_iter()
            .filter(|r| r.get("stacks").is_some())
            .collect();
        assert!(!reports.is_empty(), "{}", out.stdout);
        for r in &reports {
            assert_eq!(r["container.id"], id, "{r}");
            assert_eq!(r["container.runtime"], "docker", "{r}");
            assert_eq!(
                r["coretrace.cgroup.id"],
                std::fs::metadata(&dir).unwrap().ino()
            );
        }
        // The Prometheus gauges carry the container too, so a fleet's leaks sum by container.
        let text = std::fs::read_to_string(&metrics).unwrap();
        let _ = std::fs::remove_file(&metrics);
        let label = format!("container=\"{id}\"");
        let gauges: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("coretrace_kmemleak_outstanding_bytes{"))
            .collect();
        assert!(!gauges.is_empty(), "{text}");
        assert!(gauges.iter().all(|l| l.contains(&label)), "{text}");
    }
);

bpf_test!(
    fn pod_filter_takes_containers_started_after_the_tool() {
        let mount = v2_mount();
        let mut cg = TestCgroups::new(&mount, "pod");
        // A pod uid of this run (containers named by their ids, the pod by its uid).
        let hex = container_id(91);
        let uid = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        let other_uid = format!(
            "{}{}",
            &uid[..35],
            if uid.ends_with('0') { '1' } else { '0' }
        );
        let slice = |u: &str| {
            format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
                u.replace('-', "_")
            )
        };
        let pod = slice(&uid);
        cg.mkdir(&pod);
        let other_pod = slice(&other_uid);
        cg.mkdir(&other_pod);
        // The two pods' uids differ only in their last character: the whole uid names this one.
        let t = Traced::start("execsnoop", &["--json", "--pod", &uid]);
        // Its containers start (and one restarts) only now.
        let first = container_id(92);
        let restarted = container_id(93);
        let c1 = cg.mkdir(&format!("{pod}/cri-containerd-{first}.scope"));
        let (m1, m2, m_other, m_outside) = (
            marker("pod-first"),
            marker("pod-restarted"),
            marker("pod-other"),
            marker("pod-outside"),
        );
        run_in(&c1, &["/bin/true", &m1]);
        std::fs::remove_dir(&c1).unwrap();
        let c2 = cg.mkdir(&format!("{pod}/cri-containerd-{restarted}.scope"));
        let other = cg.mkdir(&format!(
            "{other_pod}/cri-containerd-{}.scope",
            container_id(94)
        ));
        run_in(&other, &["/bin/true", &m_other]);
        common::run_traced(Command::new("/bin/true").arg(&m_outside));
        run_in(&c2, &["/bin/true", &m2]);
        let out = stop_after(t, &m2);
        let records = out.json();
        let r1 = exec_record(&records, &m1);
        assert_eq!(r1["container.id"], first, "{r1}");
        assert_eq!(r1["k8s.pod.uid"], uid, "{r1}");
        let r2 = exec_record(&records, &m2);
        assert_eq!(r2["container.id"], restarted, "{r2}");
        assert_eq!(r2["k8s.pod.uid"], uid, "{r2}");
        assert!(!out.stdout.contains(&m_other), "{}", out.stdout);
        assert!(!out.stdout.contains(&m_outside), "{}", out.stdout);
        // Filtered in the kernel: every exec that reached user space is the pod's.
        for r in records
            .iter()
            .filter(|r| r.get("process.command_args").is_some())
        {
            assert_eq!(r["k8s.pod.uid"], uid, "{r}");
        }
        // A prefix of no pod, and of two, are one-line errors.
        let (code, _, err) = run_tool("execsnoop", &["--pod", "ffffffff-0000-ffff"]);
        assert_one_line_error(code, &err, &["no Kubernetes pod", "kubectl"]);
        let (code, _, err) = run_tool("execsnoop", &["--pod", &uid[..20]]);
        assert_one_line_error(code, &err, &["ambiguous", "2 pods"]);
        let (code, _, err) = run_tool("execsnoop", &["--pod", "not-a-uid!"]);
        assert_one_line_error(code, &err, &["not a pod uid"]);
    }
);
