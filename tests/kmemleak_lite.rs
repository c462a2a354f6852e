//! kmemleak-lite as a user runs it: against a test program that leaks known amounts from named
//! functions (user mode, -c and -p), against pipes the test holds open (kernel mode), and with
//! bad input.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{
    assert_one_line_error, build_c_program, final_losses, final_report, run_tool, Finished, Traced,
};
use serde_json::Value;

const TOOL: &str = "kmemleak-lite";

/// Kernel mode sees every process's allocations, and the stack budget (--stacks-per-second) is
/// per call site and process: kernel-mode tests run one at a time, so that the files one test's
/// workload opens neither show in another's report nor use up its stacks.
fn kernel_mode_alone() -> std::sync::MutexGuard<'static, ()> {
    static KERNEL_MODE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    KERNEL_MODE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Compiles tests/programs/NAME.c so that its stacks stay walkable (frame pointers, no inlining).
fn build_program(name: &str, extra: &[&str]) -> PathBuf {
    let mut flags = vec!["-O0", "-g", "-fno-omit-frame-pointer", "-fno-inline"];
    flags.extend_from_slice(extra);
    build_c_program(name, &flags)
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
                .any(|f| f["code.function.name"].as_str() == Some(function))
        })
        .map(|s| {
            (
                s["bytes"].as_u64().unwrap(),
                s["allocations"].as_u64().unwrap(),
            )
        })
        .collect()
}

bpf_test!(
    fn command_mode_names_the_leaking_functions_with_exact_counts() {
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
            out.stdout.contains("\"code.file.path\":\"leaky.c\""),
            "{}",
            out.stdout
        );
    }
);

bpf_test!(
    fn names_from_the_traced_program_are_escaped_in_the_text_report() {
        // The module name in each frame comes from the traced process's mappings: a file name
        // with an escape sequence must not reach the terminal.
        let leaky = build_program("leaky", &[]);
        let odd = leaky.with_file_name("leaky\x1b[2J");
        std::fs::copy(&leaky, &odd).unwrap();
        let command = format!("{} run 1.2", odd.display());
        let traced = Traced::start(TOOL, &["-c", &command, "-i", "30"]);
        let out = traced.wait(Duration::from_secs(60));
        assert!(out.status.success(), "{out:?}");
        assert!(out.stdout.contains("leak_big"), "{}", out.stdout);
        assert!(out.stdout.contains("[leaky\\x1b[2J]"), "{}", out.stdout);
        assert!(!out.stdout.contains('\x1b'), "raw ESC: {:?}", out.stdout);
        assert!(!out.stderr.contains('\x1b'), "raw ESC: {:?}", out.stderr);
    }
);

bpf_test!(
    fn pid_mode_reports_a_running_process_in_memleak_format() {
        let leaky = build_program("leaky", &[]);
        let mut target = common::spawn_ready(Command::new(&leaky).args(["wait", "1.2"]));
        let pid = target.id().to_string();
        let traced = Traced::start(TOOL, &["-p", &pid, "-i", "30", "-T", "5"]);
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
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
);

/// dlleak.c and the library it loads with dlopen once it runs (dlplugin.c).
fn dlleak_programs() -> (PathBuf, PathBuf) {
    let plugin = build_program("dlplugin", &["-shared", "-fPIC"]);
    (build_program("dlleak", &[]), plugin)
}

/// The final JSON report among the lines a run printed (a command's own lines left out).
fn final_json(out: &Finished) -> Value {
    out.stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["final"] == Value::Bool(true))
        .unwrap_or_else(|| panic!("no final report: {}", out.stdout))
}

/// The leak of a library dlopen'ed after the tool started is named, with its module. -i 60:
/// no report is made before the process ends, so its maps were read while the library was
/// mapped only because the dynamic loader's hook said it mapped one.
fn assert_dlopened_library_named(out: &Finished, plugin: &std::path::Path) {
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("probing _dl_debug_state"),
        "{}",
        out.stderr
    );
    let last = final_json(out);
    assert_eq!(
        stacks_naming(&last, "plugin_leak"),
        vec![(4000, 4)],
        "{}",
        out.stdout
    );
    let module = format!("\"module\":\"{}\"", plugin.display());
    assert!(out.stdout.contains(&module), "{module}: {}", out.stdout);
}

