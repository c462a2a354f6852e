//! The one way the tools run their BPF side. Every tool opens its skeleton (against `--btf`),
//! sets up what common.bpf.h declares (the events transport and its `.rodata` flags, the cgroup
//! filters), sets its own `.rodata` and map sizes, loads, opens the consumer's side of the
//! events before attaching, attaches, prints its header and consumes events until stopped,
//! reporting what was lost. This module does the shared steps; a tool gives only what is its
//! own: its skeleton, its `.rodata`, its attach strategy and its handler.
//!
//! A tool of the common shape (execsnoop, exitsnoop, unlinksnoop) implements [`Steps`] and calls
//! [`run`]. The others (uprobe-lat, kmemleak-lite: targets resolved before load, links held
//! outside the skeleton, a report at the end) take the steps one by one through a [`Session`].

use anyhow::Result;
use libbpf_rs::skel::{OpenSkel, Skel};
use libbpf_rs::{MapMut, OpenMapMut};

use crate::cli::{CgroupArg, CommonArgs};
use crate::consumer::{self, Handler, LossCause, SkippedRuns, Stop};
use crate::host::container::CgroupFilter;
use crate::load::attach::{self, Choice, Hook, Method};
use crate::load::setup;
use crate::output::Sink;

/// A generated skeleton, seen through what common.bpf.h gives every one of them (the fields
/// have the same names in each; the `bpf!` macro below reaches them).
pub trait Bpf: Skel<'static> + Sized {
    type Open: OpenSkel<'static, Output = Self>;
    /// Opens the skeleton, relocating against the `--btf` file if one was given.
    fn open() -> Result<Self::Open>;
    /// Before load: the maps and `.rodata` of common.bpf.h.
    fn open_common(open: &mut Self::Open) -> Result<OpenCommon<'_>>;
    /// After load: the maps of common.bpf.h.
    fn common(&self) -> Common<'_>;
}

/// What common.bpf.h declares, in an open skeleton.
pub struct OpenCommon<'a> {
    pub events: &'a mut OpenMapMut<'static>,
    pub scratch: &'a mut OpenMapMut<'static>,
    pub wakeup_bytes: &'a mut u64,
    pub perf_buffer: &'a mut bool,
    pub filter_cgroup: &'a mut bool,
    pub filter_container: &'a mut bool,
    pub send_cgroup_names: &'a mut bool,
    pub cgroup_sent: &'a mut OpenMapMut<'static>,
    pub cgroup_names: &'a mut OpenMapMut<'static>,
}

/// What common.bpf.h declares, in a loaded skeleton.
pub struct Common<'a> {
    pub events: &'a MapMut<'static>,
    pub losses: &'a MapMut<'static>,
    pub cgroup_filter: &'a MapMut<'static>,
    pub container_filter: &'a MapMut<'static>,
    pub cgroup_names: &'a MapMut<'static>,
}

/// Implements [`Bpf`] for the skeleton of `src/bpf/<$module>.bpf.c`.
macro_rules! bpf {
    ($module:ident: $skel:ident, $open:ident, $builder:ident) => {
        impl Bpf for crate::skel::$module::$skel<'static> {
            type Open = crate::skel::$module::$open<'static>;

            fn open() -> Result<Self::Open> {
                let builder = crate::skel::$module::$builder::default();
                crate::load::btf::open_skel(builder, attach::object_storage())
            }

            fn open_common(open: &mut Self::Open) -> Result<OpenCommon<'_>> {
                let maps = &mut open.maps;
                let rodata = setup::rodata(maps.rodata_data.as_deref_mut())?;
                Ok(OpenCommon {
                    events: &mut maps.events,
                    scratch: &mut maps.scratch,
                    wakeup_bytes: &mut rodata.wakeup_bytes,
                    perf_buffer: &mut rodata.perf_buffer,
                    filter_cgroup: &mut rodata.filter_cgroup,
                    filter_container: &mut rodata.filter_container,
                    send_cgroup_names: &mut rodata.send_cgroup_names,
                    cgroup_sent: &mut maps.cgroup_sent,
                    cgroup_names: &mut maps.cgroup_names,
                })
            }

            fn common(&self) -> Common<'_> {
                Common {
                    events: &self.maps.events,
                    losses: &self.maps.losses,
                    cgroup_filter: &self.maps.cgroup_filter,
                    container_filter: &self.maps.container_filter,
                    cgroup_names: &self.maps.cgroup_names,
                }
            }
        }
    };
}

