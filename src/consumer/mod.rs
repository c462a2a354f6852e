//! The one consumer every tool uses. It polls the `events` ring buffer (or, where the kernel
//! has none, the perf buffer: see [`transport`]), hands each record to the tool's [`Handler`],
//! flushes output once per poll round, stops on Ctrl-C, SIGTERM or `--timeout`, and reports
//! what was lost, by cause (the `losses` counters every program keeps, see
//! src/bpf/common.bpf.h and [`crate::output::losses`]).

mod stop;
pub mod transport;

pub use crate::output::losses::{
    EventsLost, LossCause, LossCounts, Losses, SkippedRuns, PERF_BUFFER_FULL, PROBE_SKIPPED,
    RINGBUF_FULL,
};
pub use stop::Stop;

use std::cell::RefCell;
use std::mem::size_of;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use std::os::fd::AsRawFd;

use libbpf_rs::{libbpf_sys, MapCore, MapType, RingBuffer, RingBufferBuilder};

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
    /// The tool's cgroup attributions, if it keeps any: the consumer has those of cgroups that
    /// are gone forgotten once a second, also while no event comes.
    fn containers(&mut self) -> Option<&mut crate::host::container::Resolver> {
        None
    }
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
/// ends with [`EventsLost`]. `buffer_bytes` is the size given to `consumer::transport::size_ringbuf`: the
/// ring buffer's, or each CPU's perf buffer's.
pub fn run<M: MapCore>(
    events: &M,
    buffer_bytes: u32,
    losses: &Losses,
    stop: &Stop,
    handler: &mut dyn Handler,
) -> Result<()> {
    let handler = RefCell::new(handler);
    let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let received = std::cell::Cell::new(0u64);
    let deliver = |data: &[u8]| -> bool {
        if failure.borrow().is_some() {
            return false;
        }
        received.set(received.get() + 1);
        match handler.borrow_mut().event(data) {
            Ok(()) => true,
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                false
            }
        }
    };
    let reader = Reader::new(events, buffer_bytes, &deliver)?;

    // The probes are live: the header goes out now, not after the first poll round.
    handler.borrow_mut().sink().flush()?;

    let mut reported = 0;
    let mut next_loss_check = Instant::now() + LOSS_CHECK_INTERVAL;
    loop {
        let stopping = stop.requested();
        let (ret, ret2) = reader.read(if stopping {
            Duration::ZERO
        } else {
            POLL_INTERVAL
        });
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        for r in [ret, ret2] {
            if r < 0 && r != -libc::EINTR {
                bail!(
                    "reading the {}: {}",
                    reader.name(),
                    std::io::Error::from_raw_os_error(-r)
                );
            }
        }
        let now = Instant::now();
        let mut h = handler.borrow_mut();
        h.tick(now)?;
        if !stopping && now >= next_loss_check {
            next_loss_check = now + LOSS_CHECK_INTERVAL;
            // Cgroup names nobody asked for yet leave the BPF map (src/host/container/names.rs).
            crate::host::container::drain_names();
            if let Some(resolver) = h.containers() {
                resolver.sweep();
            }
            let counts = loss_counts(losses, reader.lost_samples())?;
            if counts.total() > reported {
                reported = counts.total();
                h.sink().lost(losses.tool, &counts)?;
            }
        }
        if !stopping && h.sink().metrics_due(now, false) {
            let counts = loss_counts(losses, reader.lost_samples())?;
            export_metrics(&mut **h, losses.tool, received.get(), &counts, now, false)?;
        }
        h.sink().flush()?;
        if stopping {
            break;
        }
    }
    let perf_lost = reader.lost_samples();
    drop(reader);
    conclude(handler.into_inner(), losses, perf_lost, received.get())
}