bpf_test!(
    fn a_library_the_command_dlopens_is_named_in_its_stacks() {
        let (dlleak, plugin) = dlleak_programs();
        let command = format!("{} {}", dlleak.display(), plugin.display());
        let out = Traced::start(TOOL, &["-c", &command, "--json", "-i", "60"])
            .wait(Duration::from_secs(60));
        assert_dlopened_library_named(&out, &plugin);
    }
);

bpf_test!(
    fn a_library_a_traced_process_dlopens_later_is_named_in_its_stacks() {
        let (dlleak, plugin) = dlleak_programs();
        let mut target = common::spawn_ready(Command::new(&dlleak).arg(&plugin).arg("wait"));
        let pid = target.id().to_string();
        let traced = Traced::start(TOOL, &["-p", &pid, "--json", "-i", "60"]);
        // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
        unsafe { libc::kill(target.id() as i32, libc::SIGUSR1) };
        assert!(target.wait().unwrap().success());
        // The tool notices the process is gone and makes its last report.
        let out = traced.wait(Duration::from_secs(30));
        assert_dlopened_library_named(&out, &plugin);
    }
);

/// In the last report: the pipe allocations outstanding (alloc_pipe_info's two, a call site only
/// pipes use, freed by kfree when both ends are closed), under their stacks and under their
/// call-site-only entries (stacks not taken).
fn pipe_infos(stdout: &str) -> Option<(u64, u64)> {
    let report = last_report(stdout)?;
    let (mut stacked, mut at_call_site) = (0, 0);
    for s in report["stacks"].as_array()? {
        if !call_site(s).is_some_and(|site| site.starts_with("alloc_pipe_info")) {
            continue;
        }
        let allocations = s["allocations"].as_u64().unwrap();
        if s["call_site_only"].is_string() {
            // The call site alone stands for the stack.
            assert_eq!(s["frames"].as_array().unwrap().len(), 1, "{s}");
            at_call_site += allocations;
        } else {
            stacked += allocations;
        }
    }
    Some((stacked, at_call_site))
}

/// Makes `n` pipes; closing is the caller's.
fn make_pipes(n: u64) -> Vec<i32> {
    let mut fds = Vec::new();
    for _ in 0..n {
        let mut p = [0i32; 2];
        // SAFETY: pipe writes two fds into a 2-element array.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        fds.extend(p);
    }
    fds
}

/// Runs kernel mode (with `extra`) while the test makes `pipes` pipes, and asserts that a report
/// shows both allocations of each (counted with their stacks or at their call site), then that
/// a report after the close shows them gone. Returns (with stacks, at the call site) as held.
fn hold_pipes(pipes: u64, extra: &[&str]) -> (u64, u64, Finished) {
    let mut args = vec!["--json", "-i", "0.5", "-o", "100", "-T", "100000"];
    args.extend_from_slice(extra);
    let traced = Traced::start(TOOL, &args);
    let fds = make_pipes(pipes);
    let held = traced.wait_for(Duration::from_secs(20), |out| {
        pipe_infos(out).is_some_and(|(a, b)| a + b >= 2 * pipes)
    });
    let at_hold = pipe_infos(&traced.stdout_text());
    for fd in fds {
        // SAFETY: closes an fd this test opened, once.
        unsafe { libc::close(fd) };
    }
    // A report taken after the close (the held count was seen before it).
    let released = traced.wait_for(Duration::from_secs(20), |out| {
        held && pipe_infos(out).is_some_and(|(a, b)| a + b < pipes / 5)
    });
    let out = traced.stop();
    assert!(out.status.success(), "{:?}", out.stderr);
    assert!(
        held,
        "never saw the {pipes} pipes' allocations (last: {at_hold:?}): {}",
        &out.stdout[out.stdout.len().saturating_sub(4000)..]
    );
    assert!(
        released,
        "pipe allocations still outstanding after close: {:?}",
        pipe_infos(&out.stdout)
    );
    let (stacked, site) = at_hold.unwrap();
    (stacked, site, out)
}

bpf_test!(
    fn kernel_mode_sees_pipes_held_and_then_released() {
        let _alone = kernel_mode_alone();
        let (_, _, out) = hold_pipes(300, &[]);
        // Runs the kernel skipped of the kmem programs (an interrupt freeing inside another BPF
        // program's run) are missed frees, that is false leaks: they must be counted, not hidden.
        let (total, by_cause) = final_losses(&out);
        assert!(by_cause.contains_key("probe_skipped"), "{by_cause:?}");
        assert_eq!(
            total,
            by_cause.values().map(|n| n.as_u64().unwrap()).sum::<u64>()
        );
    }
);

