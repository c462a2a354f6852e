//! The multicall `coretrace` binary: the same tool runs as `coretrace TOOL`, as a link named
//! after the tool, and under a distribution's prefixed or suffixed name.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_one_line_error, marker, Traced};

fn coretrace(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coretrace"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A link to coretrace named `name`, in a fresh directory.
fn link(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(marker("links"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_coretrace"), &path).unwrap();
    path
}

#[test]
fn help_lists_every_tool_and_version_names_commit_and_libbpf() {
    let (code, help, _) = coretrace(&["--help"]);
    assert_eq!(code, 0);
    let tools = common::tools();
    // --help lists exactly the tools of --list-tools (the registry), in its order.
    let listed: Vec<&str> = help
        .split("\nTools:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, tools, "{help}");
    let (code, version, _) = coretrace(&["--version"]);
    assert_eq!(code, 0);
    let words: Vec<&str> = version.split_whitespace().collect();
    assert_eq!(
        words[..3],
        ["coretrace", env!("CARGO_PKG_VERSION"), "(commit"]
    );
    assert!(version.contains(", libbpf 1."), "{version}");
}

#[test]
fn every_listed_tool_runs_by_name_and_by_link() {
    for tool in common::tools() {
        let (code, direct, _) = coretrace(&[&tool, "--help"]);
        assert_eq!(code, 0, "{tool}");
        assert!(
            direct.contains(&format!("Usage: coretrace {tool} ")),
            "{tool}: {direct}"
        );
        let out = Command::new(link(&tool)).arg("--help").output().unwrap();
        assert!(out.status.success(), "{tool}: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let usage = format!("Usage: coretrace {tool} ");
        assert_eq!(
            help.replace(&format!("Usage: {tool} "), &usage),
            direct,
            "{tool}"
        );
    }
}

#[test]
fn no_tool_or_unknown_tool_is_a_one_line_usage_error() {
    for args in [&[][..], &["nosuchtool"], &["--bogus"]] {
        let (code, _, err) = coretrace(args);
        assert_eq!(code, 2, "{args:?}");
        assert_one_line_error(
            code,
            &err,
            &["coretrace:", "execsnoop, exitsnoop", "--help"],
        );
    }
}

#[test]
fn every_name_runs_the_same_tool() {
    // --help is the tool's own, whichever way it is reached; the usage line names the command run.
    let (code, direct, _) = coretrace(&["exitsnoop", "--help"]);
    assert_eq!(code, 0);
    assert!(
        direct.contains("Usage: coretrace exitsnoop [OPTIONS]"),
        "{direct}"
    );
    for name in [
        "exitsnoop",
        "ct-exitsnoop",
        "exitsnoop-coretrace",
        "exitsnoop.coretrace",
    ] {
        let out = Command::new(link(name)).arg("--help").output().unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            help.replace(&format!("Usage: {name} "), "Usage: coretrace exitsnoop "),
            direct,
            "{name}"
        );
    }
    // Errors and exit codes are the tool's; the hint names the command the user ran.
    let out = Command::new(link("ct-uprobe-lat")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_one_line_error(
        out.status.code().unwrap(),
        &err,
        &["uprobe-lat:", "(see ct-uprobe-lat --help)"],
    );
    assert_eq!(out.status.code(), Some(2));
    let (code, _, err) = coretrace(&["uprobe-lat"]);
    assert_eq!(code, 2);
    assert_one_line_error(
        code,
        &err,
        &["uprobe-lat:", "(see coretrace uprobe-lat --help)"],
    );
}

bpf_test!(
    fn a_prefixed_name_and_the_subcommand_trace_for_real() {
        for cmd in [Command::new(link("ct-exitsnoop")), {
            let mut c = Command::new(env!("CARGO_BIN_EXE_coretrace"));
            c.arg("exitsnoop");
            c
        }] {
            let mut cmd = cmd;
            let code = 40 + (std::process::id() % 50) as i32;
            cmd.args(["-x", "-v"]);
            let t = Traced::start_cmd(cmd);
            let m = marker("mc");
            let pid = common::run_traced(Command::new("/bin/sh").args([
                "-c",
                &format!("exit {code}"),
                &m,
            ]));
            let needle = format!(" {pid} ");
            t.wait_for(Duration::from_secs(10), |out| out.contains(&needle));
            let out = t.stop();
            let row = out.lines_with(&needle);
            assert_eq!(row.len(), 1, "{out:?}");
            assert!(row[0].ends_with(&format!("code {code}")), "{out:?}");
        }
    }
);

#[test]
fn a_panic_is_one_line_and_status_1() {
    // CORETRACE_TEST_PANIC makes the tool panic first thing: the guard of cli::main_with.
    let out = Command::new(common::bin("exitsnoop"))
        .env("CORETRACE_TEST_PANIC", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_one_line_error(
        1,
        &err,
        &["exitsnoop: internal error", "(please report this)"],
    );
}
