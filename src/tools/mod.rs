//! One module per tool (its options, its BPF set-up, how it renders its events), and the one
//! registry that lists them: [`TOOLS`]. Everything that needs the list of tools reads it here:
//! the multicall dispatch and `coretrace --help` (src/multicall.rs), `coretrace --list-tools`
//! (which the scripts and tests read), and coretrace-gen's man pages and completions.
//!
//! A new tool is `src/bpf/T.bpf.c`, `src/bpf/T.h`, `src/tools/T.rs` (which defines `TOOL`),
//! `tests/T.rs`, and its line in `registry!` below.

use std::ffi::OsString;
use std::process::ExitCode;

/// A tool, as the rest of the suite sees it. Each tool's module defines one, `TOOL`.
pub struct Tool {
    /// Its name: the link it runs as, `coretrace NAME`, its messages and metrics.
    pub name: &'static str,
    /// Its command line; `--help`, the man page and completions come from it, and its `about`
    /// is the one-line summary `coretrace --help` lists.
    pub command: fn() -> clap::Command,
    /// Its `main`, given the name it was invoked as (for usage hints) and its command line (the
    /// first item is the program name, as in `std::env::args_os`).
    pub main: fn(&'static str, Vec<OsString>) -> ExitCode,
    /// What its man page says beyond the options.
    pub page: Page,
    /// The `event.name`s of the JSON records it writes (besides `losses`, which every tool
    /// writes): see `crate::output::schema::event`.
    pub events: &'static [&'static str],
}

/// What a tool's man page says beyond the options clap knows: its description, requirements,
/// output fields, cost and exit statuses. Paragraphs are plain text (coretrace-gen escapes
/// them and adds NAME, SYNOPSIS, OPTIONS and EXAMPLES from the tool's command line).
pub struct Page {
    pub description: &'static [&'static str],
    /// Minimum kernel and why; the capabilities, by mode.
    pub requirements: &'static [&'static str],
    /// (column, meaning with its unit)
    pub fields: &'static [(&'static str, &'static str)],
    pub overhead: &'static [&'static str],
    /// Exit statuses beyond the ones every tool shares.
    pub exit_status: &'static [(&'static str, &'static str)],
    /// The tools of BCC and libbpf-tools that do the same job.
    pub see_also: &'static [&'static str],
}

/// Declares each tool's module and lists its `TOOL` in [`TOOLS`], in the order given.
macro_rules! registry {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Every tool, in the order `coretrace --help` and `--list-tools` list them.
        pub const TOOLS: &[&Tool] = &[$(&$module::TOOL),*];
    };
}

registry! {
    execsnoop,
    exitsnoop,
    unlinksnoop,
    kmemleak_lite,
    uprobe_lat,
}

/// The tool called `name`.
pub fn named(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().copied().find(|t| t.name == name)
}

/// Every tool's command line, for man pages and shell completions (`coretrace-gen`).
pub fn commands() -> Vec<clap::Command> {
    TOOLS.iter().map(|t| (t.command)()).collect()
}