#[test]
fn bad_targets_get_one_line_and_a_failure() {
    let (code, _, err) = run_tool(TOOL, &["-p", "2147483646"]);
    assert_one_line_error(code, &err, &["no process", "2147483646"]);

    let (code, _, err) = run_tool(TOOL, &["-c", "no-such-command-kml --flag"]);
    assert_one_line_error(code, &err, &["cannot start", "no-such-command-kml"]);

    // The name as typed, escaped: no raw escape sequence reaches the terminal.
    let (code, _, err) = run_tool(TOOL, &["-c", "/tmp/no\x1b[2Jsuch-kml"]);
    assert_one_line_error(code, &err, &["cannot start '/tmp/no\\x1b[2Jsuch-kml'"]);
}

bpf_test!(
    fn static_binary_without_an_allocator_is_refused_in_one_line() {
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
);

/// Runs `leakn ARGS` under `kmemleak-lite -c ... --json EXTRA` to its end; returns (final
/// report, losses by cause, what the run printed).
fn leakn_run(args: &str, extra: &[&str]) -> (Value, serde_json::Map<String, Value>, Finished) {
    let leakn = build_program("leakn", &[]);
    let command = format!("{} {args}", leakn.display());
    let mut all = vec!["-c", command.as_str(), "--json", "-i", "60", "-T", "1000"];
    all.extend_from_slice(extra);
    let out = Traced::start(TOOL, &all).wait(Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    let report = out
        .json()
        .into_iter()
        .find(|r| r["final"] == Value::Bool(true))
        .unwrap_or_else(|| panic!("no final report: {}", out.stdout));
    let (total, by_cause) = final_losses(&out);
    assert_eq!(
        total,
        by_cause.values().map(|v| v.as_u64().unwrap()).sum::<u64>()
    );
    (report, by_cause, out)
}

/// (allocations shown, of which without a stack) in a report.
fn shown(report: &Value) -> (u64, u64) {
    let stacks = report["stacks"].as_array().unwrap();
    let count = |no_stack: bool| {
        stacks
            .iter()
            .filter(|s| !no_stack || s["stack_id"].as_i64().unwrap() < 0)
            .map(|s| s["allocations"].as_u64().unwrap())
            .sum()
    };
    (count(false), count(true))
}

bpf_test!(
    fn a_short_command_leaks_exactly_what_it_made_in_the_final_report() {
        // leakn runs for milliseconds: the default age filter (500 ms) must not hide its leaks.
        let (report, by_cause, _) = leakn_run("leak 300", &[]);
        assert_eq!(shown(&report), (300, 0), "{report}");
        assert_eq!(stacks_naming(&report, "leak_one"), vec![(300 * 64, 300)]);
        assert!(by_cause.values().all(|v| v == 0), "{by_cause:?}");
    }
);

bpf_test!(
    fn the_perf_buffer_transport_reports_the_same_leaks() {
        let leakn = build_program("leakn", &[]);
        let command = format!("{} leak 300", leakn.display());
        let args = ["-c", command.as_str(), "--json", "-i", "60", "-T", "1000"];
        let out = common::start_with_transport(TOOL, &args, "perf").wait(Duration::from_secs(60));
        assert!(out.status.success(), "{out:?}");
        let report = out
            .json()
            .into_iter()
            .find(|r| r["final"] == Value::Bool(true))
            .unwrap_or_else(|| panic!("no final report: {}", out.stdout));
        assert_eq!(shown(&report), (300, 0), "{report}");
        assert_eq!(stacks_naming(&report, "leak_one"), vec![(300 * 64, 300)]);
    }
);

bpf_test!(
    fn a_full_allocation_table_is_counted_allocation_for_allocation() {
        let (report, by_cause, _) = leakn_run("leak 300", &["--max-allocs", "100"]);
        let lost = by_cause["allocs_full"].as_u64().unwrap();
        assert_eq!(shown(&report).0, 100, "{report}");
        assert_eq!(shown(&report).0 + lost, 300, "{by_cause:?}");

        // The text run says it at exit, with the advice that fits.
        let leakn = build_program("leakn", &[]);
        let command = format!("{} leak 300", leakn.display());
        let out = Traced::start(TOOL, &["-c", &command, "--max-allocs", "100"])
            .wait(Duration::from_secs(60));
        assert!(
            out.stderr.contains(
                "kmemleak-lite: 200 allocations not tracked: the table of outstanding allocations was full (raise --max-allocs"
            ),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout.contains("6400 bytes in 100 allocations"),
            "{}",
            out.stdout
        );
    }
);

bpf_test!(
    fn lost_stack_ids_are_counted_and_their_allocations_still_shown() {
        // 100 allocations from 100 different stacks into a table of 4 stacks.
        for combined in [false, true] {
            let mut extra = vec!["--max-stacks", "4"];
            if combined {
                extra.push("--combined");
            }
            let (report, by_cause, _) = leakn_run("stacks 100", &extra);
            let lost = by_cause["stack_id_lost"].as_u64().unwrap();
            let (all, without_stack) = shown(&report);
            assert_eq!(all, 100, "combined {combined}: {report}");
            assert!(lost >= 96, "combined {combined}: {by_cause:?}");
            assert_eq!(without_stack, lost, "combined {combined}: {report}");
            assert_eq!(by_cause["allocs_full"], 0);
        }
    }
);

bpf_test!(
    fn calls_past_the_table_of_calls_in_progress_are_counted() {
        // heldalloc holds one thread inside its own malloc while main allocates 50 times: with room
        // for one call in progress, each of those 50 is counted, and nothing else is lost.
        let held = build_c_program(
            "heldalloc",
            &[
                "-O0",
                "-g",
                "-fno-omit-frame-pointer",
                "-fno-inline",
                "-pthread",
            ],
        );
        let command = format!("{} 50", held.display());
        let out = Traced::start(
            TOOL,
            &["-c", &command, "--json", "-T", "1000", "--max-threads", "1"],
        )
        .wait(Duration::from_secs(60));
        assert!(out.status.success(), "{out:?}");
        // "allocs A frees F" from the program itself.
        let said = out
            .stderr
            .lines()
            .find(|l| l.starts_with("allocs "))
            .unwrap_or_else(|| panic!("{}", out.stderr));
        let words: Vec<u64> = said
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let (made, freed) = (words[0], words[1]);
        let report = out
            .json()
            .into_iter()
            .find(|r| r["final"] == Value::Bool(true))
            .unwrap();
        let (_, by_cause) = final_losses(&out);
        let lost = by_cause["pending_full"].as_u64().unwrap();
        assert_eq!(lost, 50, "{by_cause:?}");
        assert_eq!(shown(&report).0 + lost, made - freed, "{said}: {report}");
        assert_eq!(
            stacks_naming(&report, "holder"),
            vec![(4242, 1)],
            "{report}"
        );
    }
);

bpf_test!(
    fn the_command_dies_of_sigpipe_as_under_a_shell() {
        // Rust ignores SIGPIPE; the command must not inherit that. Its status is passed on.
        let leakn = build_program("leakn", &[]);
        let command = format!("{} sigpipe", leakn.display());
        let out = Traced::start(TOOL, &["-c", &command]).wait(Duration::from_secs(60));
        assert!(
            out.stderr.contains("ended: signal 13 (SIGPIPE)"),
            "{}",
            out.stderr
        );
        assert_eq!(out.status.code(), Some(128 + 13), "{out:?}");
    }
);

bpf_test!(
    fn the_command_status_is_passed_on_as_a_shell_does() {
        let out = Traced::start(TOOL, &["-c", "sh -c 'kill -9 $$'"]).wait(Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(137), "{out:?}");
        let out = Traced::start(TOOL, &["-c", "sh -c 'exit 7'"]).wait(Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(7), "{out:?}");
    }
);

bpf_test!(
    fn ctrl_c_or_a_kill_of_the_tool_ends_the_command_too() {
        let command = "sleep 600";
        for signal in [libc::SIGINT, libc::SIGKILL] {
            let traced = Traced::start(TOOL, &["-c", command]);
            let started = format!("Started '{command}' as pid ");
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let pid: i32 = loop {
                let err = traced.stderr_text();
                // Only a whole line: the pipe may hold half of it (slow machines, the QEMU matrix).
                let whole = err
                    .lines()
                    .find(|l| l.starts_with(started.as_str()) && err.contains(&format!("{l}\n")));
                if let Some(line) = whole {
                    break line[started.len()..]
                        .split(',')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap_or_else(|e| panic!("no pid in {line:?}: {e}"));
                }
                assert!(std::time::Instant::now() < deadline, "{err}");
                std::thread::sleep(Duration::from_millis(20));
            };
            // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
            assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the command runs");
            // Only the tool is signalled (no terminal sends it to the command as well).
            let out = traced.stop_with(signal);
            // A command killed with the tool is reaped by init (a zombie until then is dead).
            let gone = (0..200).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                // SAFETY: kill only sends a signal; the pid is our own child or the tracer we started.
                (unsafe { libc::kill(pid, 0) }) != 0 || is_zombie(pid)
            });
            assert!(
                gone,
                "the command (pid {pid}) outlived the tool (signal {signal}): {}",
                out.stderr
            );
            if signal == libc::SIGINT {
                assert!(
                    out.stderr.contains("ended: signal 15 (SIGTERM)"),
                    "{}",
                    out.stderr
                );
                assert_eq!(out.status.code(), Some(128 + 15), "{out:?}");
            }
        }
    }
);

