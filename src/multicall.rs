//! The one `coretrace` binary behind every tool. It runs a tool chosen by the name it was
//! started as (a link named `execsnoop`, or a packaged name such as `execsnoop-coretrace` or
//! `ct-execsnoop`) or by its first argument (`coretrace execsnoop -d 100`). One binary keeps
//! the installed suite small: the tools share most of their code.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

use crate::cli;
use crate::tools::{execsnoop, exitsnoop, kmemleak_lite, unlinksnoop, uprobe_lat};

/// A tool: its name and its `main`, given the name it was invoked as (for usage hints) and its
/// command line (the first item is the program name, as in `std::env::args_os`).
pub struct Tool {
    pub name: &'static str,
    pub main: fn(&'static str, Vec<OsString>) -> ExitCode,
    pub command: fn() -> clap::Command,
}

/// Every tool, in the order `coretrace --help` lists them.
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "execsnoop",
        main: |invoked, args| {
            cli::main_with("execsnoop", || {
                execsnoop::run(cli::parse("execsnoop", invoked, args))
            })
        },
        command: <execsnoop::Args as clap::CommandFactory>::command,
    },
    Tool {
        name: "exitsnoop",
        main: |invoked, args| {
            cli::main_with("exitsnoop", || {
                exitsnoop::run(cli::parse("exitsnoop", invoked, args))
            })
        },
        command: <exitsnoop::Args as clap::CommandFactory>::command,
    },
    Tool {
        name: "unlinksnoop",
        main: |invoked, args| {
            cli::main_with("unlinksnoop", || {
                unlinksnoop::run(cli::parse("unlinksnoop", invoked, args))
            })
        },
        command: <unlinksnoop::Args as clap::CommandFactory>::command,
    },
    Tool {
        name: "kmemleak-lite",
        main: kmemleak_lite_main,
        command: <kmemleak_lite::Args as clap::CommandFactory>::command,
    },
    Tool {
        name: "uprobe-lat",
        main: |invoked, args| {
            cli::main_with("uprobe-lat", || {
                uprobe_lat::run(cli::parse("uprobe-lat", invoked, args))
            })
        },
        command: <uprobe_lat::Args as clap::CommandFactory>::command,
    },
];

fn kmemleak_lite_main(invoked: &'static str, args: Vec<OsString>) -> ExitCode {
    let args = cli::parse_refusing::<kmemleak_lite::Args>(
        "kmemleak-lite",
        invoked,
        kmemleak_lite::REFUSED,
        args,
    );
    // With -c, the command's status, as a shell would give it; an error of the tool's own wins.
    let mut status = 0u8;
    let code = cli::main_with("kmemleak-lite", || {
        status = kmemleak_lite::run(args)?;
        Ok(())
    });
    if status != 0 {
        ExitCode::from(status)
    } else {
        code
    }
}

/// The tool a program name stands for: the name itself, or the name with a distribution's
/// prefix (`ct-execsnoop`) or suffix (`execsnoop-coretrace`, `execsnoop.coretrace`).
pub fn tool_named(program: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| {
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
        Some(name) if !name.starts_with('-') => match TOOLS.iter().find(|t| t.name == name) {
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
