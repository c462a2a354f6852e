//! One report as text, in memleak's format: the allocations (-a), then each top stack with its
//! totals, where it comes from, its frames and kernel mode's notes.

use std::fmt::Write as _;

use anyhow::Result;

use super::gather::Top;
use super::kernel::{unseen_free, CallSite};
use super::{Mode, Reporter};
use crate::host::symbols::Frame;

impl Reporter<'_> {
    /// The report as text, written to the sink at once.
    pub(super) fn write_text(&mut self, now_ns: u64, top: Top) -> Result<()> {
        let Top { top, stacks, infos } = top;
        let kernel = matches!(self.mode, Mode::Kernel);
        let mut text = String::new();
        let _ = writeln!(
            text,
            "[{}] Top {} stacks with outstanding allocations:",
            self.clock.hms(now_ns),
            top.len()
        );
        for &(addr, size, age, _) in &self.listed {
            let _ = writeln!(
                text,
                "\taddr = {addr:#x} size = {size} age = {:.3}s",
                age as f64 / 1e9
            );
        }
        for ((&(id, bytes, count), frames), info) in top.iter().zip(&stacks).zip(&infos) {
            let from = match CallSite::of(id) {
                Some(CallSite { lost: false, .. }) => format!(
                    "call site, stacks not taken (over {} a second from it in a process; --stacks-per-second)",
                    self.stacks_per_second
                ),
                Some(CallSite { lost: true, .. }) => {
                    "call site, stacks lost (the stack table was full or stacks collided; --max-stacks)".to_string()
                }
                None => match self.user_site(id) {
                    Some((from, _)) => from,
                    None => "stack".to_string(),
                },
            };
            let _ = match &info.cache {
                Some(cache) => writeln!(
                    text,
                    "\t{bytes} bytes in {count} allocations from {from} (cache {cache})"
                ),
                None => writeln!(text, "\t{bytes} bytes in {count} allocations from {from}"),
            };
            if frames.is_empty() {
                let _ = writeln!(
                    text,
                    "\t\t[stack not recorded{}]",
                    if id < 0 {
                        " (stack table full or hash collision)"
                    } else {
                        ""
                    }
                );
            }
            for &a in frames {
                let _ = writeln!(text, "\t\t{}", self.symbols.frame(a).text);
            }
            if self.is_cut(id) {
                let _ = writeln!(
                    text,
                    "\t\t[cut: the stack goes deeper than the {} bytes copied; --stack-bytes]",
                    self.user_stacks.as_ref().map_or(0, |s| s.stack_bytes)
                );
            }
            if kernel {
                let resolved: Vec<&Frame> = frames
                    .iter()
                    .filter_map(|a| self.symbols.cached(*a))
                    .collect();
                if let Some(why) = unseen_free(&resolved, info, count) {
                    let _ = writeln!(text, "\t\t({why})");
                }
            }
        }
        self.write_incomplete(&mut text);
        Ok(self.sink.writer().write_all(text.as_bytes())?)
    }
}