#[test]
fn out_of_range_flags_get_one_line_and_a_failure() {
    for (args, words) in [
        (
            &["--ringbuf-size", "64"][..],
            &["--ringbuf-size", "does not apply"][..],
        ),
        (
            &["--ringbuf-size=256"],
            &["--ringbuf-size", "does not apply"],
        ),
        (&["-T", "0"], &["--top"]),
        (&["-Z", "0"], &["--max-size"]),
        (&["-z", "100", "-Z", "10"], &["--min-size", "--max-size"]),
        (&["-s", "0"], &["--sample-rate"]),
        (&["-i", "0"], &["--interval"]),
        (&["-o", "99999999999"], &["--older"]),
        (&["--max-allocs", "0"], &["--max-allocs"]),
        (&["--max-stacks", "0"], &["--max-stacks"]),
        (&["--max-stacks", "999999999"], &["--max-stacks"]),
        (&["--max-threads", "0"], &["--max-threads"]),
        (
            &["--stacks-per-second", "1000001"],
            &["--stacks-per-second"],
        ),
        (
            &["-c", "true", "--unwind", "fp", "--stacks-per-second", "10"],
            &["--stacks-per-second", "kernel mode"],
        ),
        (
            &["-c", "true", "--unwind", "dwarf", "--combined"],
            &["--combined", "--unwind fp"],
        ),
        (&["--stack-bytes", "100"], &["--stack-bytes"]),
        (&["--stack-bytes", "32769"], &["--stack-bytes"]),
        (&["-p", "0"], &["process id"]),
        (&["-c", ""], &["empty"]),
    ] {
        let (code, _, err) = run_tool(TOOL, args);
        assert_one_line_error(code, &err, words);
    }
    let (_, help, _) = run_tool(TOOL, &["--help"]);
    assert!(!help.contains("ringbuf"), "{help}");
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The final JSON report of `kmemleak-lite -c PROGRAM` run to its end.
fn final_report_of(program: &std::path::Path) -> (Value, Finished) {
    let command = program.display().to_string();
    let out = Traced::start(TOOL, &["-c", &command, "--json", "-i", "60", "-T", "100"])
        .wait(Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    let last = final_report(&out);
    (last, out)
}

/// Each leak of allocfamily.c is reported from its own function with its size, and nothing
/// that churn() allocated and freed is.
fn assert_allocator_family(program: &std::path::Path, glibc: bool) {
    let (last, out) = final_report_of(program);
    let mut expected = vec![
        ("leak_malloc", 100),
        ("leak_calloc", 210),
        ("leak_realloc", 300),
        ("leak_posix_memalign", 400),
        ("leak_aligned_alloc", 512),
        ("leak_memalign", 600),
        ("leak_valloc", 700),
        ("leak_mmap", 3 * 4096),
    ];
    if glibc {
        // pvalloc rounds the size up to whole pages.
        expected.push(("leak_pvalloc", 4096));
    }
    for (function, bytes) in expected {
        assert_eq!(
            stacks_naming(&last, function),
            vec![(bytes, 1)],
            "{function}: {}",
            out.stdout
        );
    }
    assert!(stacks_naming(&last, "churn").is_empty(), "{}", out.stdout);
}

bpf_test!(
    fn every_glibc_allocator_function_and_mmap_is_followed() {
        assert_allocator_family(&build_program("allocfamily", &[]), true);
    }
);

bpf_test!(
    fn a_static_musl_binary_is_followed_through_its_own_allocator() {
        // musl-gcc's specs, given to cc: the build fails without Debian's musl-tools (the
        // kernel-matrix guests get a copy built on the host).
        let specs = format!(
            "/usr/lib/{}-linux-musl/musl-gcc.specs",
            std::env::consts::ARCH
        );
        let musl = build_program("allocfamily_musl", &["-specs", &specs, "-static"]);
        assert_allocator_family(&musl, false);
    }
);

bpf_test!(
    fn cxx_new_is_followed_and_names_its_caller() {
        // libstdc++'s operator new has no frame pointer: its caller shows only because operator
        // new itself is probed (delete is seen as the free it calls).
        let cxx = build_program("cxxleak", &["-Wl,--no-as-needed", "-lstdc++"]);
        let (last, out) = final_report_of(&cxx);
        assert_eq!(
            stacks_naming(&last, "leak_new"),
            vec![(5 * 48, 5)],
            "{}",
            out.stdout
        );
        assert_eq!(
            stacks_naming(&last, "leak_new_array"),
            vec![(2 * 1000, 2)],
            "{}",
            out.stdout
        );
        assert!(stacks_naming(&last, "churn").is_empty(), "{}", out.stdout);
    }
);

/// Allocations outstanding, in the last report, from stacks through both `a` and `b` (frame
/// symbols containing them).
fn allocations_through(stdout: &str, a: &str, b: &str) -> Option<u64> {
    let report = last_report(stdout)?;
    let names = |s: &Value, part: &str| {
        s["frames"].as_array().unwrap().iter().any(|f| {
            f["code.function.name"]
                .as_str()
                .is_some_and(|n| n.contains(part))
        })
    };
    Some(
        report["stacks"]
            .as_array()?
            .iter()
            .filter(|s| names(s, a) && names(s, b))
            .map(|s| s["allocations"].as_u64().unwrap())
            .sum(),
    )
}

bpf_test!(
    fn kernel_mode_reports_the_struct_file_an_open_fd_holds_until_it_is_closed() {
        let _alone = kernel_mode_alone();
        // A real kernel leak for as long as the fds stay open: each timerfd holds a struct file
        // (alloc_empty_file, under timerfd_create, a path few other processes take).
        const FDS: u64 = 200;
        let traced = Traced::start(TOOL, &["--json", "-i", "0.5", "-o", "100", "-T", "500"]);
        let fds: Vec<i32> = (0..FDS)
            // SAFETY: timerfd_create takes constants and returns an fd or -1.
            .map(|_| unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, 0) })
            .collect();
        assert!(fds.iter().all(|&fd| fd >= 0));
        let files = |out: &str| allocations_through(out, "alloc_empty_file", "timerfd_create");
        let held = traced.wait_for(Duration::from_secs(20), |out| {
            files(out).is_some_and(|n| n >= FDS)
        });
        let seen_held = files(&traced.stdout_text());
        for fd in fds {
            // SAFETY: closes an fd this test opened, once.
            unsafe { libc::close(fd) };
        }
        let released = traced.wait_for(Duration::from_secs(20), |out| {
            held && files(out).is_some_and(|n| n < FDS / 10)
        });
        let out = traced.stop();
        assert!(
            held,
            "never saw {FDS} struct files under timerfd_create (last: {seen_held:?}): {}",
            &out.stdout[out.stdout.len().saturating_sub(4000)..]
        );
        assert!(
            released,
            "struct files still outstanding after close: {:?}",
            files(&out.stdout)
        );
        assert!(out.status.success(), "{:?}", out.stderr);
    }
);

