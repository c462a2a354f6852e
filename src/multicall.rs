//! The one `coretrace` binary behind every tool. It runs a tool chosen by the name it was
//! started as (a link named `execsnoop`, or a packaged name such as `execsnoop-coretrace` or
//! `ct-execsnoop`) or by its first argument (`coretrace execsnoop -d 100`). One binary keeps
//! the installed suite small: the tools share most of their code. The tools are those of the
//! registry, `crate::tools::TOOLS`.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

use crate::tools::{Tool, TOOLS};

/// The tool a program name stands for: the name itself, or the name with a distribution's
/// prefix (`ct-execsnoop`) or suffix (`execsnoop-coretrace`, `execsnoop.coretrace`).
pub fn tool_named(program: &str) -> Option<&'static Tool> {
    TOOLS.iter().copied().find(|t| {
        program == t.name
            || program
                .strip_suffix(t.name)
                .is_some_and(|prefix| prefix.ends_with(['-', '_']))
            || program
                .strip_prefix(t.name)
                .is_some_and(|suffix| suffix.starts_with(['-', '_', '.']))
    })
}

/// `coretrace --version`: the version, the commit it was built from, and the libbpf in it.
pub fn version() -> String {
    format!(
        "coretrace {} (commit {}, libbpf {})",
        env!("CARGO_PKG_VERSION"),
        env!("CORETRACE_COMMIT"),
        libbpf_version()
    )
}

fn libbpf_version() -> String {
    extern "C" {
        // libbpf's own (from the libbpf-sys crate that libbpf-rs links).
        fn libbpf_version_string() -> *const std::ffi::c_char;
    }
    // SAFETY: libbpf returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(libbpf_version_string()) }
        .to_string_lossy()
        .trim_start_matches('v')
        .to_string()
}

fn help() -> String {
    let mut text = format!(
        "{}\n\nCO-RE eBPF tracing tools in one binary.\n\n\
         Usage: coretrace TOOL [OPTIONS]   (or run a link named after the tool)\n\
         \x20      coretrace TOOL --help\n\nTools:\n",
        version()
    );
    for t in TOOLS {
        let about = (t.command)().get_about().map(|a| a.to_string());
        text.push_str(&format!("  {:<14} {}\n", t.name, about.unwrap_or_default()));
    }
    text.push_str(
        "\nThe Debian package installs each tool as /usr/sbin/TOOL-coretrace; put\n\
         /usr/lib/coretrace/bin on PATH to run them by their short names.\n",
    );
    text
}

/// The `main` of the `coretrace` binary.
pub fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(tool) = tool_named(&program) {
        return (tool.main)(leak(program), args);
    }
    let first = args.get(1).map(OsString::as_os_str);
    match first.and_then(OsStr::to_str) {
        Some(name) if !name.starts_with('-') => match crate::tools::named(name) {
            Some(tool) => {
                let invoked = leak(format!("coretrace {name}"));
                args.remove(0);
                args[0] = invoked.into();
                (tool.main)(invoked, args)
            }
            None => usage_error(&format!("unknown tool '{name}'")),
        },
        Some("-h" | "--help") => {
            print!("{}", help());
            ExitCode::SUCCESS
        }
        // Hidden: the tools' names, one a line, for scripts (tools/tool-links.sh, the
        // package, the install test, the kernel matrix) and tests that loop over the tools.
        Some("--list-tools") => {
            for t in TOOLS {
                println!("{}", t.name);
            }
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("{}", version());
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown option '{other}'")),
        None => usage_error("no tool given"),
    }
}

fn usage_error(what: &str) -> ExitCode {
    let names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
    eprintln!(
        "coretrace: {what}: give one of {} (see coretrace --help)",
        names.join(", ")
    );
    ExitCode::from(2)
}

/// The program name lives as long as the process: tools keep it for their messages.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_distribution_prefixes_and_suffixes() {
        for (program, tool) in [
            ("execsnoop", Some("execsnoop")),
            ("ct-execsnoop", Some("execsnoop")),
            ("execsnoop-coretrace", Some("execsnoop")),
            ("execsnoop.coretrace", Some("execsnoop")),
            ("kmemleak-lite", Some("kmemleak-lite")),
            ("uprobe-lat-coretrace", Some("uprobe-lat")),
            ("ct-uprobe-lat", Some("uprobe-lat")),
            ("coretrace", None),
            ("execsnoopy", None),
            ("myexecsnoop", None),
            ("kmemleak", None),
        ] {
            assert_eq!(tool_named(program).map(|t| t.name), tool, "{program}");
        }
    }

    #[test]
    fn version_names_commit_and_libbpf() {
        let v = version();
        assert!(
            v.starts_with(concat!("coretrace ", env!("CARGO_PKG_VERSION"))),
            "{v}"
        );
        assert!(v.contains("libbpf 1."), "{v}");
    }
}
