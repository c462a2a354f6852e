//! One report as one JSON object (`leak_report`; names in src/output/schema.rs).

use anyhow::Result;
use serde::Serialize;

use super::gather::Top;
use super::kernel::{unseen_free, CallSite};
use super::user::Incomplete;
use super::{Mode, Reporter};
use crate::host::container::CgroupFields;
use crate::output::schema::{event, Header};
use crate::host::symbols::Frame;

#[derive(Serialize)]
struct StackJson<'f> {
    bytes: u64,
    allocations: u64,
    stack_id: i64,
    frames: Vec<&'f Frame>,
    /// Kernel mode: why these objects are not leaks although no free was seen (see
    /// [`unseen_free`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    unseen_free: Option<String>,
    /// Kernel mode: the slab cache the stack allocates from, where the tracepoint names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<String>,
    /// Kernel mode: this stack's objects handed out again while still listed (freed unseen).
    #[serde(skip_serializing_if = "Option::is_none")]
    freed_unseen: Option<u64>,
    /// Allocations counted under their call site, and why ([`CallSite`], [`UserId::Site`]):
    /// `frames` holds the call site alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    call_site_only: Option<&'static str>,
    /// User mode: how the stack was walked, "fp" or "dwarf" (--unwind).
    #[serde(skip_serializing_if = "Option::is_none")]
    unwind: Option<&'static str>,
    /// User mode: the stack went deeper than the bytes copied (--stack-bytes): its outermost
    /// callers are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    cut: Option<bool>,
}

#[derive(Serialize)]
struct AllocJson {
    addr: String,
    size: u64,
    age_ms: u64,
    stack_id: i64,
}

/// One report (names: src/output/schema.rs).
#[derive(Serialize)]
struct ReportJson<'f> {
    #[serde(flatten)]
    head: Header,
    #[serde(rename = "final")]
    last: bool,
    stacks: Vec<StackJson<'f>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allocations: Option<Vec<AllocJson>>,
    /// -p / a command: the traced process's cgroup and container (kernel mode mixes every
    /// task's allocations and has none).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    cgroup: Option<CgroupFields<'f>>,
    /// --unwind dwarf: allocations whose stacks are not whole, by cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete_stacks: Option<Incomplete>,
}

impl Reporter<'_> {
    /// The report as JSON: the top stacks, with -a the allocations, the traced process's
    /// cgroup, and with --unwind dwarf the stacks that are not whole.
    pub(super) fn write_json(&mut self, now_ns: u64, last: bool, top: Top) -> Result<()> {
        let Top { top, stacks, infos } = top;
        let kernel = matches!(self.mode, Mode::Kernel);
        let incomplete_stacks = self.incomplete();
        let symbols = &self.symbols;
        let record = ReportJson {
            head: Header::new(event::LEAK_REPORT, self.clock.rfc3339(now_ns)),
            last,
            stacks: top
                .iter()
                .zip(&stacks)
                .zip(&infos)
                .map(|((&(id, bytes, count), frames), info)| {
                    let frames: Vec<&Frame> =
                        frames.iter().filter_map(|a| symbols.cached(*a)).collect();
                    StackJson {
                        bytes,
                        allocations: count,
                        stack_id: id,
                        unseen_free: kernel
                            .then(|| unseen_free(&frames, info, count))
                            .flatten(),
                        cache: info.cache.clone(),
                        freed_unseen: kernel.then_some(info.reused),
                        call_site_only: CallSite::of(id)
                            .map(CallSite::why)
                            .or_else(|| self.user_site(id).map(|(_, why)| why)),
                        unwind: self.unwound_how(),
                        cut: self.unwound_how().map(|_| self.is_cut(id)),
                        frames,
                    }
                })
                .collect(),
            allocations: self.show_allocs.then(|| {
                self.listed
                    .iter()
                    .map(|&(addr, size, age, id)| AllocJson {
                        addr: format!("{addr:#x}"),
                        size,
                        age_ms: age / 1_000_000,
                        stack_id: id,
                    })
                    .collect()
            }),
            cgroup: self.cgroup_id.map(|id| self.containers.json(id)),
            incomplete_stacks,
        };
        Ok(self.sink.json(&record)?)
    }
}
