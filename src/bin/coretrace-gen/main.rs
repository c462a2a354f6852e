//! For packagers: writes man pages (section 8: one per tool and coretrace(8)) and shell
//! completions, at package time; the tools themselves do not link any of this.
//!
//!   coretrace-gen man DIR [--suffix SUFFIX]                 -> DIR/execsnoop.8, ..., coretrace.8
//!   coretrace-gen completions SHELL DIR [--suffix SUFFIX]   -> bash, zsh or fish files
//!
//! With `--suffix -coretrace`, the tools are named as the Debian package installs them
//! (`execsnoop-coretrace`), in the file names and in the pages.

mod pages;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap_complete::Shell;
use coretrace::tools::{Tool, TOOLS};

const USAGE: &str = "usage: coretrace-gen man DIR [--suffix SUFFIX] | coretrace-gen completions SHELL DIR [--suffix SUFFIX]";

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("coretrace-gen", run)
}

fn run() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut suffix = String::new();
    if let Some(i) = args.iter().position(|a| a == "--suffix") {
        if i + 1 >= args.len() {
            bail!("--suffix needs a value, e.g. --suffix -coretrace ({USAGE})");
        }
        suffix = args.remove(i + 1);
        args.remove(i);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["man", dir] => man(Path::new(dir), &suffix),
        ["completions", shell, dir] => {
            let shell = match *shell {
                "bash" => Shell::Bash,
                "zsh" => Shell::Zsh,
                "fish" => Shell::Fish,
                _ => bail!("unknown shell '{shell}': use bash, zsh or fish"),
            };
            completions(shell, Path::new(dir), &suffix)
        }
        _ => bail!("{USAGE}"),
    }
}

