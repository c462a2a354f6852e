//! The one ring-buffer consumer every tool uses. It polls the `events` ring buffer, hands each
//! record to the tool's [`Handler`], flushes output once per poll round, stops on Ctrl-C,
//! SIGTERM or `--timeout`, and reports what was lost, by cause (the `losses` counters every
//! program keeps, see src/bpf/common.bpf.h and [`losses`]).

pub mod losses;
mod stop;

pub use losses::{
    EventsLost, LossCause, LossCounts, Losses, SkippedRuns, PROBE_SKIPPED, RINGBUF_FULL,
};
pub use stop::Stop;

use std::cell::RefCell;
use std::mem::size_of;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};

use crate::output::metrics::Exposition;
use crate::output::Sink;

/// How long one poll waits. Bounds both the latency of an event that did not wake us (see
/// `wakeup_bytes` in common.bpf.h) and how long a stop request waits.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often the loss counters are read while running.
const LOSS_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What a tool plugs into the consumer: decode and render one record.
pub trait Handler {
    /// One record, exactly as the BPF program submitted it.
    fn event(&mut self, data: &[u8]) -> Result<()>;
    /// Where the tool writes; the consumer flushes it and reports losses into it.
    fn sink(&mut self) -> &mut Sink;
    /// Called after every poll round (for interval reports).
    fn tick(&mut self, _now: Instant) -> Result<()> {
        Ok(())
    }
    /// Called once when the run ends (for summaries).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// Adds the tool's own Prometheus families (histograms, gauges) to an export; the
    /// consumer adds the events received and the losses. Called at each metrics interval and
    /// at the end, only when metrics are exported.
    fn metrics(&mut self, _out: &mut Exposition) {}
}

/// Decodes a record into `T` (a type the skeleton generated from the shared C header).
/// Returns the value and the bytes that follow it (the variable part, if any).
pub fn decode<T: plain::Plain>(data: &[u8]) -> Result<(&T, &[u8])> {
    if data.len() < size_of::<T>() {
        bail!(
            "short record from the kernel: {} bytes, expected at least {}",
            data.len(),
            size_of::<T>()
        );
    }
    let (head, rest) = data.split_at(size_of::<T>());
    let value = plain::from_bytes::<T>(head)
        .map_err(|e| anyhow::anyhow!("misaligned record from the kernel: {e:?}"))?;
    Ok((value, rest))
}

/// Consumes `events` until `stop` says so, then drains what is left, lets the handler finish,
/// and reports what was lost, by cause: while running as it grows (a warning on stderr, or a
/// record in the JSON stream), at the end one line per cause on stderr and, with `--json`,
/// one loss record (always, zeros included). Under `--fail-on-loss` a run that lost anything
/// ends with [`EventsLost`].
pub fn run(
    events: &dyn MapCore,
    losses: &Losses,
    stop: &Stop,
    handler: &mut dyn Handler,
) -> Result<()> {
    let handler = RefCell::new(handler);
    let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let received = std::cell::Cell::new(0u64);
    let mut builder = RingBufferBuilder::new();
    builder
        .add(events, |data: &[u8]| {
            received.set(received.get() + 1);
            match handler.borrow_mut().event(data) {
                Ok(()) => 0,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    -1
                }
            }
        })
        .context("setting up the ring buffer")?;
    let ring = builder.build().context("setting up the ring buffer")?;

    // The probes are live: the header goes out now, not after the first poll round.
    handler.borrow_mut().sink().flush()?;

    let mut reported = 0;
    let mut next_loss_check = Instant::now() + LOSS_CHECK_INTERVAL;
    loop {
        let stopping = stop.requested();
        let ret = ring.poll_raw(if stopping {
            Duration::ZERO
        } else {
            POLL_INTERVAL
        });
        // Records that arrived without a wake-up are not signalled through epoll.
        let ret2 = ring.consume_raw();
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        for r in [ret, ret2] {
            if r < 0 && r != -libc::EINTR {
                bail!(
                    "reading the ring buffer: {}",
                    std::io::Error::from_raw_os_error(-r)
                );
            }
        }
        let now = Instant::now();
        let mut h = handler.borrow_mut();
        h.tick(now)?;
        if !stopping && now >= next_loss_check {
            next_loss_check = now + LOSS_CHECK_INTERVAL;
            let counts = LossCounts::read(losses)?;
            if counts.total() > reported {
                reported = counts.total();
                h.sink().lost(losses.tool, &counts)?;
            }
        }
        if !stopping {
            export_metrics(&mut **h, losses, received.get(), now, false)?;
        }
        h.sink().flush()?;
        if stopping {
            break;
        }
    }
    drop(ring);
    let h = handler.into_inner();
    h.finish()?;
    export_metrics(h, losses, received.get(), Instant::now(), true)?;
    let counts = LossCounts::read(losses)?;
    h.sink().final_losses(&counts)?;
    h.sink().flush()?;
    for line in counts.lines(losses.tool) {
        eprintln!("{line}");
    }
    if losses.fail_on_loss && counts.total() > 0 {
        return Err(EventsLost(counts.total()).into());
    }
    Ok(())
}

/// When an export is due (or at the end, `last`): the records received, the losses by cause,
/// and the tool's own families.
fn export_metrics(
    h: &mut dyn Handler,
    losses: &Losses,
    received: u64,
    now: Instant,
    last: bool,
) -> Result<()> {
    if !h.sink().metrics_due(now, last) {
        return Ok(());
    }
    let mut exp = Exposition::new();
    exp.common(losses.tool, received, &LossCounts::read(losses)?);
    h.metrics(&mut exp);
    h.sink().publish_metrics(exp, now)
}

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

    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Rec {
        a: u64,
        b: u32,
        c: u32,
    }
    unsafe impl plain::Plain for Rec {}

    #[test]
    fn decode_splits_header_and_tail() {
        let mut raw = vec![0u64; 4]; // 8-byte aligned backing store
        let bytes: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().cast(), 32) };
        bytes[..8].copy_from_slice(&7u64.to_ne_bytes());
        bytes[16..19].copy_from_slice(b"abc");
        let (rec, rest) = decode::<Rec>(&bytes[..19]).unwrap();
        assert_eq!(rec.a, 7);
        assert_eq!(rest, b"abc");
        assert!(decode::<Rec>(&bytes[..8]).is_err());
    }
}