// One `bpf!` line for each src/bpf/<tool>.bpf.c (build.rs, `skeleton_lines`).
include!(concat!(env!("OUT_DIR"), "/bpf_impls.rs"));

/// One run of a tool, as the shared steps need it.
pub struct Session<'a> {
    pub tool: &'static str,
    pub common: &'a CommonArgs,
    /// How the tool loses events (its LOSS_* slots), for the report at the end.
    pub causes: &'static [LossCause],
    /// The size of the events buffer: `--ringbuf-size`, unless the tool sets its own.
    pub buffer_bytes: u32,
}

impl<'a> Session<'a> {
    pub fn new(tool: &'static str, common: &'a CommonArgs, causes: &'static [LossCause]) -> Self {
        Session {
            tool,
            common,
            causes,
            buffer_bytes: common.ringbuf_bytes(),
        }
    }

    /// Opens `S` and sets up what common.bpf.h declares: the events transport (see
    /// `consumer::transport::size_ringbuf`) and the `.rodata` flags of the transport and of `cgroup`'s
    /// filters. The tool sets its own `.rodata` and map sizes next.
    pub fn open<S: Bpf>(&self, cgroup: &CgroupFilter) -> Result<S::Open> {
        let mut open = S::open()?;
        let c = S::open_common(&mut open)?;
        let events =
            crate::consumer::transport::size_ringbuf(c.events, c.scratch, self.buffer_bytes)?;
        *c.wakeup_bytes = events.wakeup_bytes;
        *c.perf_buffer = events.perf_buffer;
        *c.filter_cgroup = cgroup.by_cgroup();
        *c.filter_container = cgroup.by_container();
        *c.send_cgroup_names = cgroup.names;
        if !cgroup.names {
            // Unused: no kernel memory for them.
            c.cgroup_sent.set_max_entries(1)?;
            c.cgroup_names.set_max_entries(1)?;
        }
        Ok(open)
    }

    /// Loads `open` (a refusal explained by `setup::load_error`), then [`Session::loaded`].
    pub fn load<S: Bpf>(&self, open: S::Open, cgroup: &CgroupFilter) -> Result<S> {
        let skel = open.load().map_err(setup::load_error)?;
        self.loaded(&skel, cgroup)?;
        Ok(skel)
    }

    /// Right after load, before the tool attaches: opens the consumer's side of the events
    /// (see `consumer::prepare`) and fills the cgroup filter maps.
    pub fn loaded<S: Bpf>(&self, skel: &S, cgroup: &CgroupFilter) -> Result<()> {
        let c = skel.common();
        consumer::prepare(c.events, self.buffer_bytes)?;
        if cgroup.names {
            crate::host::container::use_names_map(c.cgroup_names)?;
        }
        cgroup.fill(c.cgroup_filter, c.container_filter)
    }

    /// Hands every event to `handler` until `stop`, then reports the losses: the tool's
    /// causes, and `skipped`'s cause for the runs the kernel skipped of its programs.
    pub fn consume<S: Bpf>(
        &self,
        skel: &S,
        skipped: (&'static LossCause, SkippedRuns),
        stop: &Stop,
        handler: &mut dyn Handler,
    ) -> Result<()> {
        let c = skel.common();
        let losses = self
            .common
            .losses(self.tool, c.losses, self.causes)
            .with_skipped_runs(skipped.0, skipped.1);
        consumer::run(c.events, self.buffer_bytes, &losses, stop, handler)
    }
}

/// What a tool that hooks only the kernel needs from the host beyond loading BPF: tracefs
/// (to attach tracepoints from the start) or not.
pub const fn kernel_only(tracefs: bool) -> crate::load::needs::Needs {
    crate::load::needs::Needs {
        tracefs,
        uprobes: false,
        kernel_symbols: false,
        process: None,
    }
}

/// How a tool attaches.
pub enum Attach {
    /// One way, always (its hook's only method); with `-v` it says "attached to" this.
    Fixed(&'static str),
    /// The best of its hook's methods that works here, or the one forced with `--attach`:
    /// `attach::select` tries them in order and, with `-v`, says which it took and why.
    Select(Choice),
}

/// What a tool of the common shape gives [`run`]: all that is its own.
pub trait Steps {
    type Skel: Bpf;
    type Handler: Handler;
    /// The tool's name, in messages, `--check` and metrics.
    const NAME: &'static str;
    const HOOK: &'static Hook;
    /// What it needs from the host (`load::needs::preflight`, `--check`).
    const NEEDS: crate::load::needs::Needs;
    /// How it loses events (its LOSS_* slots).
    const LOSSES: &'static [LossCause];

