//! Loss accounting: every place where an event can be dropped has its own counter, and a run
//! ends with how many were lost, by cause, with the advice that fits the cause.
//!
//! The BPF side counts into the per-CPU `losses` array of common.bpf.h: slot 0 is the ring
//! or perf buffer (`LOSS_RINGBUF_FULL`), a tool numbers its own causes from 1 in its header. The tool
//! describes each slot once, with a [`LossCause`]. Runs of its programs that the kernel
//! skipped (the program never saw the event) are added with [`Losses::with_skipped_runs`].

use std::fmt::Write as _;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use serde_json::{Map, Value};

use crate::output::schema::{event, Header};

/// Slots of the BPF `losses` map (LOSS_SLOTS in common.bpf.h).
pub use crate::skel::common::LOSS_SLOTS;

/// Exit status of a run that lost events under `--fail-on-loss`.
pub const EXIT_EVENTS_LOST: u8 = 3;

/// One way an event can be lost.
#[derive(Debug)]
pub struct LossCause {
    /// Slot in the BPF `losses` map; `None` for a cause counted in user space (the kernel's
    /// skipped runs, see [`Losses::with_skipped_runs`]).
    pub slot: Option<u32>,
    /// Name in the JSON loss record (`"ringbuf_full"`).
    pub key: &'static str,
    /// What was lost and why, after the count: "events lost: the ring buffer was full".
    pub what: &'static str,
    /// What the user can do about it.
    pub advice: &'static str,
}

/// Slot 0 in every tool: `bpf_ringbuf_reserve`/`output` failed.
pub const RINGBUF_FULL: LossCause = LossCause {
    slot: Some(crate::skel::common::LOSS_RINGBUF_FULL),
    key: "ringbuf_full",
    what: "events lost: the ring buffer was full",
    advice: "raise --ringbuf-size or narrow the filters",
};

/// Slot 0 where events travel through the perf buffer (see [`LossCounts::with_perf_buffer`]):
/// the consumer swaps it in for [`RINGBUF_FULL`], so no tool needs to know its transport.
pub const PERF_BUFFER_FULL: LossCause = LossCause {
    slot: Some(0),
    key: "perfbuf_full",
    what: "events lost: the perf buffer was full",
    advice: "raise --ringbuf-size, which sizes each CPU's perf buffer, or narrow the filters",
};

/// The last slot in every tool that sends cgroup names (common.bpf.h: `cgroup_names`, with
/// `--json` or `--print-container`): a name not sent because the map of names waiting for user
/// space was full. The event itself is kept; its container is then found by a lookup that
/// misses a cgroup already removed (shown as `id:N`).
pub const CGROUP_NAMES_FULL: LossCause = LossCause {
    slot: Some(crate::skel::common::LOSS_CGROUP_NAMES_FULL),
    key: "cgroup_names_full",
    what: "cgroup names not sent: the table of names waiting for user space was full (those events' containers were looked up later, and a removed one is shown by number)",
    advice: "the consumer fell behind: narrow the filters, or raise --ringbuf-size if events were lost too",
};

/// Counted in user space from the kernel's own count (see [`SkippedRuns`]).
pub const PROBE_SKIPPED: LossCause = LossCause {
    slot: None,
    key: "probe_skipped",
    what: "events lost: the kernel skipped the probe (another BPF program was running on that CPU, or a run of it was preempted)",
    advice: "the kernel does not nest tracepoint and kprobe programs; other BPF tools running at the same time make it likelier",
};

/// The kernel's count of the runs it skipped of some BPF programs (`recursion_misses` in their
/// `bpf_prog_info`, 5.12+): a tracing program that is preempted, or interrupted, on a CPU
/// blocks every other run of itself there, and such a run never happens, so its event is
/// lost without the program seeing it. Give it the programs whose skipped run loses an event.
pub struct SkippedRuns(Vec<i32>);