/// After the last poll: the handler's last words, the last metrics, and what was lost (the
/// JSON loss record, one line per cause on stderr, [`EventsLost`] under `--fail-on-loss`).
fn conclude(
    h: &mut dyn Handler,
    losses: &Losses,
    perf_lost: Option<u64>,
    received: u64,
) -> Result<()> {
    h.finish()?;
    let counts = loss_counts(losses, perf_lost)?;
    export_metrics(h, losses.tool, received, &counts, Instant::now(), true)?;
    // OTLP sends what it holds (a bounded wait); the report then counts what it could not.
    h.sink().close_export();
    let counts = loss_counts(losses, perf_lost)?;
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
    tool: &str,
    received: u64,
    counts: &LossCounts,
    now: Instant,
    last: bool,
) -> Result<()> {
    if !h.sink().metrics_due(now, last) {
        return Ok(());
    }
    let mut exp = Exposition::new();
    exp.common(tool, received, counts);
    exp.family(
        "coretrace_cgroups_tracked",
        "gauge",
        "Cgroups whose names user space holds (those gone are forgotten within 10 s).",
    );
    let tracked = crate::host::container::cgroups_tracked() as f64;
    exp.sample("coretrace_cgroups_tracked", &[("tool", tool)], tracked);
    h.metrics(&mut exp);
    h.sink().publish_metrics(exp, now)
}

/// The losses by cause so far: the BPF side's counters and, with the perf buffer, its own count
/// of samples the kernel could not write.
fn loss_counts(losses: &Losses, perf_lost: Option<u64>) -> Result<LossCounts> {
    let counts = LossCounts::read(losses)?;
    Ok(match perf_lost {
        Some(n) => counts.with_perf_buffer(n),
        None => counts,
    })
}

/// Opens the consumer's side of `events` right after load, before the programs are attached,
/// where events travel through the perf buffer: a perf event array drops the events of every
/// CPU whose perf buffer is not open yet (a ring buffer keeps them until `run` reads them).
/// `run` then takes these perf buffers over. Nothing to do with the ring buffer.
pub fn prepare<M: MapCore>(events: &M, buffer_bytes: u32) -> Result<()> {
    if events.map_type() == MapType::PerfEventArray {
        let opened = PerfBuffers::open(events, buffer_bytes)?;
        let fd = events.as_fd().as_raw_fd();
        PREPARED.with(|p| *p.borrow_mut() = Some((fd, opened)));
    }
    Ok(())
}

thread_local! {
    /// The perf buffers `prepare` opened, by the descriptor of their map, until `run`.
    static PREPARED: RefCell<Option<(i32, PerfBuffers)>> = const { RefCell::new(None) };
}

/// The transport's reader, told apart by the type user space gave the `events` map before load.
enum Reader<'cb> {
    Ring(RingBuffer<'cb>),
    Perf(PerfBuffers, &'cb dyn Fn(&[u8]) -> bool),
}

impl<'cb> Reader<'cb> {
    fn new<M: MapCore>(
        events: &M,
        buffer_bytes: u32,
        deliver: &'cb dyn Fn(&[u8]) -> bool,
    ) -> Result<Self> {
        if events.map_type() == MapType::PerfEventArray {
            let fd = events.as_fd().as_raw_fd();
            let prepared = PREPARED.with(|p| p.borrow_mut().take_if(|(f, _)| *f == fd));
            let perf = match prepared {
                Some((_, perf)) => perf,
                None => PerfBuffers::open(events, buffer_bytes)?,
            };
            return Ok(Reader::Perf(perf, deliver));
        }
        let mut builder = RingBufferBuilder::new();
        builder
            .add(
                events,
                move |data: &[u8]| if deliver(data) { 0 } else { -1 },
            )
            .context("setting up the ring buffer")?;
        let ring = builder.build().context("setting up the ring buffer")?;
        Ok(Reader::Ring(ring))
    }

    fn name(&self) -> &'static str {
        match self {
            Reader::Ring(_) => "ring buffer",
            Reader::Perf(..) => "perf buffer",
        }
    }

    /// The perf buffer's count of samples the kernel could not write; None for the ring buffer.
    fn lost_samples(&self) -> Option<u64> {
        match self {
            Reader::Ring(_) => None,
            Reader::Perf(p, _) => Some(p.lost_samples()),
        }
    }

    /// One poll round: waits up to `timeout` for a wake-up, then handles every record waiting
    /// (records that arrived without a wake-up are not signalled through epoll). Returns what
    /// the wait and the read returned: a negative errno on failure.
    fn read(&self, timeout: Duration) -> (i32, i32) {
        match self {
            Reader::Ring(r) => (r.poll_raw(timeout), r.consume_raw()),
            Reader::Perf(p, deliver) => p.read(timeout, *deliver),
        }
    }
}