bpf_test!(
    fn kernel_mode_counts_allocations_whose_stacks_are_lost_at_their_call_site() {
        let _alone = kernel_mode_alone();
        // A stack table of 4 stacks is full at once: the pipes' allocations lose their stacks, and
        // are counted, under their call site (hold_pipes sees them all, then gone).
        let (_, site, out) = hold_pipes(100, &["--max-stacks", "4", "--stacks-per-second", "0"]);
        assert!(
            site > 0,
            "{}",
            &out.stdout[out.stdout.len().saturating_sub(4000)..]
        );
        assert!(
            out.stdout.contains("\"call_site_only\":\"stack_lost\""),
            "{}",
            &out.stdout[out.stdout.len().saturating_sub(4000)..]
        );
        assert!(!out.stdout.contains("\"call_site_only\":\"over_budget\""));
        let (_, by_cause) = final_losses(&out);
        assert!(
            by_cause["stack_id_lost"].as_u64().unwrap() >= site,
            "{by_cause:?}"
        );
    }
);

/// The last JSON report in `stdout`.
fn last_report(stdout: &str) -> Option<Value> {
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.contains("\"event.name\":\"leak_report\""))?;
    serde_json::from_str(last).ok()
}

bpf_test!(
    fn a_hot_call_site_keeps_its_first_stacks_and_counts_the_rest_at_the_call_site() {
        let _alone = kernel_mode_alone();
        // PIPES pipes, two allocations each from alloc_pipe_info in one process, made in a burst far
        // faster than the budget of BUDGET stacks a second per call site.
        const PIPES: u64 = 400;
        const BUDGET: &str = "50";

        // Over the budget: most of the allocations are counted at their call site, and none goes
        // uncounted (hold_pipes sees them all).
        let (stacked, site, _) = hold_pipes(PIPES, &["--stacks-per-second", BUDGET]);
        assert!(
            stacked < PIPES && site >= PIPES,
            "{stacked} allocations with their stacks, {site} at the call site alone"
        );

        // The text report says so, with the call site as the one frame.
        let traced = Traced::start(
            TOOL,
            &[
                "-i",
                "0.5",
                "-o",
                "0",
                "-T",
                "1000",
                "--stacks-per-second",
                "1",
            ],
        );
        let fds = make_pipes(50);
        const SAID: &str = "allocations from call site, stacks not taken (over 1 a second from it in a process; --stacks-per-second)";
        let pipe_entry = |out: &str| {
            let lines: Vec<&str> = out.lines().collect();
            lines
                .windows(2)
                .any(|w| w[0].contains(SAID) && w[1].starts_with("\t\talloc_pipe_info+0x"))
        };
        let said = traced.wait_for(Duration::from_secs(20), pipe_entry);
        let out = traced.stop();
        for fd in fds {
            // SAFETY: closes an fd this test opened, once.
            unsafe { libc::close(fd) };
        }
        assert!(said, "{}", out.stdout);

        // --stacks-per-second 0: every stack is taken; no report has an entry over the budget.
        let (stacked, _, out) = hold_pipes(PIPES, &["--stacks-per-second", "0"]);
        assert!(
            stacked >= 2 * PIPES,
            "{stacked} allocations with their stacks"
        );
        assert!(
            !out.stdout.contains("\"call_site_only\":\"over_budget\""),
            "{}",
            &out.stdout[out.stdout.len().saturating_sub(4000)..]
        );
    }
);