impl SkippedRuns {
    /// Programs that did not load (autoload off) are left out.
    pub fn new<P>(progs: &[&P]) -> SkippedRuns
    where
        P: libbpf_rs::AsRawLibbpf<LibbpfType = libbpf_rs::libbpf_sys::bpf_program>,
    {
        SkippedRuns(
            progs
                .iter()
                // SAFETY: the program pointer comes from a live libbpf-rs program, as bpf_program__fd expects.
                .map(|p| unsafe {
                    libbpf_rs::libbpf_sys::bpf_program__fd(p.as_libbpf_object().as_ptr())
                })
                .filter(|&fd| fd >= 0)
                .collect(),
        )
    }

    /// Every program of `object` that was loaded: for tools where any skipped run loses an
    /// event (or a call's timing).
    pub fn all_loaded(object: &libbpf_rs::Object) -> SkippedRuns {
        let progs: Vec<_> = object.progs().collect();
        SkippedRuns::new(&progs.iter().collect::<Vec<_>>())
    }

    /// The sum over the programs; one syscall per program (read once per loss check, not per
    /// event). The fds stay valid while the skeleton that owns them is alive, which outlives
    /// the consumer.
    pub fn count(&self) -> u64 {
        self.0
            .iter()
            .map(|&fd| {
                // SAFETY: bpf_prog_info is a plain C struct of integers, for which all zeros is valid.
                let mut info: libbpf_rs::libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of_val(&info) as u32;
                // SAFETY: the kernel writes at most `len` bytes into `info`, which is that large.
                let ret = unsafe {
                    libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len)
                };
                if ret == 0 {
                    info.recursion_misses
                } else {
                    0
                }
            })
            .sum()
    }
}

/// What the consumer needs to account for losses: the tool's name (for stderr), the BPF
/// counters, the tool's causes, the kernel's skipped runs of its programs, and whether a loss
/// fails the run.
pub struct Losses<'a> {
    pub tool: &'static str,
    pub map: &'a dyn MapCore,
    pub causes: &'static [LossCause],
    pub skipped: Option<(&'static LossCause, SkippedRuns)>,
    pub fail_on_loss: bool,
}

impl Losses<'_> {
    /// Counts the runs the kernel skipped of these programs as `cause` (usually
    /// [`PROBE_SKIPPED`]): give it the programs whose skipped run loses an event.
    pub fn with_skipped_runs(mut self, cause: &'static LossCause, runs: SkippedRuns) -> Self {
        self.skipped = Some((cause, runs));
        self
    }
}

/// Counts per cause at one moment.
#[derive(Debug, Default, Clone)]
pub struct LossCounts {
    pub counts: Vec<(&'static LossCause, u64)>,
}

impl LossCounts {
    /// Reads the BPF counters of every cause that has a slot, then the kernel's skipped runs.
    pub fn read(losses: &Losses) -> Result<LossCounts> {
        let mut counts = Vec::with_capacity(losses.causes.len() + 1);
        for cause in losses.causes {
            if let Some(slot) = cause.slot {
                let n = sum_percpu_u64(losses.map, slot).context("reading the loss counters")?;
                counts.push((cause, n));
            }
        }
        if crate::host::container::names_sent() {
            let slot = CGROUP_NAMES_FULL.slot.unwrap_or_default();
            let n = sum_percpu_u64(losses.map, slot).context("reading the loss counters")?;
            counts.push((&CGROUP_NAMES_FULL, n));
        }
        if let Some((cause, runs)) = &losses.skipped {
            counts.push((*cause, runs.count()));
        }
        counts.extend(crate::output::otlp::causes());
        Ok(LossCounts { counts })
    }