/// One perf buffer per CPU, opened through libbpf's raw interface: libbpf's plain one (and
/// libbpf-rs's PerfBufferBuilder) wakes the consumer on every event, while this one wakes it
/// only once a quarter of a CPU's buffer waits, as the ring buffer does (`wakeup_bytes` in
/// common.bpf.h); the poll round reads the rest. Records of different CPUs arrive from
/// different buffers: each round is put back in time order (every event begins with its
/// kernel timestamp, see common.bpf.h) before the handler sees it, as one ring would have it.
struct PerfBuffers {
    pb: NonNull<libbpf_sys::perf_buffer>,
    /// What libbpf's callback fills (from Box::leak, freed in Drop): touched only by the
    /// callback inside perf_buffer__poll/consume, and by `read` and `lost_samples` between
    /// those calls.
    round: NonNull<Round>,
}

/// The records of one poll round, until they are handed over in time order. Reused from round
/// to round: no allocation per event (the arena grows only for a bigger round than any before).
struct Round {
    /// Samples the kernel could not write (the buffer was full), from its lost-samples records.
    lost_samples: u64,
    /// The records, each from an 8-byte boundary (a perf sample starts 4 bytes past one, too
    /// misaligned for `decode`).
    arena: Vec<u64>,
    /// (timestamp, offset in `arena` in words, length in bytes) of each record.
    records: Vec<(u64, usize, usize)>,
}

