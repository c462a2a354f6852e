//! One module per tool: its options, its skeleton set-up, and how it renders its events.

pub mod execsnoop;
pub mod exitsnoop;
pub mod kmemleak_lite;
pub mod unlinksnoop;
pub mod uprobe_lat;

/// Every tool's command line, for man pages and shell completions (`coretrace-gen`).
pub fn commands() -> Vec<clap::Command> {
    crate::multicall::TOOLS
        .iter()
        .map(|t| (t.command)())
        .collect()
}
