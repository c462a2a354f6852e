//! uprobe-lat --stack as a user runs it: a program built with the compiler's defaults (no
//! frame pointers, tests/programs/slow_stack.c) calls main -> outer -> middle -> slow_fn, and
//! one call of slow_fn is slow; the stack printed under that call's row must name its callers,
//! middle, outer and main, in that order, in the table and in JSON.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_one_line_error, final_losses, run_tool, Finished, Traced};
use serde_json::Value;

const TOOL: &str = "uprobe-lat";

/// Builds the program into a directory of its own (a unique path: the test traces only its
/// own file), as its Build: line says.
fn build() -> PathBuf {
    common::build_c_program("slow_stack", &["-O2", "-g"])
}

/// Traces slow_fn with `args` while the program makes its calls; with `pad`, main puts 12 KiB
/// on the stack first.
fn trace(exe: &Path, args: &[&str], pad: bool) -> Finished {
    let mut child = Command::new(exe)
        .args(pad.then_some("pad"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready "), "program said {line:?}");
    let target = format!("{}:slow_fn", exe.display());
    let mut all: Vec<&str> = vec!["--no-calibrate", "--slower-than", "20ms", "--stack"];
    all.extend(args);
    all.push(&target);
    let traced = Traced::start(TOOL, &all);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    // The program stays while the tool prints its slow call (and reads its maps).
    std::thread::sleep(Duration::from_millis(500));
    let out = traced.stop();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(out.status.success(), "{out:?}");
    out
}

/// Whether `names` holds middle, outer and main in that order (other frames may be between:
/// libc's start code below main).
fn callers_in_order(names: &[&str]) -> bool {
    let mut want = ["middle", "outer", "main"].into_iter().peekable();
    for n in names {
        if want.peek() == Some(n) {
            want.next();
        }
    }
    want.peek().is_none()
}

bpf_test!(
    fn stack_of_a_slow_call_names_its_callers_without_frame_pointers() {
        let exe = build();

        // Text: the row of the one slow call, then its frames, indented.
        let out = trace(&exe, &[], false);
        let lines: Vec<&str> = out.stdout.lines().collect();
        let rows: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(" slow_fn "))
            .collect();
        assert_eq!(rows.len(), 1, "{}", out.stdout);
        let frames: Vec<&str> = lines[rows[0] + 1..]
            .iter()
            .take_while(|l| l.starts_with('\t'))
            .map(|l| {
                let name = l.trim_start();
                name.split(['+', ' ']).next().unwrap_or(name)
            })
            .collect();
        assert!(callers_in_order(&frames), "{}", out.stdout);
        assert_eq!(frames[0], "middle", "{}", out.stdout);
        assert!(!out.stdout.contains("[cut"), "{}", out.stdout);
        assert!(!out.stdout.contains("stack lost"), "{}", out.stdout);

        // JSON: a "stack" array of frames, how it was walked, and whether it was cut.
        let out = trace(&exe, &["--json"], false);
        let json = out.json();
        let slow: Vec<&Value> = json
            .iter()
            .filter(|v| v["event.name"] == "slow_call")
            .collect();
        assert_eq!(slow.len(), 1, "{}", out.stdout);
        let v = slow[0];
        assert_eq!(v["code.function.name"], "slow_fn", "{v}");
        assert_eq!(v["unwind"], "dwarf", "{v}");
        assert_eq!(v["cut"], false, "{v}");
        let names: Vec<&str> = v["stack"]
            .as_array()
            .expect("a stack array")
            .iter()
            .filter_map(|f| f["code.function.name"].as_str())
            .collect();
        assert!(callers_in_order(&names), "{v}");
        assert_eq!(names[0], "middle", "{v}");
    }
);

bpf_test!(
    fn loss_stack_lost_counts_a_copy_the_ring_buffer_had_no_room_for() {
        let exe = build();
        // A 4 KiB ring buffer holds the call's record but not a copy of the 12 KiB and more of
        // stack that main's padding puts above its callees' frames.
        let args = ["--json", "--ringbuf-size", "4", "--stack-bytes", "16384"];
        let out = trace(&exe, &args, true);
        let json = out.json();
        let slow: Vec<&Value> = json
            .iter()
            .filter(|v| v["event.name"] == "slow_call")
            .collect();
        assert_eq!(slow.len(), 1, "{}", out.stdout);
        assert_eq!(slow[0]["stack_lost"], true, "{}", slow[0]);
        assert_eq!(slow[0]["stack"], serde_json::json!([]), "{}", slow[0]);
        let (_, by_cause) = final_losses(&out);
        assert_eq!(by_cause["stack_lost"], 1, "{by_cause:?}");

        // The table says so under the row.
        let out = trace(&exe, &["--ringbuf-size", "4"], true);
        assert!(out.stdout.contains("\t[stack lost"), "{}", out.stdout);
    }
);

#[test]
fn stack_without_slower_than_is_a_one_line_error() {
    let (code, _, err) = run_tool(TOOL, &["--stack", "/bin/true:main"]);
    assert_one_line_error(code, &err, &["--stack", "add --slower-than"]);
}