impl PerfBuffers {
    fn open<M: MapCore>(events: &M, buffer_bytes: u32) -> Result<Self> {
        // SAFETY: sysconf takes a constant and reads no memory of ours.
        let page = (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(4096) as u32;
        let pages = (buffer_bytes / page).max(1);
        // What libbpf's perf_buffer__new asks for, but woken by a byte watermark.
        // SAFETY: perf_event_attr is a plain C struct of integers, for which all zeros is valid.
        let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.size = size_of::<libbpf_sys::perf_event_attr>() as u32;
        attr.type_ = libbpf_sys::PERF_TYPE_SOFTWARE;
        attr.config = libbpf_sys::PERF_COUNT_SW_BPF_OUTPUT.into();
        attr.sample_type = libbpf_sys::PERF_SAMPLE_RAW.into();
        attr.__bindgen_anon_1.sample_period = 1;
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = pages * page / 4;
        let round = NonNull::from(Box::leak(Box::new(Round {
            lost_samples: 0,
            arena: Vec::new(),
            records: Vec::new(),
        })));
        // SAFETY: `round` outlives the perf buffer (freed after it, in Drop), and the callback
        // only runs inside poll/consume.
        let pb = unsafe {
            libbpf_sys::perf_buffer__new_raw(
                events.as_fd().as_raw_fd(),
                pages as libbpf_sys::size_t,
                &mut attr,
                Some(on_perf_record),
                round.as_ptr().cast(),
                std::ptr::null(),
            )
        };
        let Some(pb) = NonNull::new(pb) else {
            let e = std::io::Error::last_os_error();
            // SAFETY: from Box::leak above, and libbpf kept no pointer to it.
            drop(unsafe { Box::from_raw(round.as_ptr()) });
            bail!("setting up the perf buffer: {e}");
        };
        Ok(PerfBuffers { pb, round })
    }

    /// See `Reader::read`; the round's records go to `deliver` in time order.
    fn read(&self, timeout: Duration, deliver: &dyn Fn(&[u8]) -> bool) -> (i32, i32) {
        let ms = timeout.as_millis() as i32;
        // SAFETY: the perf buffer lives as long as self.
        let ret = unsafe { libbpf_sys::perf_buffer__poll(self.pb.as_ptr(), ms) };
        // SAFETY: as above: the perf buffer lives as long as self.
        let ret2 = unsafe { libbpf_sys::perf_buffer__consume(self.pb.as_ptr()) };
        // SAFETY: libbpf's callback is done (it runs only inside the two calls above).
        let round = unsafe { &mut *self.round.as_ptr() };
        // By time, then by arrival (the offset grows with it); unstable sort: no allocation.
        round
            .records
            .sort_unstable_by_key(|&(ts, off, _)| (ts, off));
        for &(_, off, len) in &round.records {
            // SAFETY: `len` bytes were copied from word `off` on; any bytes make a u64.
            let bytes = unsafe {
                std::slice::from_raw_parts(round.arena.as_ptr().add(off).cast::<u8>(), len)
            };
            if !deliver(bytes) {
                break; // the failure is kept for the loop
            }
        }
        round.records.clear();
        round.arena.clear();
        (ret, ret2)
    }

    fn lost_samples(&self) -> u64 {
        // SAFETY: as in `read`: not inside libbpf's callback.
        unsafe { self.round.as_ref() }.lost_samples
    }
}

impl Drop for PerfBuffers {
    fn drop(&mut self) {
        // SAFETY: created by perf_buffer__new_raw and Box::leak, each freed once, the perf
        // buffer first (it holds the pointer to the round).
        unsafe {
            libbpf_sys::perf_buffer__free(self.pb.as_ptr());
            drop(Box::from_raw(self.round.as_ptr()));
        }
    }
}

/// libbpf's callback for each record of a perf buffer: a sample (one of our events) is kept
/// for the end of the round; a lost-samples record adds the kernel's count of samples it could
/// not write (the buffer was full).
unsafe extern "C" fn on_perf_record(
    ctx: *mut std::ffi::c_void,
    _cpu: std::ffi::c_int,
    record: *mut libbpf_sys::perf_event_header,
) -> libbpf_sys::bpf_perf_event_ret {
    // SAFETY: `ctx` is the Round given to perf_buffer__new_raw; libbpf hands over whole
    // records (it copies one that wraps around the end of the buffer).
    let round = unsafe { &mut *ctx.cast::<Round>() };
    // SAFETY: `record` points at a whole record, as above, which starts with its header.
    let header = unsafe { &*record };
    // SAFETY: the body follows the header inside the same record.
    let body = unsafe {
        record
            .cast::<u8>()
            .add(size_of::<libbpf_sys::perf_event_header>())
    };
    match header.type_ {
        libbpf_sys::PERF_RECORD_SAMPLE => {
            // struct { u32 size; u8 data[size]; } (size rounded up to 8 with the u32)
            // SAFETY: a PERF_RECORD_SAMPLE body starts with its u32 size, inside the record libbpf handed us.
            let size = unsafe { body.cast::<u32>().read_unaligned() } as usize;
            // SAFETY: the sample's `size` bytes follow the size word, inside the same record.
            let data = unsafe { std::slice::from_raw_parts(body.add(4), size) };
            let off = round.arena.len();
            round.arena.resize(off + size.div_ceil(8), 0);
            // SAFETY: the words from `off` on hold at least `size` bytes.
            let copy = unsafe {
                std::slice::from_raw_parts_mut(round.arena.as_mut_ptr().add(off).cast::<u8>(), size)
            };
            copy.copy_from_slice(data);
            let ts = copy
                .get(..8)
                .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
            round.records.push((ts, off, size));
        }
        libbpf_sys::PERF_RECORD_LOST => {
            // struct { u64 id; u64 lost; }
            // SAFETY: a PERF_RECORD_LOST body is { u64 id; u64 lost; }, inside the record libbpf handed us.
            let lost = unsafe { body.add(8).cast::<u64>().read_unaligned() };
            round.lost_samples += lost;
        }
        _ => {}
    }
    libbpf_sys::LIBBPF_PERF_EVENT_CONT
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
    // SAFETY: a plain C struct (integers and arrays of them): every bit pattern is a value.
    unsafe impl plain::Plain for Rec {}

    #[test]
    fn decode_splits_header_and_tail() {
        let mut raw = vec![0u64; 4]; // 8-byte aligned backing store
        let bytes: &mut [u8] =
            // SAFETY: `raw` is 4 u64s: 32 initialised bytes, borrowed mutably for as long as `bytes` lives.
            unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().cast(), 32) };
        bytes[..8].copy_from_slice(&7u64.to_ne_bytes());
        bytes[16..19].copy_from_slice(b"abc");
        let (rec, rest) = decode::<Rec>(&bytes[..19]).unwrap();
        assert_eq!(rec.a, 7);
        assert_eq!(rest, b"abc");
        assert!(decode::<Rec>(&bytes[..8]).is_err());
    }
}
