//! Every tool's `--json` output, from real runs, against docs/schema/coretrace-events.schema.json:
//! each line must validate, and each run must have produced the kinds of record it was made to
//! produce (so a record kind the schema gets wrong cannot hide by never being printed).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{build_c_program, marker, run_traced, spawn_ready, Finished, Traced};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/schema/coretrace-events.schema.json"
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Validates every JSON line of `out` (lines that are not JSON objects, such as a traced
/// command's own output, are left out) and returns the `event.name`s seen.
fn validate(tool: &str, out: &Finished) -> BTreeSet<String> {
    let v = validator();
    let mut kinds = BTreeSet::new();
    for line in out.stdout.lines().filter(|l| l.starts_with('{')) {
        let record: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&record)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{tool}: a line does not follow the schema: {errors:?}\n{line}"
        );
        kinds.insert(record["event.name"].as_str().unwrap().to_string());
    }
    kinds
}

fn kinds(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_schema_is_a_valid_2020_12_schema() {
    validator();
}

bpf_test!(
    fn execsnoop_records_follow_the_schema() {
        let m = marker("schema-exec");
        for extra in [&[][..], &["-d", "1"][..]] {
            let mut args = vec!["--json"];
            args.extend_from_slice(extra);
            let t = Traced::start("execsnoop", &args);
            // A successful exec, a failed one (ENOENT), one killed by a signal (with -d).
            run_traced(Command::new("/bin/echo").arg(&m));
            let _ = Command::new(format!("/nonexistent/{m}")).status();
            let last = format!("{m}-sh");
            run_traced(Command::new("/bin/sh").args(["-c", "sleep 0.01; kill -9 $$", &last]));
            assert!(t.wait_for(Duration::from_secs(10), |o| o.contains(&last)));
            let out = t.stop();
            assert_eq!(
                validate("execsnoop", &out),
                kinds(&["exec", "losses"]),
                "{extra:?}"
            );
        }
    }
);

bpf_test!(
    fn exitsnoop_records_follow_the_schema() {
        let t = Traced::start("exitsnoop", &["--json", "-T"]);
        let exited = run_traced(Command::new("/bin/sh").args(["-c", "exit 3"]));
        let killed = run_traced(Command::new("/bin/sh").args(["-c", "kill -SEGV $$"]));
        assert!(t.wait_for(Duration::from_secs(10), |o| {
            o.contains(&format!("\"process.pid\":{exited},"))
                && o.contains(&format!("\"process.pid\":{killed},"))
        }));
        let out = t.stop();
        assert_eq!(validate("exitsnoop", &out), kinds(&["exit", "losses"]));
    }
);

bpf_test!(
    fn unlinksnoop_records_follow_the_schema() {
        let dir = std::env::temp_dir().join(marker("schema-unlink"));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
        let t = Traced::start("unlinksnoop", &["--json"]);
        run_traced(Command::new("rm").arg(dir.join("f")));
        run_traced(Command::new("rmdir").arg(dir.join("sub")));
        run_traced(Command::new("rmdir").arg(dir.join("missing")));
        let missing = dir.join("missing").to_string_lossy().into_owned();
        assert!(t.wait_for(Duration::from_secs(10), |o| o.contains(&missing)));
        let out = t.stop();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(validate("unlinksnoop", &out), kinds(&["unlink", "losses"]));
        assert!(out.stdout.contains("\"error.type\":\"ENOENT\""), "{out:?}");
    }
);

bpf_test!(
    fn uprobe_lat_records_follow_the_schema() {
        let exe = build_c_program("uprobe_target", &["-O1", "-g", "-fno-inline", "-pthread"]);
        let target_fn = format!("{}:work_sleep", exe.display());
        for extra in [
            &["--slower-than", "1ms", "--stack"][..],
            &["--per-pid", "--kernel-hist"][..],
        ] {
            let mut target = spawn_ready(Command::new(&exe).arg("run").stdin(Stdio::piped()));
            let mut args = vec!["--json", &target_fn];
            args.extend_from_slice(extra);
            let t = Traced::start("uprobe-lat", &args);
            writeln!(target.stdin.as_mut().unwrap(), "go").unwrap();
            target.wait().unwrap();
            let out = t.stop();
            let want: &[&str] = if extra[0] == "--slower-than" {
                &["latency_histogram", "slow_call", "losses"]
            } else {
                &["latency_histogram", "losses"]
            };
            assert_eq!(validate("uprobe-lat", &out), kinds(want), "{out:?}");
            if extra[0] == "--per-pid" {
                assert!(out.stdout.contains("\"process.pid\":"), "{out:?}");
            } else {
                // --stack: the slow calls' stacks are validated too.
                assert!(out.stdout.contains("\"stack\":[{"), "{out:?}");
            }
        }
    }
);

bpf_test!(
    fn kmemleak_lite_records_follow_the_schema() {
        let leaky = build_c_program(
            "leaky",
            &["-O0", "-g", "-fno-omit-frame-pointer", "-fno-inline"],
        );
        let command = format!("{} run 1.2", leaky.display());
        let t = Traced::start(
            "kmemleak-lite",
            &["-c", &command, "--json", "-a", "-i", "1"],
        );
        let out = t.wait(Duration::from_secs(60));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            validate("kmemleak-lite", &out),
            kinds(&["leak_report", "losses"])
        );
        // The frames carry OpenTelemetry's code.* names.
        assert!(
            out.stdout.contains("\"code.function.name\":\"leak_big\""),
            "{}",
            out.stdout
        );
    }
);

bpf_test!(
    fn kmemleak_lite_kernel_reports_follow_the_schema() {
        // Kernel mode, with a stack budget so small that allocations are also counted at their
        // call site alone (`call_site_only`): 50 timerfds held make the burst.
        let t = Traced::start(
            "kmemleak-lite",
            &[
                "--json",
                "-i",
                "0.5",
                "-o",
                "0",
                "-T",
                "100000",
                "--stacks-per-second",
                "1",
            ],
        );
        let fds: Vec<i32> = (0..50)
            // SAFETY: timerfd_create takes constants and returns an fd or -1.
            .map(|_| unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, 0) })
            .collect();
        let seen = t.wait_for(Duration::from_secs(20), |out| {
            out.contains("\"call_site_only\":\"over_budget\"")
        });
        let out = t.stop();
        for fd in fds {
            // SAFETY: closes an fd this test opened, once.
            unsafe { libc::close(fd) };
        }
        assert!(out.status.success(), "{out:?}");
        assert!(seen, "no call-site-only entry: {}", out.stdout);
        assert_eq!(
            validate("kmemleak-lite", &out),
            kinds(&["leak_report", "losses"])
        );
    }
);

#[test]
fn the_schema_rejects_the_names_it_replaced() {
    let v = validator();
    let old = serde_json::json!({
        "schema_url": "urn:coretrace:events:1", "event.name": "exec",
        "time": "2026-11-26T03:35:54.015744+00:00", "pid": 1, "ppid": 0, "uid": 0,
        "comm": "sh", "args": ["sh"], "ret": 0, "args_truncated": false
    });
    assert!(!v.is_valid(&old));
    let unknown_kind =
        serde_json::json!({"schema_url": "urn:coretrace:events:1", "event.name": "x"});
    assert!(!v.is_valid(&unknown_kind));
}
