//! What a probe costs. A uprobe traps into the kernel at entry and again at return; on some
//! machines that is microseconds, as much as the function being timed. Before tracing, we
//! probe a function of our own that does nothing, call it from a loop, and measure both what
//! the probes cost the caller and how much of that shows up inside a measured latency, so a
//! user can tell a 20 µs function from 13 µs of probe.

use std::mem::MaybeUninit;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel};
use libbpf_rs::UprobeOpts;

use super::links::Kind;
use crate::consumer::{self, decode, Handler, Stop};
use crate::host::proc_maps::{self, Mapping};
use crate::load::setup;
use crate::output::histogram::Latencies;
use crate::output::{Format, Sink};
use crate::skel::uprobe_lat::{types::call_event, UprobeLatSkelBuilder};

/// The function the probes are measured on. Found by its own address (see [`target_offset`]),
/// so it works in a stripped release build; the name shows in `-v` and --check.
#[no_mangle]
#[inline(never)]
pub extern "C" fn coretrace_uprobe_lat_calibration_target() {}

pub const SYMBOL: &str = "coretrace_uprobe_lat_calibration_target";
const CALLS: u32 = 1000;
const ROUNDS: usize = 5;
/// Room for every calibration call's record (56 bytes each with its header).
const RING_BYTES: u32 = 1 << 20;

/// What one probed call costs, in ns.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Overhead {
    /// Extra time the traced program spends per call (entry and return probe).
    pub per_call_ns: f64,
    /// The median latency measured for a function that does nothing: the part of the cost
    /// inside a measured latency when the first instruction is single-stepped (an upper
    /// bound: where the kernel emulates it, as for nop or push, less lands inside).
    pub in_latency_ns: f64,
}

/// Probes our own empty function and times calls to it, with the programs `kind` uses (one
/// per-probe link each, as the cost of a multi-uprobe link's probe is the same).
pub fn measure(kind: Kind) -> Result<Overhead> {
    let kind = match kind {
        Kind::Multi => Kind::PerProbe,
        k => k,
    };
    let exe = Path::new("/proc/self/exe");
    let offset = target_offset()?;

    // Not driver::Session: a measurement, not a run (it wakes on every record, reports no losses).
    let mut storage = MaybeUninit::uninit();
    let mut open = crate::load::btf::open_skel(UprobeLatSkelBuilder::default(), &mut storage)?;
    let events = crate::consumer::transport::size_ringbuf(
        &mut open.maps.events,
        &mut open.maps.scratch,
        RING_BYTES,
    )?;
    kind.set_autoload(open.open_object_mut(), 1);
    let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
    let pid = std::process::id();
    rodata.targ_tgid = pid;
    rodata.perf_buffer = events.perf_buffer; // wakeup_bytes stays 0: wake on every record
    rodata.unit_div = 1;
    let skel = open.load().map_err(setup::load_error)?;
    consumer::prepare(&skel.maps.events, RING_BYTES)?; // before attaching: see its doc

    let unprobed = per_call_ns(CALLS * 10);
    let (entries, exits) = kind.programs(skel.object(), 1)?;
    let mut links = Vec::new();
    for (prog, retprobe) in [(&exits[0], true), (&entries[0], false)] {
        let opts = UprobeOpts {
            retprobe,
            ..Default::default()
        };
        links.push(
            prog.attach_uprobe_with_opts(pid as i32, exe, offset as usize, opts)
                .context("attaching to our own calibration function")?,
        );
    }
    let mut rounds: Vec<f64> = (0..ROUNDS).map(|_| per_call_ns(CALLS)).collect();
    drop(links);
    rounds.sort_by(f64::total_cmp);
    let probed = rounds[ROUNDS / 2];

    // Every call's latency, exactly, through the same consumer the tool uses.
    let mut recorder = Recorder {
        lat: Latencies::new(),
        sink: Sink::new(Box::new(std::io::sink()), Format::Table),
    };
    let drain = Stop::install(Some(Duration::from_nanos(1)))?;
    let losses = consumer::Losses {
        tool: "uprobe-lat",
        map: &skel.maps.losses,
        causes: &[],
        skipped: None,
        fail_on_loss: false,
    };
    consumer::run(
        &skel.maps.events,
        RING_BYTES,
        &losses,
        &drain,
        &mut recorder,
    )?;
    if recorder.lat.count() == 0 {
        bail!("the probes on our own calibration function did not fire");
    }
    Ok(Overhead {
        per_call_ns: (probed - unprobed).max(0.0),
        in_latency_ns: recorder.lat.summary().p50_ns as f64,
    })
}

/// Where the calibration target's first instruction is in our own file (what a uprobe is
/// attached at): its address, in the mapping of /proc/self/maps that holds it, turned into a
/// file offset. Needs no symbol table, so a stripped binary calibrates too.
pub fn target_offset() -> Result<u64> {
    let addr = coretrace_uprobe_lat_calibration_target as *const () as usize as u64;
    let maps = proc_maps::read(std::process::id()).context("reading /proc/self/maps")?;
    offset_in_maps(&maps, addr).with_context(|| {
        format!("no mapping of our own executable holds {SYMBOL} at {addr:#x}: use --no-calibrate")
    })
}

/// The file offset of `addr` by the executable mapping of `maps` that holds it.
fn offset_in_maps(maps: &[Mapping], addr: u64) -> Option<u64> {
    maps.iter()
        .find(|m| m.executable() && m.contains(addr))
        .map(|m| addr - m.start + m.offset)
}

struct Recorder {
    lat: Latencies,
    sink: Sink,
}

impl Handler for Recorder {
    fn event(&mut self, data: &[u8]) -> Result<()> {
        let (e, _) = decode::<call_event>(data)?;
        self.lat.record(e.lat_ns);
        Ok(())
    }
    fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }
}

/// Mean wall time of one call to the calibration target.
fn per_call_ns(calls: u32) -> f64 {
    // Through a pointer the optimiser cannot see, so the calls are not removed.
    let f: extern "C" fn() = std::hint::black_box(coretrace_uprobe_lat_calibration_target);
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_from_the_executable_mapping_that_holds_the_address() {
        let maps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fd:01 42 /usr/sbin/coretrace
55d0a0100000-55d0a0300000 r-xp 00100000 fd:01 42 /usr/sbin/coretrace
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
";
        let maps = proc_maps::parse(maps);
        assert_eq!(offset_in_maps(&maps, 0x55d0a0101234), Some(0x101234));
        assert_eq!(
            offset_in_maps(&maps, 0x55d0a0000010),
            None,
            "not executable"
        );
        assert_eq!(offset_in_maps(&maps, 0x1000), None);
    }

    #[test]
    fn our_own_offset_matches_the_symbol_table() {
        // Test builds keep their symbol table: the two ways must agree.
        let funcs = crate::host::elf_symbols::read(Path::new("/proc/self/exe")).unwrap();
        assert_eq!(target_offset().unwrap(), funcs.get(SYMBOL).unwrap().offset);
    }
}
