//! --stack: the user call stack of each slow call (--slower-than), as BCC's funcslower offers.
//! At a slow call's return the BPF program sends a copy of the registers and of the stack's
//! top (src/bpf/user_stack.bpf.h) just before the call's record; here the copy waits for its
//! call, is unwound with the binaries' unwind tables (host::unwind, which walks frame pointers
//! where a function has no table) and its frames named (host::symbols), as kmemleak-lite's
//! --unwind dwarf does. The return probe's registers are the caller's: the stack starts in the
//! function that called the slow one (the row names the slow one).

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};

use super::Args;
use crate::host::proc_maps;
use crate::host::symbols::{Frame, Symbols};
use crate::host::unwind::{Sample, Unwinder, Unwound};
use crate::skel::uprobe_lat::defs::SLOW_STACK_SEQ;

/// How the stacks are walked (JSON `unwind`, as kmemleak-lite's).
pub const UNWIND: &str = "dwarf";

/// Copies kept waiting for their call's record: a record lost after its copy leaves one
/// behind, so the table is emptied when it reaches this many threads.
const MAX_PENDING: usize = 4096;

/// `--stack` is only meaningful with the rows it adds to, and needs an unwinder.
pub fn check(args: &Args) -> Result<()> {
    if !args.stack {
        return Ok(());
    }
    if args.slower_than.is_none() {
        bail!("--stack prints the stack of each call slower than --slower-than: add --slower-than DURATION (e.g. --slower-than 10ms)");
    }
    if !crate::host::unwind::SUPPORTED {
        bail!("--stack needs an unwinder, which coretrace has for x86-64 and arm64 only: leave out --stack");
    }
    Ok(())
}

/// Whether a record is a stack copy (a call record's second word, its latency, never has
/// SLOW_STACK_SEQ set).
pub fn is_copy(record: &[u8]) -> bool {
    Sample::parse(record).is_some_and(|s| s.seq & SLOW_STACK_SEQ != 0)
}

/// A slow call's stack, unwound and named.
pub struct Stack {
    pub frames: Vec<Frame>,
    /// Deeper than the bytes copied (--stack-bytes): the outermost callers are missing.
    pub cut: bool,
    /// The walk stopped at code no longer mapped (the process exited or unmapped it before
    /// its maps were read).
    pub unmapped: bool,
}

/// The copies waiting for their calls, and the unwinder and names of the last process seen.
pub struct Stacks {
    unwinder: Unwinder,
    symbols: Symbols,
    /// The process `symbols` and `unwinder` hold the files of.
    pid: Option<u32>,
    /// Thread id -> its copy (the record's bytes).
    pending: HashMap<u32, Vec<u8>>,
    /// --stack-bytes (said beside a cut stack).
    pub stack_bytes: u32,
}

impl Stacks {
    pub fn new(stack_bytes: u32) -> Self {
        Stacks {
            unwinder: Unwinder::default(),
            symbols: Symbols::user(),
            pid: None,
            pending: HashMap::new(),
            stack_bytes,
        }
    }

    /// Keeps a copy until its call's record comes (right after it).
    pub fn copy(&mut self, record: &[u8]) {
        let Some(sample) = Sample::parse(record) else {
            return;
        };
        let tid = sample.seq as u32;
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&tid) {
            self.pending.clear();
        }
        self.pending.insert(tid, record.to_vec());
    }

    /// The stack of thread `tid`'s slow call in process `pid`; None if its copy never came.
    pub fn take(&mut self, pid: u32, tid: u32) -> Option<Stack> {
        let record = self.pending.remove(&tid)?;
        let sample = Sample::parse(&record)?;
        if self.pid != Some(pid) {
            // Another process: its addresses mean other code.
            self.symbols = Symbols::user();
            self.unwinder = Unwinder::default();
            self.pid = Some(pid);
        }
        if let Ok(maps) = proc_maps::read(pid) {
            self.symbols.update_maps(maps);
        }
        self.unwinder.sync_modules(self.symbols.maps());
        let Unwound {
            frames,
            cut,
            unmapped,
        } = self.unwinder.unwind(sample.regs, sample.data, sample.ended);
        self.symbols.resolve(&frames);
        let frames = frames
            .iter()
            .map(|&a| self.symbols.frame(a).clone())
            .collect();
        Some(Stack {
            frames,
            cut,
            unmapped,
        })
    }

    /// The text lines under a slow call's row: one frame a line, then why it is not whole.
    pub fn text(&self, stack: Option<&Stack>, out: &mut String) {
        let Some(stack) = stack else {
            out.push_str("\t[stack lost: no room to send it (counted as stack_lost)]\n");
            return;
        };
        for f in &stack.frames {
            let _ = writeln!(out, "\t{}", f.text);
        }
        if stack.cut {
            let _ = writeln!(
                out,
                "\t[cut: the stack goes deeper than the {} bytes copied; --stack-bytes]",
                self.stack_bytes
            );
        }
        if stack.unmapped {
            out.push_str("\t[ends at code no longer mapped: the process exited or unmapped it]\n");
        }
    }
}

/// A slow call's stack in JSON (flattened into its slow_call record): `stack`, frames as
/// kmemleak-lite's; empty when the copy was lost (`stack_lost`).
#[derive(serde::Serialize)]
pub struct StackJson<'a> {
    stack: &'a [Frame],
    unwind: &'static str,
    cut: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unmapped: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stack_lost: bool,
}

impl<'a> StackJson<'a> {
    pub fn of(stack: Option<&'a Stack>) -> Self {
        StackJson {
            stack: stack.map_or(&[], |s| &s.frames),
            unwind: UNWIND,
            cut: stack.is_some_and(|s| s.cut),
            unmapped: stack.is_some_and(|s| s.unmapped),
            stack_lost: stack.is_none(),
        }
    }
}
