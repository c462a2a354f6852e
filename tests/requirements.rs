//! What the tools need, measured. Each tool runs as user nobody under exactly the capabilities
//! README's "Requirements" table lists for it (capsh gives them as ambient capabilities, and
//! the test checks /proc/self/status for the exact set) and sees an event the test makes;
//! without any one of them it fails in one line naming the capability. `--check` agrees: it
//! exits 0 only where the tool runs, states the tool's minimum kernel and the probes behind it.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_one_line_error, bin, marker, Traced};
use serde_json::Value;

const TRACEPOINTS: &[&str] = &["cap_bpf", "cap_perfmon", "cap_dac_read_search"];
const KERNEL_STACKS: &[&str] = &[
    "cap_bpf",
    "cap_perfmon",
    "cap_dac_read_search",
    "cap_syslog",
];
const UPROBES: &[&str] = &["cap_sys_admin"];
const UPROBES_OTHER_USER: &[&str] = &["cap_sys_admin", "cap_sys_ptrace"];

/// Each mode as README's capability table names it (first column), the arguments that start it
/// here, and its capability set.
const MODES: &[(&str, &[&str], &[&str])] = &[
    ("execsnoop", &[], TRACEPOINTS),
    ("exitsnoop", &[], TRACEPOINTS),
    ("unlinksnoop", &[], TRACEPOINTS),
    ("kmemleak-lite", &[], KERNEL_STACKS),
    ("kmemleak-lite -c CMD", &["-c", "/bin/sleep 30"], UPROBES),
    ("uprobe-lat", &["libc:malloc"], UPROBES),
];

#[test]
fn modes_cover_every_tool() {
    // Every tool of the registry (coretrace --list-tools), in its order: a new tool needs its
    // modes here.
    let mut tools: Vec<&str> = MODES
        .iter()
        .map(|(mode, _, _)| mode.split(' ').next().unwrap())
        .collect();
    tools.dedup();
    assert_eq!(tools, common::tools());
}

fn cap_number(name: &str) -> u32 {
    match name {
        "cap_dac_read_search" => 2,
        "cap_sys_ptrace" => 19,
        "cap_sys_admin" => 21,
        "cap_syslog" => 34,
        "cap_perfmon" => 38,
        "cap_bpf" => 39,
        other => panic!("no number for {other}"),
    }
}

/// `program args` as user nobody with exactly `caps` in its permitted, effective and ambient
/// sets: capsh keeps its own capabilities across the change of user (--keep=1), then raises
/// `caps` as ambient ones, which are all that survive the exec of the shell and the tool.
fn with_caps(caps: &[&str], program: &str, args: &[&str]) -> Command {
    assert!(
        Path::new("/sbin/capsh").exists() || Path::new("/usr/sbin/capsh").exists(),
        "capsh is missing: install libcap2-bin (tools/setup-debian.sh does)"
    );
    let list = caps.join(",");
    let mut spec = "cap_setpcap,cap_setuid,cap_setgid+ep".to_string();
    if !caps.is_empty() {
        spec = format!("{list}+eip {spec}");
    }
    let mut cmd = Command::new("capsh");
    cmd.arg(format!("--caps={spec}"))
        .args(["--keep=1", "--user=nobody"]);
    if !caps.is_empty() {
        cmd.arg(format!("--addamb={list}"));
    }
    cmd.args(["--", "-c", "exec \"$0\" \"$@\"", program])
        .args(args);
    cmd
}

/// Asserts that `with_caps` really gives exactly `caps` (and nothing else) to what it runs.
fn assert_exactly(caps: &[&str]) {
    let out = with_caps(caps, "/bin/cat", &["/proc/self/status"])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    let want: u64 = caps.iter().map(|c| 1u64 << cap_number(c)).sum();
    for field in ["CapPrm:", "CapEff:", "CapAmb:"] {
        let got = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("no {field} in {status} ({out:?})"));
        assert_eq!(got, want, "{field} under capsh for {caps:?}: {status}");
    }
    assert!(status.contains("Uid:\t65534"), "not nobody: {status}");
}

