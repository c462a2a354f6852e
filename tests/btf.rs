//! `--btf FILE` and `CORETRACE_BTF`: every tool takes the kernel's types from a BTF file, for
//! kernels without /sys/kernel/btf/vmlinux. The tests that need such a kernel hide the host's
//! own BTF in a private mount namespace (an empty directory bound over /sys/kernel/btf).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_one_line_error, bin, marker, run_tool, Traced};

/// Each tool, with the arguments it needs to start at all (uprobe-lat: a function to time,
/// its own main).
fn tools() -> Vec<(&'static str, Vec<String>)> {
    let own_main = format!("{}:main", bin("uprobe-lat"));
    let tools = vec![
        ("execsnoop", vec![]),
        ("exitsnoop", vec![]),
        ("unlinksnoop", vec![]),
        ("kmemleak-lite", vec![]),
        ("uprobe-lat", vec![own_main]),
    ];
    // Every tool of the registry (coretrace --list-tools), in its order: a new tool needs its
    // row here.
    let names: Vec<&str> = tools.iter().map(|(t, _)| *t).collect();
    assert_eq!(names, common::tools(), "tests/btf.rs: tools()");
    tools
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(marker(tag));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the host kernel's BTF, as a user would have from pahole or BTFHub.
fn btf_copy() -> PathBuf {
    let file = temp_dir("btf").join("vmlinux.btf");
    std::fs::copy("/sys/kernel/btf/vmlinux", &file).expect("copying /sys/kernel/btf/vmlinux");
    file
}

/// `tool args...` in a mount namespace of its own where /sys/kernel/btf is an empty directory:
/// a kernel without BTF, as far as the tool can see.
fn without_kernel_btf(tool: &str, args: &[&str]) -> Command {
    let empty = temp_dir("no-btf");
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /sys/kernel/btf && exec \"$@\"",
            empty.display()
        ))
        .arg("sh")
        .arg(bin(tool))
        .args(args);
    cmd
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("running unshare");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_or_unparsable_btf_file_is_one_line_for_every_tool() {
    let junk = temp_dir("junk").join("junk.btf");
    std::fs::write(&junk, b"not BTF at all\n").unwrap();
    let junk = junk.to_str().unwrap();
    for (tool, extra) in tools() {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let extra = extra.as_slice();
        let (code, _, err) = run_tool(tool, &[&["--btf", "/nonexistent/x.btf"], extra].concat());
        assert_one_line_error(
            code,
            &err,
            &[tool, "--btf /nonexistent/x.btf", "No such file", "pahole"],
        );
        let (code, _, err) = run_tool(tool, &[&["--btf", junk], extra].concat());
        assert_one_line_error(code, &err, &[tool, "is not a BTF file", "BTFHub"]);
        let out = Command::new(bin(tool))
            .args(extra)
            .env("CORETRACE_BTF", junk)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_one_line_error(
            out.status.code().unwrap_or(-1),
            &err,
            &[&format!("CORETRACE_BTF={junk} is not a BTF file")],
        );
    }
}

bpf_test!(
    fn without_kernel_btf_the_error_names_both_fixes() {
        for (tool, extra) in tools() {
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            let (code, _, err) = output(&mut without_kernel_btf(tool, &extra));
            assert_one_line_error(
                code,
                &err,
                &[
                    "/sys/kernel/btf/vmlinux is missing",
                    "--btf FILE or CORETRACE_BTF=FILE",
                    "CONFIG_DEBUG_INFO_BTF=y",
                ],
            );
        }
        // --check says the same, and exits 1.
        let (code, out, err) = output(&mut without_kernel_btf("exitsnoop", &["--check"]));
        assert_eq!(code, 1, "{out}{err}");
        assert!(out.contains("BTF            no"), "{out}");
        assert!(err.contains("--btf FILE or CORETRACE_BTF=FILE"), "{err}");
    }
);

/// `sh -c 'exit CODE' MARK` as a traced process; its pid.
fn exit_with(code: u32, mark: &str) -> u32 {
    common::run_traced(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exit {code}"))
            .arg(mark),
    )
}

bpf_test!(
    fn a_btf_file_stands_in_for_the_kernels_own() {
        let btf = btf_copy();
        let btf = btf.to_str().unwrap();
        // --btf: exitsnoop sees a process end.
        let t = Traced::start_cmd({
            let mut cmd = without_kernel_btf("exitsnoop", &["--btf", btf, "-v"]);
            cmd.env_remove("CORETRACE_BTF");
            cmd
        });
        let pid = exit_with(7, &marker("btf-exit"));
        let row = format!(" {pid} ");
        t.wait_for(Duration::from_secs(10), |out| out.contains(&row));
        let out = t.stop();
        let line = out.lines_with(&row);
        assert!(
            line.len() == 1 && line[0].ends_with("code 7"),
            "no row for pid {pid}: {out:?}"
        );
        // CORETRACE_BTF: execsnoop sees an exec, with its arguments.
        let mark = marker("btf-exec");
        let t = Traced::start_cmd({
            let mut cmd = without_kernel_btf("execsnoop", &["-v"]);
            cmd.env("CORETRACE_BTF", btf);
            cmd
        });
        exit_with(0, &mark);
        t.wait_for(Duration::from_secs(10), |out| out.contains(&mark));
        let out = t.stop();
        assert_eq!(out.lines_with(&mark).len(), 1, "{out:?}");
        // --check takes the file, and says fentry still needs the kernel's own BTF.
        let (code, out, err) = output(&mut without_kernel_btf(
            "unlinksnoop",
            &["--btf", btf, "--check"],
        ));
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains(&format!("BTF            yes  {btf} (given with --btf)")),
            "{out}"
        );
        assert!(out.contains("fentry needs the kernel's own BTF"), "{out}");
    }
);

bpf_test!(
    fn the_btf_file_is_what_co_re_relocates_against() {
        // A valid BTF file with no types at all (header, and an empty string table): exitsnoop's
        // reads of task_struct cannot be relocated against it, so loading fails, even though the
        // kernel has its own BTF.
        let empty = temp_dir("empty-btf").join("empty.btf");
        let mut bytes = 0xeb9f_u16.to_le_bytes().to_vec(); // magic
        bytes.extend([1u8, 0]); // version, flags
        for word in [24u32, 0, 0, 0, 1] {
            // hdr_len, type_off, type_len, str_off, str_len
            bytes.extend(word.to_le_bytes());
        }
        bytes.push(0);
        std::fs::write(&empty, &bytes).unwrap();
        let empty = empty.to_str().unwrap();
        let (code, _, err) = run_tool("exitsnoop", &["--btf", empty, "--timeout", "1"]);
        assert_one_line_error(
            code,
            &err,
            &[
                "loading the BPF programs failed",
                &format!("is {empty} the running kernel's BTF?"),
            ],
        );
        assert!(Path::new("/sys/kernel/btf/vmlinux").exists());
    }
);