fn create(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn write(path: PathBuf, text: &[u8]) -> Result<()> {
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

fn man(dir: &Path, suffix: &str) -> Result<()> {
    create(dir)?;
    for tool in TOOLS {
        let name = format!("{}{suffix}", tool.name);
        write(
            dir.join(format!("{name}.8")),
            tool_page(tool, &name, suffix)?.as_bytes(),
        )?;
    }
    write(dir.join("coretrace.8"), coretrace_page(suffix).as_bytes())
}

/// Text for roff: backslashes and hyphens escaped, no line starting with a control character.
fn esc(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    t.lines()
        .map(|l| {
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn header(out: &mut String, name: &str, about: &str) {
    let version = env!("CARGO_PKG_VERSION");
    // No date: the page must be the same whenever it is built.
    let _ = writeln!(
        out,
        ".TH {} 8 \"\" \"coretrace {version}\" \"System Manager's Manual\"",
        esc(&name.to_uppercase())
    );
    let _ = writeln!(out, ".SH NAME\n{} \\- {}", esc(name), esc(about));
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, ".SH {title}");
}

fn paragraphs(out: &mut String, paras: &[&str]) {
    for (i, p) in paras.iter().enumerate() {
        if i > 0 {
            out.push_str(".PP\n");
        }
        let _ = writeln!(out, "{}", esc(p));
    }
}

fn tagged(out: &mut String, items: &[(&str, &str)], bold: bool) {
    for (tag, text) in items {
        let tag = esc(tag);
        let tag = if bold { format!("\\fB{tag}\\fR") } else { tag };
        let _ = writeln!(out, ".TP\n{tag}\n{}", esc(text));
    }
}

fn tool_page(tool: &Tool, name: &str, suffix: &str) -> Result<String> {
    let page = &tool.page;
    let mut cmd = (tool.command)();
    cmd.build();
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let mut out = String::new();
    header(&mut out, name, &about);

    section(&mut out, "SYNOPSIS");
    let positionals: Vec<&clap::Arg> = cmd.get_positionals().collect();
    let mut synopsis = String::from("[\\fIOPTIONS\\fR]");
    for p in &positionals {
        let value = p.get_value_names().map(|v| v.join(" ")).unwrap_or_default();
        let _ = write!(synopsis, " \\fI{}\\fR...", esc(&value));
    }
    let _ = writeln!(
        out,
        "\\fB{}\\fR {synopsis}\n.br\n\\fBcoretrace {}\\fR {synopsis}",
        esc(name),
        esc(tool.name)
    );

    section(&mut out, "DESCRIPTION");
    paragraphs(&mut out, page.description);

    section(&mut out, "REQUIREMENTS");
    let kernel = pages::kernel();
    paragraphs(
        &mut out,
        &[&[kernel.as_str()][..], page.requirements].concat(),
    );

    options(&mut out, &cmd, &positionals);
    examples_section(&mut out, &cmd, tool, name)?;

    section(&mut out, "FIELDS");
    tagged(&mut out, page.fields, true);

    section(&mut out, "EXIT STATUS");
    let shared: Vec<(&str, String)> = pages::SHARED_EXIT
        .iter()
        .map(|(code, what)| (*code, what.replace("TOOL", name)))
        .collect();
    let shared: Vec<(&str, &str)> = shared.iter().map(|(c, w)| (*c, w.as_str())).collect();
    tagged(&mut out, &[&shared[..], page.exit_status].concat(), true);

    section(&mut out, "ENVIRONMENT");
    tagged(&mut out, pages::ENVIRONMENT, true);

    section(&mut out, "OVERHEAD");
    paragraphs(&mut out, page.overhead);

    section(&mut out, "SEE ALSO");
    let mut refs: Vec<String> = TOOLS
        .iter()
        .filter(|t| t.name != tool.name)
        .map(|t| format!("{}{suffix}(8)", t.name))
        .collect();
    refs.push("coretrace(8)".into());
    refs.extend(page.see_also.iter().map(|s| s.to_string()));
    refs.push("bpftool(8)".into());
    let _ = writeln!(out, "{}", see_also(&refs));
    Ok(out)
}

/// OPTIONS: the positionals, then every option not hidden, with its values and default.
fn options(out: &mut String, cmd: &clap::Command, positionals: &[&clap::Arg]) {
    section(out, "OPTIONS");
    for p in positionals {
        let value = p.get_value_names().map(|v| v.join(" ")).unwrap_or_default();
        let help = p.get_long_help().or(p.get_help()).map(|h| h.to_string());
        let _ = writeln!(
            out,
            ".TP\n\\fI{}\\fR\n{}",
            esc(&value),
            esc(&help.unwrap_or_default())
        );
    }
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
    {
        let mut tag = Vec::new();
        if let Some(s) = arg.get_short() {
            tag.push(format!("\\fB\\-{s}\\fR"));
        }
        if let Some(l) = arg.get_long() {
            tag.push(format!("\\fB\\-\\-{}\\fR", esc(l)));
        }
        let mut tag = tag.join(", ");
        if arg.get_action().takes_values() {
            if let Some(v) = arg.get_value_names() {
                let _ = write!(tag, " \\fI{}\\fR", esc(&v.join(" ")));
            }
        }
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        if arg.get_action().takes_values() && !possible.is_empty() {
            let _ = write!(help, " (one of: {})", possible.join(", "));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if arg.get_action().takes_values() && !defaults.is_empty() {
            let _ = write!(help, " (default: {})", defaults.join(" "));
        }
        let _ = writeln!(out, ".TP\n{tag}\n{}", esc(&help));
    }
}

/// EXAMPLES: those of its --help, one per entry, each command as typed.
fn examples_section(out: &mut String, cmd: &clap::Command, tool: &Tool, name: &str) -> Result<()> {
    section(out, "EXAMPLES");
    let after = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let examples = examples(&after);
    if examples.is_empty() {
        bail!("{}: no \"Examples:\" in its --help", tool.name);
    }
    for (command, what) in examples {
        let command = command.replacen(tool.name, name, 1);
        let mut what = what.to_string();
        if let Some(first) = what.get(..1) {
            what = format!("{}{}:", first.to_uppercase(), &what[1..]);
        }
        // Unfilled: each command on one line, as typed.
        let _ = writeln!(
            out,
            ".TP\n{}\n.nf\n\\fB# {}\\fR\n.fi",
            esc(&what),
            esc(&command)
        );
    }

    Ok(())
}

fn see_also(refs: &[String]) -> String {
    refs.iter()
        .map(|r| {
            let (name, section) = r.split_once('(').unwrap_or((r, ""));
            format!(".BR {} ({}", esc(name), section)
        })
        .collect::<Vec<_>>()
        .join(" ,\n")
}

/// "  command   # what it does" lines after "Examples:" in a tool's --help.
fn examples(after_help: &str) -> Vec<(String, String)> {
    after_help
        .lines()
        .skip_while(|l| l.trim() != "Examples:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let (command, what) = l.split_once(" # ")?;
            Some((command.trim().to_string(), what.trim().to_string()))
        })
        .collect()
}

fn coretrace_page(suffix: &str) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "coretrace",
        "CO-RE eBPF tracing tools in one binary",
    );
    section(&mut out, "SYNOPSIS");
    out.push_str("\\fBcoretrace\\fR \\fITOOL\\fR [\\fIOPTIONS\\fR]\n.br\n\\fBcoretrace \\-\\-help\\fR | \\fB\\-\\-version\\fR\n");
    section(&mut out, "DESCRIPTION");
    paragraphs(
        &mut out,
        &["coretrace is one binary holding every tool of the suite; each is a BPF program compiled once and relocated at load time against the running kernel's types (CO-RE), so one build runs on any kernel with BTF (see REQUIREMENTS in each tool's page). It runs the tool named by its first argument, or by the name it was started as: a link named after a tool, also with a distribution's prefix or suffix (ct-execsnoop, execsnoop-coretrace)."],
    );
    let _ = writeln!(out, ".PP\nThe tools:");
    let tools: Vec<(String, String)> = TOOLS
        .iter()
        .map(|t| {
            let about = (t.command)().get_about().map(|a| a.to_string());
            (format!("{}{suffix}", t.name), about.unwrap_or_default())
        })
        .collect();
    let tools: Vec<(&str, &str)> = tools
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    tagged(&mut out, &tools, true);
    section(&mut out, "NAMES");
    paragraphs(
        &mut out,
        &[&format!("The Debian package installs /usr/sbin/coretrace and a link /usr/sbin/TOOL{suffix} for each tool, so that it installs beside libbpf-tools and bpfcc-tools, which own /usr/sbin/execsnoop and friends. For the short names, put /usr/lib/coretrace/bin, a directory of links named after the tools, first on PATH:"), "PATH=/usr/lib/coretrace/bin:$PATH execsnoop"],
    );
    section(&mut out, "OPTIONS");
    tagged(
        &mut out,
        &[
            ("-h, --help", "List the tools."),
            (
                "-V, --version",
                "Print the version, the commit it was built from and the version of libbpf in it.",
            ),
        ],
        true,
    );
    section(&mut out, "EXAMPLES");
    out.push_str(".TP\nRun execsnoop:\n.nf\n\\fB# coretrace execsnoop \\-d 100\\fR\n.fi\n");
    out.push_str(".TP\nWhat this kernel offers a tool:\n.nf\n\\fB# coretrace uprobe\\-lat \\-\\-check\\fR\n.fi\n");
    section(&mut out, "EXIT STATUS");
    paragraphs(
        &mut out,
        &["The tool's own (see its page); 2 when no tool, or an unknown one, is named."],
    );
    section(&mut out, "SEE ALSO");
    let mut refs: Vec<String> = TOOLS
        .iter()
        .map(|t| format!("{}{suffix}(8)", t.name))
        .collect();
    refs.push("bpftool(8)".into());
    let _ = writeln!(out, "{}", see_also(&refs));
    out
}

/// Completions for each tool under its installed name, and for `coretrace TOOL ...`.
fn completions(shell: Shell, dir: &Path, suffix: &str) -> Result<()> {
    create(dir)?;
    let mut all = clap::Command::new("coretrace")
        .about("CO-RE eBPF tracing tools in one binary")
        .version(env!("CARGO_PKG_VERSION"));
    for tool in TOOLS {
        let mut cmd = (tool.command)();
        let name = format!("{}{suffix}", tool.name);
        let path = clap_complete::generate_to(shell, &mut cmd, name, dir)?;
        println!("{}", path.display());
        all = all.subcommand((tool.command)());
    }
    let path = clap_complete::generate_to(shell, &mut all, "coretrace", dir)?;
    println!("{}", path.display());
    Ok(())
}