/// Starts `tool args -v` under exactly `caps` and waits until it has attached.
fn start_with(caps: &[&str], tool: &str, args: &[&str]) -> Traced {
    assert_exactly(caps);
    let mut all = args.to_vec();
    all.push("-v");
    Traced::start_cmd(with_caps(caps, &bin(tool), &all))
}

/// Runs `tool args` under `caps` to its end: (exit code, stdout, stderr).
fn run_with(caps: &[&str], tool: &str, args: &[&str]) -> (i32, String, String) {
    let out = with_caps(caps, &bin(tool), args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cap_name(cap: &str) -> String {
    cap.to_uppercase()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

bpf_test!(
    fn capsh_gives_exactly_the_set_asked_for() {
        for set in [TRACEPOINTS, KERNEL_STACKS, UPROBES, UPROBES_OTHER_USER, &[]] {
            assert_exactly(set);
        }
    }
);

bpf_test!(
    fn execsnoop_sees_an_exec_with_bpf_perfmon_dac_read_search() {
        let m = marker("capexec");
        let t = start_with(TRACEPOINTS, "execsnoop", &["--json"]);
        common::run_traced(Command::new("/bin/echo").arg(&m));
        let seen = t.wait_for(Duration::from_secs(20), |out| out.contains(&m));
        let out = t.stop();
        assert!(seen, "{out:?}");
        let rows: Vec<Value> = json_lines(&out.stdout)
            .into_iter()
            .filter(|r| r["process.command_args"][1] == m.as_str())
            .collect();
        assert_eq!(rows.len(), 1, "{out:?}");
        assert_eq!(rows[0]["ret"], 0);
    }
);

bpf_test!(
    fn exitsnoop_sees_an_exit_with_bpf_perfmon_dac_read_search() {
        let t = start_with(TRACEPOINTS, "exitsnoop", &["--json"]);
        let pid = common::run_traced(Command::new("/bin/sh").args(["-c", "exit 7"]));
        let seen = t.wait_for(Duration::from_secs(20), |out| {
            json_lines(out).iter().any(|r| r["process.pid"] == pid)
        });
        let out = t.stop();
        assert!(seen, "{out:?}");
        let row = json_lines(&out.stdout)
            .into_iter()
            .find(|r| r["process.pid"] == pid)
            .unwrap();
        assert_eq!(row["process.exit.code"], 7, "{row}");
    }
);

bpf_test!(
    fn unlinksnoop_sees_a_removal_with_bpf_perfmon_dac_read_search() {
        let path = std::env::temp_dir().join(marker("capunlink"));
        let t = start_with(TRACEPOINTS, "unlinksnoop", &["--json"]);
        std::fs::write(&path, b"x").unwrap();
        std::fs::remove_file(&path).unwrap();
        let shown = path.to_str().unwrap().to_string();
        let seen = t.wait_for(Duration::from_secs(20), |out| out.contains(&shown));
        let out = t.stop();
        assert!(seen, "{out:?}");
        assert!(out.stderr.contains("attached with tracepoint"), "{out:?}");
        let row = json_lines(&out.stdout)
            .into_iter()
            .find(|r| r["file.path"] == shown.as_str())
            .unwrap();
        assert_eq!(row["ret"], 0, "{row}");
        assert_eq!(row["process.pid"], std::process::id(), "{row}");
    }
);

/// Allocations through alloc_pipe_info in the last JSON report: a named kernel frame.
fn pipe_allocations(stdout: &str) -> u64 {
    let Some(report) = json_lines(stdout).pop() else {
        return 0;
    };
    report["stacks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["frames"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["code.function.name"] == "alloc_pipe_info")
        })
        .map(|s| s["allocations"].as_u64().unwrap_or(0))
        .sum()
}

bpf_test!(
    fn kmemleak_lite_kernel_mode_names_kernel_frames_with_its_set() {
        const PIPES: u64 = 100;
        let t = start_with(
            KERNEL_STACKS,
            "kmemleak-lite",
            &["--json", "-i", "0.5", "-T", "500"],
        );
        let mut fds = Vec::new();
        for _ in 0..PIPES {
            let mut p = [0i32; 2];
            // SAFETY: pipe writes two fds into a 2-element array.
            assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
            fds.extend(p);
        }
        // Pipes this test holds, on a stack named down to alloc_pipe_info: kallsyms was readable.
        let seen = t.wait_for(Duration::from_secs(20), |out| {
            pipe_allocations(out) >= PIPES
        });
        for fd in fds {
            // SAFETY: closes an fd this test opened, once.
            unsafe { libc::close(fd) };
        }
        let out = t.stop();
        assert!(
            seen,
            "no {PIPES} pipe allocations named alloc_pipe_info: {}",
            &out.stdout[out.stdout.len().saturating_sub(3000)..]
        );
    }
);

bpf_test!(
    fn kmemleak_lite_command_mode_finds_the_leak_with_cap_sys_admin() {
        let leaky = common::build_c_program(
            "leaky",
            &["-O0", "-g", "-fno-omit-frame-pointer", "-fno-inline"],
        );
        let command = format!("{} run 1.2", leaky.display());
        let t = start_with(UPROBES, "kmemleak-lite", &["-c", &command, "--json"]);
        let out = t.wait(Duration::from_secs(60));
        assert!(out.status.success(), "{out:?}");
        let named = json_lines(&out.stdout).iter().any(|r| {
            r["stacks"].as_array().into_iter().flatten().any(|s| {
                s["bytes"] == 8 * 65536
                    && s["frames"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|f| f["code.function.name"] == "leak_big")
            })
        });
        assert!(named, "{out:?}");
    }
);

/// uprobe_target (tests/programs) waiting for the word to go: (child, its stdin).
fn uprobe_target(args: &[&str]) -> (std::process::Child, std::process::ChildStdin) {
    let exe = common::build_c_program("uprobe_target", &["-O1", "-g", "-fno-inline"]);
    let mut child = common::spawn_ready(Command::new(&exe).args(args).stdin(Stdio::piped()));
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

fn exe_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Runs uprobe-lat on noop_fn of a target run by root (the test), under `caps`; returns the
/// count of its histogram.
fn uprobe_lat_counts(caps: &[&str], by_pid: bool) -> u64 {
    const CALLS: u64 = 50;
    let (mut child, mut stdin) = uprobe_target(&["loop", &CALLS.to_string()]);
    let pid = child.id().to_string();
    let target = format!("{}:noop_fn", exe_of(child.id()));
    let mut args = vec!["--json", "--no-calibrate"];
    if by_pid {
        args.extend(["-p", &pid]);
    }
    args.push(&target);
    let t = start_with(caps, "uprobe-lat", &args);
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    let out = t.stop();
    assert!(out.status.success(), "{out:?}");
    json_lines(&out.stdout)
        .iter()
        .find(|v| v["event.name"] == "latency_histogram" && v["code.function.name"] == "noop_fn")
        .unwrap_or_else(|| panic!("no histogram: {out:?}"))["count"]
        .as_u64()
        .unwrap()
}

bpf_test!(
    fn uprobe_lat_times_calls_with_cap_sys_admin() {
        assert_eq!(uprobe_lat_counts(UPROBES, false), 50);
    }
);

bpf_test!(
    fn another_users_process_needs_cap_sys_ptrace() {
        // With it, uprobe-lat -p follows a process of root's.
        assert_eq!(uprobe_lat_counts(UPROBES_OTHER_USER, true), 50);
        // Without it, both -p tools say so in one line.
        let (mut child, _stdin) = uprobe_target(&["loop", "1"]);
        let pid = child.id().to_string();
        let target = format!("{}:noop_fn", exe_of(child.id()));
        for (tool, args) in [
            ("uprobe-lat", vec!["-p", &pid, &target]),
            ("kmemleak-lite", vec!["-p", &pid]),
        ] {
            let (code, _, err) = run_with(UPROBES, tool, &args);
            assert_one_line_error(code, &err, &["needs CAP_SYS_PTRACE", &pid]);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
);

/// Whether /proc/kallsyms shows addresses to a process without CAP_SYSLOG here.
fn kallsyms_open_to_all() -> bool {
    let read = |f: &str| {
        std::fs::read_to_string(f)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    read("/proc/sys/kernel/kptr_restrict") == Some(0)
        && read("/proc/sys/kernel/perf_event_paranoid").is_some_and(|p| p <= 1)
}

bpf_test!(
    fn each_capability_of_a_set_is_needed_and_named() {
        for &(mode, args, set) in MODES {
            let tool = mode.split(' ').next().unwrap();
            for &cap in set {
                if cap == "cap_syslog" && kallsyms_open_to_all() {
                    // README: CAP_SYSLOG only where kallsyms hides addresses (not on this host).
                    continue;
                }
                let fewer: Vec<&str> = set.iter().copied().filter(|&c| c != cap).collect();
                let mut all = args.to_vec();
                all.extend(["--timeout", "5"]);
                let (code, _, err) = run_with(&fewer, tool, &all);
                assert_one_line_error(code, &err, &[&format!("needs {}", cap_name(cap))]);
                // --check agrees: it fails, the reason naming the capability on its last line.
                let mut check = args.to_vec();
                check.push("--check");
                let (code, out, err) = run_with(&fewer, tool, &check);
                assert_eq!(code, 1, "{mode} --check without {cap}: {out}{err}");
                let last = err.lines().last().unwrap_or("");
                assert!(
                    last.contains(&format!("needs {}", cap_name(cap))),
                    "{mode} --check without {cap}: {err}"
                );
                assert!(
                    out.lines().any(|l| l.trim() == "would use:    nothing"),
                    "{out}"
                );
            }
            // And the whole set is enough for --check's real load and attach.
            let mut check = args.to_vec();
            check.push("--check");
            let (code, out, err) = run_with(set, tool, &check);
            assert_eq!(code, 0, "{mode} --check with {set:?}: {out}{err}");
        }
    }
);

/// The other cells of the README table row whose first cell is `first` (in backquotes) and
/// whose second cell satisfies `which` (the capability and the kernel tables share first cells).
fn readme_row(first: &str, which: impl Fn(&str) -> bool) -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = format!("| `{first}` |");
    readme
        .lines()
        .filter(|l| l.starts_with(&start))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .skip(1)
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().is_some_and(|c| which(c)))
        .unwrap_or_else(|| panic!("README has no such table row for `{first}`"))
}

fn capability_row(mode: &str) -> Vec<String> {
    readme_row(mode, |c| c.contains("CAP_"))
}

fn kernel_row(tool: &str) -> Vec<String> {
    readme_row(tool, |c| c.starts_with(|ch: char| ch.is_ascii_digit()))
}

#[test]
fn readme_lists_the_capability_sets_these_tests_use() {
    for &(mode, _, set) in MODES {
        let row = capability_row(mode);
        let listed: BTreeSet<String> = row[0]
            .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .filter(|w| w.starts_with("CAP_"))
            .map(String::from)
            .collect();
        let used: BTreeSet<String> = set.iter().map(|c| cap_name(c)).collect();
        assert_eq!(listed, used, "README's capabilities for `{mode}`");
    }
    // What another_users_process_needs_cap_sys_ptrace measures.
    for mode in ["kmemleak-lite -p PID", "uprobe-lat -p PID"] {
        let row = capability_row(mode);
        assert!(
            row[0].contains("CAP_SYS_ADMIN") && row[0].contains("CAP_SYS_PTRACE"),
            "README's capabilities for `{mode}`: {row:?}"
        );
    }
}

bpf_test!(
    fn check_passes_here_names_its_method_and_the_probes_behind_the_minimum_kernel() {
        for (tool, method, kernel) in [
            ("execsnoop", "tracepoint", "5.5"),
            ("exitsnoop", "tracepoint", "5.5"),
            ("unlinksnoop", "tracepoint", "5.5"),
            ("kmemleak-lite", "tracepoint", "5.5"),
            ("uprobe-lat", "uprobe", "5.5"),
        ] {
            let (code, out, err) = common::run_tool(tool, &["--check"]);
            assert_eq!(code, 0, "{tool}: {out}{err}");
            // uprobe-lat also says which of its paths (attach cookies or not) it would take.
            assert!(
                out.lines().any(|l| {
                    let l = l.trim();
                    l == format!("would use:    {method}")
                        || (tool == "uprobe-lat"
                            && l.starts_with(&format!("would use:    {method} (")))
                }),
                "{tool}: {out}"
            );
            let (code, out, err) = common::run_tool(tool, &["--check", "--json"]);
            assert_eq!(code, 0, "{tool}: {err}");
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["ok"], true, "{v}");
            assert_eq!(v["would_use"], method, "{v}");
            assert_eq!(v["ring_buffer"], true, "{v}");
            // Probed for every tool (uprobe-lat uses them where they exist); true here.
            assert_eq!(v["attach_cookies"], true, "{v}");
            assert_eq!(v["min_kernel"]["version"], kernel, "{tool}: {v}");
            let needs: Vec<&str> = v["min_kernel"]["needs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            assert_eq!(needs, ["transport"], "{tool}: {v}");
            // What the kernel must offer is a field of the report: here the ring buffer.
            assert_eq!(v["transport"], "ring buffer", "{tool}: {v}");
            // README's kernel table says the same.
            assert_eq!(
                kernel_row(tool)[0],
                kernel,
                "README's minimum kernel for {tool}"
            );
        }
    }
);

bpf_test!(
    fn check_of_an_impossible_method_fails_with_the_reason() {
        let (_, out, _) = common::run_tool("unlinksnoop", &["--check", "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let refused: Vec<String> = v["methods"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["ok"] == false)
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect();
        // This host refuses fentry (KERNEL-FACTS.md); any refused method makes the point.
        let method = refused.first().unwrap_or_else(|| {
            panic!("every method works here: nothing impossible to force ({v})")
        });
        let (code, out, err) = common::run_tool("unlinksnoop", &["--check", "--attach", method]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.lines().any(|l| l.trim() == "would use:    nothing"),
            "{out}"
        );
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with(&format!("unlinksnoop: cannot attach with {method}: "))
                && last.contains("this kernel can do: --attach"),
            "{err}"
        );
    }
);

/// README: "No LRU maps: an eviction could not be counted." Every BPF map that can drop an
/// entry must fail the update instead, where the tool counts it.
#[test]
fn no_bpf_program_uses_an_lru_map() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bpf");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("No LRU maps"), "README's claim changed");
    assert!(
        readme.contains("`cgroup_sent`"),
        "README's exception changed"
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "vmlinux.h" || !(name.ends_with(".c") || name.ends_with(".h")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            // README's one exception: cgroup_sent, whose eviction only sends a name again.
            let map_name = lines[i..(i + 5).min(lines.len())]
                .iter()
                .find_map(|l| l.strip_prefix("} ")?.split_whitespace().next());
            if name == "common.bpf.h" && map_name == Some("cgroup_sent") {
                continue;
            }
            assert!(
                !line.contains("BPF_MAP_TYPE_LRU"),
                "{name}:{}: an LRU map evicts without a count: {line}",
                i + 1
            );
        }
    }
}
