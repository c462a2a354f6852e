//! coretrace-gen, the packagers' generator of man pages and shell completions.

use std::process::Command;

fn gen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coretrace-gen"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn man_pages_and_completions_for_every_tool() {
    let dir = std::env::temp_dir().join(format!("coretrace-gen-{}", std::process::id()));
    let out = gen(&["man", dir.join("man").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    for tool in ["execsnoop", "exitsnoop"] {
        let page = std::fs::read_to_string(dir.join("man").join(format!("{tool}.8"))).unwrap();
        assert!(page.contains(&format!(".TH {tool} 8")), "{page}");
        assert!(page.contains("\\-\\-json"), "options listed: {page}");
    }
    let out = gen(&["completions", "bash", dir.join("bash").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let bash = std::fs::read_to_string(dir.join("bash").join("execsnoop.bash")).unwrap();
    assert!(bash.contains("--min-duration"), "{bash}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_shell_is_one_line_error() {
    let out = gen(&["completions", "tcsh", "/tmp"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown shell 'tcsh'"), "{err}");
}