    /// With the perf buffer, slot 0 counts its drops, which the kernel reports twice: as the
    /// error of bpf_perf_event_output() (counted by the BPF side, exact at any moment) and as
    /// lost-sample records, `lost_samples` (delivered only once a later sample fits, so late;
    /// the only report on kernels whose helper does not return the error). Both count the
    /// same drops, so the larger is the count.
    pub fn with_perf_buffer(mut self, lost_samples: u64) -> LossCounts {
        for (cause, n) in &mut self.counts {
            if cause.slot == Some(0) {
                *cause = &PERF_BUFFER_FULL;
                *n = (*n).max(lost_samples);
            }
        }
        self
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// The loss record, `{..., "lost_events": N, "lost_by_cause": {"ringbuf_full": N, ...}}`:
    /// every cause, zeros included, so a script can tell "nothing lost" from "not reported".
    pub fn json(&self) -> impl serde::Serialize {
        #[derive(serde::Serialize)]
        struct LossJson {
            #[serde(flatten)]
            head: Header,
            lost_events: u64,
            lost_by_cause: Map<String, Value>,
        }
        LossJson {
            head: Header::untimed(event::LOSSES),
            lost_events: self.total(),
            lost_by_cause: self
                .counts
                .iter()
                .map(|(c, n)| (c.key.to_string(), Value::from(*n)))
                .collect(),
        }
    }

    /// One line for a warning while running: "12 events lost so far (ringbuf_full 10, ...)".
    pub fn brief(&self) -> String {
        let mut s = format!("{} events lost so far", self.total());
        let mut first = true;
        for (cause, n) in self.counts.iter().filter(|(_, n)| *n > 0) {
            s.push_str(if first { " (" } else { ", " });
            first = false;
            let _ = write!(s, "{} {n}", cause.key);
        }
        if !first {
            s.push(')');
        }
        s
    }

    /// One line per cause that lost anything: "tool: N what (advice)".
    pub fn lines(&self, tool: &str) -> Vec<String> {
        self.counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{tool}: {n} {} ({})", c.what, c.advice))
            .collect()
    }
}

/// The error a run ends with under `--fail-on-loss` when anything was lost; `cli::main_with`
/// turns it into exit status [`EXIT_EVENTS_LOST`].
#[derive(Debug)]
pub struct EventsLost(pub u64);

impl std::fmt::Display for EventsLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events lost (see the causes above); failing because of --fail-on-loss",
            self.0
        )
    }
}

impl std::error::Error for EventsLost {}

/// Sum over CPUs of the u64 in slot `key` of a per-CPU array (a BPF-side counter).
pub fn sum_percpu_u64(map: &dyn MapCore, key: u32) -> Result<u64> {
    let per_cpu = map
        .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)?
        .unwrap_or_default();
    Ok(per_cpu
        .iter()
        .filter_map(|v| v.get(..8))
        .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE_FULL: LossCause = LossCause {
        slot: Some(1),
        key: "table_full",
        what: "processes not followed: the table was full",
        advice: "raise --max-procs",
    };

    #[test]
    fn json_lists_every_cause_and_lines_only_the_nonzero_ones() {
        let counts = LossCounts {
            counts: vec![(&RINGBUF_FULL, 0), (&TABLE_FULL, 4)],
        };
        assert_eq!(counts.total(), 4);
        assert_eq!(
            serde_json::to_string(&counts.json()).unwrap(),
            r#"{"schema_url":"urn:coretrace:events:1","event.name":"losses","lost_events":4,"lost_by_cause":{"ringbuf_full":0,"table_full":4}}"#
        );
        assert_eq!(
            counts.lines("t"),
            ["t: 4 processes not followed: the table was full (raise --max-procs)"]
        );
        assert_eq!(counts.brief(), "4 events lost so far (table_full 4)");
    }

    #[test]
    fn the_perf_buffer_takes_slot_0_with_the_larger_count() {
        let counts = LossCounts {
            counts: vec![(&RINGBUF_FULL, 3), (&TABLE_FULL, 4)],
        };
        let counts = counts.with_perf_buffer(5);
        assert_eq!(
            serde_json::to_string(&counts.json()).unwrap(),
            r#"{"schema_url":"urn:coretrace:events:1","event.name":"losses","lost_events":9,"lost_by_cause":{"perfbuf_full":5,"table_full":4}}"#
        );
        assert!(counts.lines("t")[0].starts_with("t: 5 events lost: the perf buffer was full"));
        let counts = LossCounts {
            counts: vec![(&RINGBUF_FULL, 3)],
        };
        assert_eq!(counts.with_perf_buffer(0).total(), 3);
    }
}
