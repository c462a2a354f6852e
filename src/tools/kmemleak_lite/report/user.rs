//! The report's side of user stacks walked in user space (--unwind dwarf, unwind.rs): stack
//! copies arriving, how each stack was walked, and which stacks are incomplete and why, said
//! in every report (never silently short).

use std::fmt::Write as _;

use serde::Serialize;

use super::super::unwind::{self, UserId};
use super::{Mode, Reporter};

/// Allocations (of those the report totals) whose stacks are not whole, by cause (JSON
/// `incomplete_stacks`).
#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub(super) struct Incomplete {
    /// The stack went deeper than the bytes copied (--stack-bytes).
    cut: u64,
    /// A frame lies in code the tool never saw mapped: the process ended (or unmapped it)
    /// before its maps were read, or the file was deleted.
    unmapped: u64,
}

impl Reporter<'_> {
    /// A stack copy to unwind: unwinds it (with the maps read again first when the loader said
    /// they changed or its address is not in them) and says true; false for other records.
    pub(super) fn stack_copy(&mut self, data: &[u8]) -> bool {
        if self.user_stacks.is_none() || !unwind::Stacks::is_sample(data) {
            return false;
        }
        let ip = u64::from_ne_bytes(data[16..24].try_into().expect("8 bytes"));
        if self.maps_changed || !self.symbols.maps().iter().any(|m| m.contains(ip)) {
            self.refresh_maps();
        }
        if let Some(stacks) = &mut self.user_stacks {
            stacks.add(data, self.symbols.maps());
        }
        true
    }

    /// User mode: how stacks are walked (JSON `unwind`); None in kernel mode.
    pub(super) fn unwound_how(&self) -> Option<&'static str> {
        match (self.mode, &self.user_stacks) {
            (Mode::Kernel, _) => None,
            (_, Some(_)) => Some(unwind::DWARF),
            (_, None) => Some(unwind::FP),
        }
    }

    /// Whether a stack unwound from a copy was cut at --stack-bytes.
    pub(super) fn is_cut(&self, stack_id: i64) -> bool {
        let stacks = self.user_stacks.as_ref();
        stacks
            .and_then(|s| s.stack(stack_id))
            .is_some_and(|s| s.cut)
    }

    /// --unwind dwarf: a call site standing for its allocations' stacks: the report's words for
    /// it and JSON's `call_site_only`.
    pub(super) fn user_site(&self, stack_id: i64) -> Option<(String, &'static str)> {
        self.user_stacks.as_ref()?;
        match UserId::of(stack_id)? {
            UserId::Site { lost: false, .. } => Some((
                format!(
                    "call site, stacks not taken (over {} a second from it; --stacks-per-second)",
                    self.stacks_per_second
                ),
                "over_budget",
            )),
            UserId::Site { lost: true, .. } => Some((
                "call site, stack copies lost (the ring buffer was full)".to_string(),
                "stack_lost",
            )),
            UserId::Sample(_) => None,
        }
    }

    /// --unwind dwarf: the allocations of this report whose stacks are not whole, by cause
    /// (over every stack totalled, not only the top ones shown).
    pub(super) fn incomplete(&self) -> Option<Incomplete> {
        let stacks = self.user_stacks.as_ref()?;
        let mut n = Incomplete::default();
        for (&id, &(_, count)) in &self.totals {
            if let Some(s) = stacks.stack(id) {
                n.cut += count * s.cut as u64;
                n.unmapped += count * s.unmapped as u64;
            }
        }
        Some(n)
    }

    /// The text report's line for [`Reporter::incomplete`], when a stack is.
    pub(super) fn write_incomplete(&self, text: &mut String) {
        let Some(n) = self.incomplete() else {
            return;
        };
        if n.cut > 0 {
            let bytes = self.user_stacks.as_ref().map_or(0, |s| s.stack_bytes);
            let _ = writeln!(
                text,
                "\t{} allocations have stacks cut: deeper than the {bytes} bytes copied (raise --stack-bytes)",
                n.cut
            );
        }
        if n.unmapped > 0 {
            let _ = writeln!(
                text,
                "\t{} allocations have stacks through code the tool never saw mapped: the process ended or unmapped it before its maps were read, or its file was deleted (keep the process running until a report)",
                n.unmapped
            );
        }
    }
}