/// The call site of a kernel stack: its first frame past the slab allocator's own.
fn call_site(stack: &Value) -> Option<String> {
    stack["frames"]
        .as_array()?
        .iter()
        .filter_map(|f| f["code.function.name"].as_str())
        .find(|s| {
            !s.contains("kmalloc") && !s.contains("kmem_cache_alloc") && !s.contains("krealloc")
        })
        .map(str::to_string)
}

/// Active objects per slab cache, from /proc/slabinfo (SLUB counts the objects of the
/// per-CPU slabs as active: an upper bound on what is really allocated).
fn slab_active_objects() -> HashMap<String, u64> {
    std::fs::read_to_string("/proc/slabinfo")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

bpf_test!(
    fn kernel_mode_marks_objects_freed_out_of_sight_and_still_reports_a_real_leak() {
        let _alone = kernel_mode_alone();
        // 10 s of kernel objects made and freed: files created and removed, processes forked that
        // map and unmap memory and exit (their VMAs and maple tree nodes go with them), while the
        // test holds FDS timerfds open: a real leak for as long as it runs.
        const FDS: u64 = 100;
        let traced = Traced::start(TOOL, &["--json", "-i", "1", "-o", "500", "-T", "100000"]);
        let fds: Vec<i32> = (0..FDS)
            // SAFETY: timerfd_create takes constants and returns an fd or -1.
            .map(|_| unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, 0) })
            .collect();
        assert!(fds.iter().all(|&fd| fd >= 0));
        let dir = std::env::temp_dir().join(common::marker("kml-workload"));
        std::fs::create_dir_all(&dir).unwrap();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            for i in 0..20 {
                std::fs::write(dir.join(format!("f{i}")), b"x").unwrap();
            }
            for i in 0..20 {
                std::fs::remove_file(dir.join(format!("f{i}"))).unwrap();
            }
            // SAFETY: the child makes system calls only, then _exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // Only system calls in the child of a threaded process.
                // SAFETY: system calls only, on memory the child maps itself, then _exit.
                unsafe {
                    for _ in 0..50 {
                        let p = libc::mmap(
                            std::ptr::null_mut(),
                            1 << 16,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                            -1,
                            0,
                        );
                        if p != libc::MAP_FAILED {
                            *(p as *mut u8) = 1;
                            libc::munmap(p, 1 << 16);
                        }
                    }
                    libc::_exit(0);
                }
            }
            assert!(pid > 0);
            let mut status = 0;
            // SAFETY: waits for our own child; the status pointer is a live i32 or null.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
        std::fs::remove_dir(&dir).unwrap();
        // Two reports made after the workload ended; the slab counts of the moment, then the last
        // report (made at the stop). Slab counts move with the whole machine, so only the bound
        // holds: a cache has at least as many active objects as are really outstanding from it.
        let seen = traced.stdout_text().lines().count();
        traced.wait_for(Duration::from_secs(20), |out| {
            out.lines().count() >= seen + 2
        });
        let slabs = slab_active_objects();
        let out = traced.stop();
        for fd in fds {
            // SAFETY: closes an fd this test opened, once.
            unsafe { libc::close(fd) };
        }
        assert!(out.status.success(), "{:?}", out.stderr);
        let last: Value = out
            .stdout
            .lines()
            .rev()
            .find(|l| l.contains("\"event.name\":\"leak_report\""))
            .map(|l| serde_json::from_str(l).unwrap())
            .expect("a report");
        let stacks = last["stacks"].as_array().unwrap();
        // The stacks called leaks: unmarked, and recorded (a stack lost is no one stack), or
        // allocations counted at their call site (over the stack budget).
        let leaks: Vec<&Value> = stacks
            .iter()
            .filter(|s| {
                s["unseen_free"].is_null()
                    && (s["stack_id"].as_i64().unwrap() >= 0 || s["call_site_only"].is_string())
            })
            .collect();

        // Maple tree nodes, freed in bulk or after RCU, are never called leaks.
        for s in stacks {
            if let Some(site) = call_site(s) {
                if site.starts_with("mas_") || site.starts_with("mt_") {
                    assert!(s["unseen_free"].is_string(), "unmarked: {s}");
                }
            }
        }

        // No stack called a leak has objects the kernel freed out of sight: an address handed
        // out again while still listed is one (the report counts them per stack, `freed_unseen`).
        // The only such frees allowed among the leaks are those of the kernel's skipped program
        // runs, which are counted (probe_skipped) and said.
        let (_, by_cause) = common::final_losses(&out);
        let skipped = by_cause["probe_skipped"].as_u64().unwrap();
        let freed_unseen: u64 = leaks
            .iter()
            .map(|s| s["freed_unseen"].as_u64().unwrap())
            .sum();
        assert!(
            freed_unseen <= skipped,
            "{freed_unseen} objects of stacks called leaks were freed out of sight ({skipped} skipped runs): {:?}",
            leaks
                .iter()
                .filter(|s| s["freed_unseen"].as_u64() > Some(0))
                .map(|s| (call_site(s), &s["cache"], &s["freed_unseen"], &s["allocations"]))
                .collect::<Vec<_>>()
        );

        // Nor does a cache hold fewer objects than the report says are leaked from it.
        let mut per_cache: HashMap<&str, u64> = HashMap::new();
        for s in &leaks {
            if let Some(cache) = s["cache"].as_str() {
                *per_cache.entry(cache).or_default() += s["allocations"].as_u64().unwrap();
            }
        }
        // The slab tracepoints pass the cache since 6.1; before, no stack can name it.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let version: Vec<u32> = release
            .split(|c: char| !c.is_ascii_digit())
            .take(2)
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(
            per_cache.is_empty(),
            version < vec![6, 1],
            "stacks naming their cache on {release}: {per_cache:?}"
        );
        for (cache, reported) in &per_cache {
            // Names are cut at 31 bytes in the report.
            let active = slabs
                .iter()
                .find(|(name, _)| {
                    name.as_str() == *cache || (cache.len() == 31 && name.starts_with(cache))
                })
                .map(|(_, n)| *n)
                .unwrap_or_else(|| panic!("cache {cache} is not in /proc/slabinfo"));
            assert!(
                *reported <= active,
                "{reported} objects of {cache} called leaks, {active} active in /proc/slabinfo"
            );
        }

        // The real leak is reported, unmarked.
        let held: u64 = leaks
            .iter()
            .filter(|s| {
                let names: Vec<&str> = s["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|f| f["code.function.name"].as_str())
                    .collect();
                names.contains(&"alloc_empty_file")
                    && names.iter().any(|n| n.contains("timerfd_create"))
            })
            .map(|s| s["allocations"].as_u64().unwrap())
            .sum();
        assert!(held >= FDS, "{held} of {FDS} held struct files reported");
    }
);
