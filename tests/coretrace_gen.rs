//! coretrace-gen, the packagers' generator of man pages and shell completions.

mod common;

use std::process::Command;

fn gen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coretrace-gen"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn man_pages_have_every_section_and_render_without_a_warning() {
    let dir = std::env::temp_dir().join(format!("coretrace-gen-man-{}", std::process::id()));
    let out = gen(&["man", dir.to_str().unwrap(), "--suffix", "-coretrace"]);
    assert!(out.status.success(), "{out:?}");
    for tool in common::tools() {
        let name = format!("{tool}-coretrace");
        let path = dir.join(format!("{name}.8"));
        let page = std::fs::read_to_string(&path).unwrap();
        let th = format!(".TH {} 8", name.to_uppercase().replace('-', "\\-"));
        assert!(page.starts_with(&th), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "REQUIREMENTS",
            "OPTIONS",
            "EXAMPLES",
            "FIELDS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "OVERHEAD",
            "SEE ALSO",
        ] {
            assert!(
                page.contains(&format!("\n.SH {section}\n")),
                "{tool}: no {section}"
            );
        }
        assert!(!page.contains("EXTRA"), "{tool}");
        assert!(
            page.contains("\\fB\\-\\-json\\fR"),
            "{tool}: options listed"
        );
        assert!(page.contains(".BR bpftool (8)"), "{tool}");
        assert!(
            page.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && page.contains("otlp\\-endpoint"),
            "{tool}: OTLP export documented"
        );
        // Each example is an unfilled line of its own, named as installed.
        assert!(
            page.contains(&format!(".nf\n\\fB# {}", name.replace('-', "\\-"))),
            "{tool}: {page}"
        );
        // groff -ww -z: every warning on, no output: silent when the page is clean.
        let groff = Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(&path)
            .output()
            .expect("groff must be installed (apt-get install groff)");
        assert!(groff.status.success(), "{tool}: {groff:?}");
        assert_eq!(String::from_utf8_lossy(&groff.stderr), "", "{tool}");
    }
    let page = std::fs::read_to_string(dir.join("coretrace.8")).unwrap();
    for tool in common::tools() {
        assert!(
            page.contains(&format!("\\fB{}\\-coretrace\\fR", tool.replace('-', "\\-"))),
            "{tool}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_for_each_installed_name_and_coretrace() {
    let dir = std::env::temp_dir().join(format!("coretrace-gen-cmp-{}", std::process::id()));
    for (shell, file) in [
        ("bash", "execsnoop-coretrace.bash"),
        ("zsh", "_execsnoop-coretrace"),
        ("fish", "execsnoop-coretrace.fish"),
    ] {
        let out = gen(&[
            "completions",
            shell,
            dir.to_str().unwrap(),
            "--suffix",
            "-coretrace",
        ]);
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(text.contains("min-duration"), "{shell}: {text}");
    }
    let bash = std::fs::read_to_string(dir.join("coretrace.bash")).unwrap();
    assert!(
        bash.contains("uprobe-lat") && bash.contains("kernel-hist"),
        "{bash}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_are_one_line_errors() {
    for (args, words) in [
        (&["completions", "tcsh", "/tmp"][..], "unknown shell 'tcsh'"),
        (&["man"][..], "usage: coretrace-gen"),
        (&["man", "/tmp", "--suffix"][..], "--suffix needs a value"),
    ] {
        let out = gen(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(words), "{err}");
    }
}