    /// One fixed way (the hook's only method), or the best of several (`--attach`).
    fn attach_with(&self) -> Attach;
    /// Before load, after the common set-up: its own `.rodata`, map sizes, and which programs
    /// load for `method`.
    fn configure(&self, open: &mut <Self::Skel as Bpf>::Open, method: Method) -> Result<()>;
    /// A refused load, explained.
    fn load_error(&self, e: libbpf_rs::Error) -> anyhow::Error {
        setup::load_error(e)
    }
    /// After load: attaches its programs.
    fn attach(&self, skel: &mut Self::Skel) -> Result<()>;
    /// The programs whose run, when the kernel skips it, loses an event.
    fn skipped_runs(&self, skel: &Self::Skel) -> SkippedRuns;
    /// Its handler, which prints the table's header into `sink`.
    fn handler(&self, sink: Sink) -> Result<Self::Handler>;
}

/// Runs a tool of the common shape with its options every tool shares (`--json`, `-v`,
/// `--timeout` ...; `-c`, `--container`): `--check`, or load, attach and consume until stopped.
pub fn run<T: Steps>(tool: &T, common: &CommonArgs, cgroup_arg: &CgroupArg) -> Result<()> {
    crate::load::btf::use_btf(common.btf.as_deref())?;
    setup::libbpf_log(common.verbose);
    let session = Session::new(T::NAME, common, T::LOSSES);
    let attach_with = tool.attach_with();
    if common.check {
        // A real load and attach (then detach) of what this command line would load, so the
        // answer is the kernel's.
        let choice = match attach_with {
            Attach::Fixed(_) => Choice::Auto,
            Attach::Select(choice) => choice,
        };
        let mut attempt = |m| load(tool, &session, &CgroupFilter::default(), m).map(drop);
        return crate::load::check::check(
            T::NAME,
            T::HOOK,
            choice,
            common.json,
            &T::NEEDS,
            &mut attempt,
        );
    }
    crate::load::needs::preflight(&T::NEEDS)?;
    // Before loading: a --metrics-listen port in use is told before anything is attached.
    let sink = common.sink(T::NAME)?;
    let mut cgroup = cgroup_arg.open()?;
    cgroup.names = common.json || cgroup_arg.print_container;
    let stop = Stop::install(common.timeout)?;
    let skel = match attach_with {
        Attach::Fixed(what) => {
            let skel = load(tool, &session, &cgroup, T::HOOK.methods[0])?;
            if common.verbose {
                eprintln!("{}: attached to {what}", T::NAME);
            }
            skel
        }
        Attach::Select(choice) => {
            let mut attempt = |m| load(tool, &session, &cgroup, m);
            attach::select(T::NAME, T::HOOK, choice, common.verbose, &mut attempt)?.0
        }
    };
    let mut handler = tool.handler(sink)?;
    let skipped = (&consumer::PROBE_SKIPPED, tool.skipped_runs(&skel));
    session.consume(&skel, skipped, &stop, &mut handler)
}

/// Opens, configures, loads and attaches `tool`'s programs for `method`.
fn load<T: Steps>(
    tool: &T,
    session: &Session,
    cgroup: &CgroupFilter,
    method: Method,
) -> Result<T::Skel> {
    let mut open = session.open::<T::Skel>(cgroup)?;
    tool.configure(&mut open, method)?;
    let mut skel = open.load().map_err(|e| tool.load_error(e))?;
    session.loaded(&skel, cgroup)?;
    tool.attach(&mut skel)?;
    Ok(skel)
}
