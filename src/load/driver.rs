//! The one way the tools run their BPF side. Every tool opens its skeleton (against `--btf`),
//! sets up what common.bpf.h declares (the events transport and its `.rodata` flags, the cgroup
//! filters), sets its own `.rodata` and map sizes, loads, opens the consumer's side of the
//! events before attaching, attaches, prints its header and consumes events until stopped,
//! reporting what was lost. This module does the shared steps; a tool gives only what is its
//! own: its skeleton, its `.rodata`, its attach strategy and its handler.
//!
//! Every tool runs through one [`sequence`], so set-up and signal handling happen in one order.
//! A tool of the common shape (execsnoop, exitsnoop, unlinksnoop) implements [`Steps`] and calls
//! [`run`]; the others (uprobe-lat, kmemleak-lite: targets resolved before load, links held
//! outside the skeleton, a report at the end, an exit status) implement [`Sequence`].

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
    pub cgroup_name_scratch: &'a mut OpenMapMut<'static>,
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
                    cgroup_name_scratch: &mut maps.cgroup_name_scratch,
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

/// One run of a tool, as the shared steps need it: a tool's `load` opens and loads through it.
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
            // Unused: not created at all (fewer bpf() calls at start-up). libbpf turns the
            // programs' references to them into calls the verifier never reaches: the code
            // that uses them is dead, `send_cgroup_names` being a frozen constant. Their
            // loaded handles are placeholders then: nothing reads them (`Session::loaded`).
            c.cgroup_sent.set_autocreate(false)?;
            c.cgroup_names.set_autocreate(false)?;
            c.cgroup_name_scratch.set_autocreate(false)?;
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
    fn consume<S: Bpf>(
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

/// Whether the run goes on once the tool has attached.
pub enum Flow {
    Go,
    /// A stop (Ctrl-C, SIGTERM, `--timeout`) came while it attached: the run ends there, with
    /// status 0, no header and no report.
    End,
}

/// The one sequence every tool runs through ([`sequence`]), with a phase for each thing a tool
/// does its own way. Tools of the common shape give [`Steps`] instead (see [`run`]); uprobe-lat
/// and kmemleak-lite give this: targets resolved before load, links held outside the skeleton,
/// a report at the end, an exit status.
pub trait Sequence {
    type Skel: Bpf;
    /// What the run is about, found before anything loads (functions, a process, a command
    /// started and held before its exec).
    type Target;
    /// Links held outside the skeleton, until the consumer has stopped.
    type Links;
    /// The handler, which may borrow the tool, the skeleton's maps, the target and the stop.
    type Handler<'a>: Handler
    where
        Self: 'a;
    /// The tool's name, in messages, `--check` and metrics.
    const NAME: &'static str;
    /// How it loses events (its LOSS_* slots).
    const LOSSES: &'static [LossCause];

    fn common(&self) -> &CommonArgs;
    /// What it needs from the host (`load::needs::preflight`, `--check`).
    fn needs(&self) -> crate::load::needs::Needs;
    /// Before `--check`: refuses options that do not go together, or does the whole job
    /// without BPF (uprobe-lat's `-l`); `Some(status)` ends the run there.
    fn early(&self) -> Result<Option<u8>> {
        Ok(None)
    }
    /// `--check`: a real load and attach of what this command line would load.
    fn check(&self, session: &Session) -> Result<()>;
    /// The size of the events buffer: `--ringbuf-size`, unless the tool sets its own.
    fn buffer_bytes(&self) -> u32 {
        self.common().ringbuf_bytes()
    }
    /// When the run stops by itself: `--timeout`, unless the tool has its own option.
    fn timeout(&self) -> Option<std::time::Duration> {
        self.common().timeout
    }
    /// The cgroup and container filters (`-c`, `--container`); none by default.
    fn cgroup(&self) -> Result<CgroupFilter> {
        Ok(CgroupFilter::default())
    }
    /// After the host's check and the sink, before the stop handler and the load: everything
    /// that can fail about the targets is found out here.
    fn resolve(&self) -> Result<Self::Target>;
    /// Opens (through `session`), configures and loads the skeleton. A tool whose attach
    /// method is chosen by trying (`attach::select`) attaches here, and returns those links.
    fn load(
        &self,
        session: &Session,
        cgroup: &CgroupFilter,
        target: &Self::Target,
    ) -> Result<(Self::Skel, Self::Links)>;
    /// Attaches what `load` did not, adding to `links`.
    fn attach(
        &self,
        skel: &mut Self::Skel,
        target: &mut Self::Target,
        links: &mut Self::Links,
        stop: &Stop,
    ) -> Result<Flow>;
    /// The cause for the runs the kernel skipped of its programs, and those programs.
    fn skipped_runs(
        &self,
        skel: &Self::Skel,
        target: &Self::Target,
    ) -> (&'static LossCause, SkippedRuns);
    /// Says what it traces, and makes its handler, which prints the table's header.
    fn handler<'a>(
        &'a self,
        skel: &'a Self::Skel,
        target: &'a mut Self::Target,
        links: &Self::Links,
        stop: &'a Stop,
        sink: Sink,
    ) -> Result<Self::Handler<'a>>;
    /// After the consumer stopped and the links are gone: the last words, and the exit status.
    fn finish(&self, handler: Self::Handler<'_>, consumed: Result<()>) -> Result<u8> {
        drop(handler);
        consumed.map(|()| 0)
    }
}

/// Runs `tool`: `--check`, or the host's check, the sink, the targets, the stop handler, load,
/// attach, header, consume until stopped (reporting what was lost), detach, and the tool's last
/// words. Returns the exit status the tool ends with.
pub fn sequence<T: Sequence>(tool: &T) -> Result<u8> {
    let common = tool.common();
    crate::load::btf::use_btf(common.btf.as_deref())?;
    if let Some(status) = tool.early()? {
        return Ok(status);
    }
    setup::libbpf_log(common.verbose);
    let session = Session {
        buffer_bytes: tool.buffer_bytes(),
        ..Session::new(T::NAME, common, T::LOSSES)
    };
    if common.check {
        return tool.check(&session).map(|()| 0);
    }
    crate::load::needs::preflight(&tool.needs())?;
    // Before anything is started or loaded: a --metrics-listen port in use is told first.
    let sink = common.sink(T::NAME)?;
    let cgroup = tool.cgroup()?;
    let mut target = tool.resolve()?;
    // Ctrl-C and SIGTERM from here on; the run's own length from when it traces.
    let stop = Stop::install(None)?;
    let (mut skel, mut links) = tool.load(&session, &cgroup, &target)?;
    if let Flow::End = tool.attach(&mut skel, &mut target, &mut links, &stop)? {
        return Ok(0);
    }
    let stop = stop.timed(tool.timeout());
    let skipped = tool.skipped_runs(&skel, &target);
    let mut handler = tool.handler(&skel, &mut target, &links, &stop, sink)?;
    let consumed = session.consume(&skel, skipped, &stop, &mut handler);
    drop(links);
    tool.finish(handler, consumed)
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
/// `--timeout` ...; `-c`, `--container`): `--check`, or load, attach and consume until stopped,
/// through the one [`sequence`].
pub fn run<T: Steps>(tool: &T, common: &CommonArgs, cgroup_arg: &CgroupArg) -> Result<()> {
    let shaped = Shaped {
        tool,
        common,
        cgroup_arg,
    };
    sequence(&shaped).map(drop)
}

/// A tool of the common shape, seen as a [`Sequence`]: nothing to resolve, and its attach
/// method chosen by trying (so it attaches while it loads, and holds no links of its own).
struct Shaped<'a, T> {
    tool: &'a T,
    common: &'a CommonArgs,
    cgroup_arg: &'a CgroupArg,
}

impl<T: Steps> Sequence for Shaped<'_, T> {
    type Skel = T::Skel;
    type Target = ();
    type Links = ();
    type Handler<'a>
        = T::Handler
    where
        Self: 'a;
    const NAME: &'static str = T::NAME;
    const LOSSES: &'static [LossCause] = T::LOSSES;

    fn common(&self) -> &CommonArgs {
        self.common
    }

    fn needs(&self) -> crate::load::needs::Needs {
        T::NEEDS
    }

    fn check(&self, session: &Session) -> Result<()> {
        // A real load and attach (then detach) of what this command line would load, so the
        // answer is the kernel's.
        let choice = match self.tool.attach_with() {
            Attach::Fixed(_) => Choice::Auto,
            Attach::Select(choice) => choice,
        };
        let mut attempt = |m| load(self.tool, session, &CgroupFilter::default(), m).map(drop);
        let json = self.common.json;
        crate::load::check::check(T::NAME, T::HOOK, choice, json, &T::NEEDS, &mut attempt)
    }

    fn cgroup(&self) -> Result<CgroupFilter> {
        let mut cgroup = self.cgroup_arg.open()?;
        cgroup.names = self.common.json || self.cgroup_arg.print_container;
        Ok(cgroup)
    }

    fn resolve(&self) -> Result<()> {
        Ok(())
    }

    fn load(&self, session: &Session, cgroup: &CgroupFilter, _: &()) -> Result<(T::Skel, ())> {
        let skel = match self.tool.attach_with() {
            Attach::Fixed(what) => {
                let skel = load(self.tool, session, cgroup, T::HOOK.methods[0])?;
                if self.common.verbose {
                    eprintln!("{}: attached to {what}", T::NAME);
                }
                skel
            }
            Attach::Select(choice) => {
                let mut attempt = |m| load(self.tool, session, cgroup, m);
                let verbose = self.common.verbose;
                attach::select(T::NAME, T::HOOK, choice, verbose, &mut attempt)?.0
            }
        };
        Ok((skel, ()))
    }

    fn attach(&self, _: &mut T::Skel, _: &mut (), _: &mut (), _: &Stop) -> Result<Flow> {
        Ok(Flow::Go) // attached while loading
    }

    fn skipped_runs(&self, skel: &T::Skel, _: &()) -> (&'static LossCause, SkippedRuns) {
        (&consumer::PROBE_SKIPPED, self.tool.skipped_runs(skel))
    }

    fn handler<'a>(
        &'a self,
        _: &'a T::Skel,
        _: &'a mut (),
        _: &(),
        _: &'a Stop,
        sink: Sink,
    ) -> Result<T::Handler> {
        self.tool.handler(sink)
    }
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
