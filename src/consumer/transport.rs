//! Which buffer events travel in from the kernel: a BPF ring buffer (Linux 5.8+), or, where the
//! kernel has none, a perf event array (one perf buffer per CPU). Chosen once per process: by
//! the environment variable `CORETRACE_TRANSPORT` (`perf`, `ringbuf` or `auto`) or the hidden
//! `--transport` flag (read by `cli::parse`), else by probing the kernel. The BPF side learns it
//! from the `perf_buffer` constant in common.bpf.h (see [`size_ringbuf`]), the consumer
//! from the map's type, so no tool needs to know which one it got.

use std::sync::OnceLock;

use clap::ValueEnum;

use anyhow::Context;
use libbpf_rs::{libbpf_sys, OpenMapMut};

/// The environment variable that forces a transport (as `--transport` does).
pub const ENV: &str = "CORETRACE_TRANSPORT";

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preference {
    /// The ring buffer where the kernel has it, else the perf buffer.
    Auto,
    /// The perf buffer, even where the kernel has a ring buffer.
    Perf,
    /// The ring buffer; an error where the kernel has none.
    Ringbuf,
}

/// What events travel in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    RingBuffer,
    PerfBuffer,
}

impl Transport {
    /// As `--check` prints it ("transport: ring buffer"); the kernel matrix reads that prefix.
    pub fn name(self) -> &'static str {
        match self {
            Transport::RingBuffer => "ring buffer",
            Transport::PerfBuffer => "perf buffer",
        }
    }
}

/// The transport and why it was chosen ("forced by CORETRACE_TRANSPORT=perf").
#[derive(Clone, Debug)]
pub struct Chosen {
    pub transport: Transport,
    pub why: String,
}

/// Who asked, as set by [`init`]: the tool's name, the `--transport` flag, `-v`.
struct Request {
    tool: String,
    flag: Option<Preference>,
    verbose: bool,
}

static REQUEST: OnceLock<Request> = OnceLock::new();
static CHOSEN: OnceLock<Result<Chosen, String>> = OnceLock::new();

/// Records the command line's part in the choice (called once, by `cli::parse`). Without it
/// (a library user, a test), only the environment and the kernel decide.
pub fn init(tool: &str, flag: Option<Preference>, verbose: bool) {
    let _ = REQUEST.set(Request {
        tool: tool.to_string(),
        flag,
        verbose,
    });
}

/// The transport of this process, chosen at the first call (which probes the kernel, so call
/// it after the privilege check) and the same ever after; `-v` says which and why. An error is
/// one line naming the problem and the fix.
pub fn current() -> Result<Chosen, String> {
    CHOSEN
        .get_or_init(|| {
            let req = REQUEST.get();
            let chosen = choose(
                req.and_then(|r| r.flag),
                std::env::var_os(ENV).as_deref(),
                ringbuf_probe,
            );
            if let (Some(r), Ok(c)) = (req, &chosen) {
                if r.verbose {
                    eprintln!("{}: transport: {} ({})", r.tool, c.transport.name(), c.why);
                }
            }
            chosen
        })
        .clone()
}

/// The choice from the flag (first), the environment variable, and `probe` (can this kernel
/// create a ring buffer?).
fn choose(
    flag: Option<Preference>,
    env: Option<&std::ffi::OsStr>,
    probe: fn() -> Result<String, String>,
) -> Result<Chosen, String> {
    let (choice, by) = match (flag, env) {
        (Some(c), _) => (c, "--transport".to_string()),
        (None, Some(v)) => {
            let text = v.to_string_lossy();
            let c = Preference::from_str(text.trim(), true).map_err(|_| {
                format!(
                    "{ENV}='{}' is not a transport: set it to perf, ringbuf or auto (or unset it)",
                    crate::render::escape::escaped(text.as_bytes())
                )
            })?;
            (c, format!("{ENV}={}", text.trim()))
        }
        (None, None) => (Preference::Auto, String::new()),
    };
    let chosen = |transport, why: String| Ok(Chosen { transport, why });
    match choice {
        Preference::Perf => chosen(Transport::PerfBuffer, format!("forced by {by}")),
        Preference::Ringbuf => match probe() {
            Ok(_) => chosen(Transport::RingBuffer, format!("forced by {by}")),
            Err(e) => Err(format!(
                "{e}, and {by} asks for it: use the perf buffer (set {ENV}=perf or auto)"
            )),
        },
        Preference::Auto => match probe() {
            Ok(what) => chosen(Transport::RingBuffer, format!("this kernel has {what}")),
            Err(e) => chosen(Transport::PerfBuffer, e),
        },
    }
}

/// Can this kernel create a BPF ring buffer (5.8)? `Ok` names it.
pub fn ringbuf_probe() -> Result<String, String> {
    // SAFETY: libbpf's probe takes a map type and a null (reserved) options pointer.
    let r = unsafe {
        libbpf_sys::libbpf_probe_bpf_map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null())
    };
    match r {
        1 => Ok("BPF_MAP_TYPE_RINGBUF".into()),
        0 => Err("this kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8)".into()),
        e => Err(format!(
            "probing for the BPF ring buffer failed: {}",
            std::io::Error::from_raw_os_error(-e)
        )),
    }
}

/// What the BPF side must be told of the transport, in its `.rodata` (common.bpf.h).
#[derive(Clone, Copy, Debug)]
pub struct EventsSetup {
    /// `wakeup_bytes`: the backlog, in bytes, past which the BPF side wakes the consumer.
    pub wakeup_bytes: u64,
    /// `perf_buffer`: events go to the perf buffer, not the ring buffer.
    pub perf_buffer: bool,
}

/// Sets up, before load, the `events` map and the `scratch` buffer of common.bpf.h for this
/// process's transport (see `consumer::transport`): a ring buffer of `bytes`, or a perf event
/// array (one slot per CPU, each CPU's buffer `bytes`, sized by the consumer) with no ring
/// buffer created. The tool copies what this returns into its `.rodata`.
pub fn size_ringbuf(
    events: &mut OpenMapMut,
    scratch: &mut OpenMapMut,
    bytes: u32,
) -> anyhow::Result<EventsSetup> {
    let chosen = current().map_err(anyhow::Error::msg)?;
    match chosen.transport {
        Transport::RingBuffer => {
            events
                .set_max_entries(bytes)
                .context("sizing the ring buffer")?;
            // Only the perf buffer's branch, which the verifier skips, refers to it.
            scratch.set_autocreate(false)?;
            Ok(EventsSetup {
                wakeup_bytes: u64::from(bytes / 4),
                perf_buffer: false,
            })
        }
        Transport::PerfBuffer => {
            events.set_type(libbpf_rs::MapType::PerfEventArray)?;
            events.set_key_size(4)?;
            events.set_value_size(4)?;
            // 0: libbpf makes it one slot per possible CPU.
            events.set_max_entries(0)?;
            Ok(EventsSetup {
                wakeup_bytes: 0,
                perf_buffer: true,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn has() -> Result<String, String> {
        Ok("BPF_MAP_TYPE_RINGBUF".into())
    }
    fn lacks() -> Result<String, String> {
        Err("this kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8)".into())
    }

    #[test]
    fn auto_takes_the_ring_buffer_where_the_kernel_has_one() {
        assert_eq!(
            choose(None, None, has).unwrap().transport,
            Transport::RingBuffer
        );
        let c = choose(None, Some(OsStr::new("auto")), lacks).unwrap();
        assert_eq!(c.transport, Transport::PerfBuffer);
        assert!(c.why.contains("no BPF ring buffer"), "{}", c.why);
    }

    #[test]
    fn forcing_wins_and_the_flag_before_the_environment() {
        let c = choose(None, Some(OsStr::new("perf")), has).unwrap();
        assert_eq!(c.transport, Transport::PerfBuffer);
        assert_eq!(c.why, "forced by CORETRACE_TRANSPORT=perf");
        let c = choose(Some(Preference::Ringbuf), Some(OsStr::new("perf")), has).unwrap();
        assert_eq!(c.transport, Transport::RingBuffer);
        assert_eq!(c.why, "forced by --transport");
    }

    #[test]
    fn a_forced_ring_buffer_without_one_and_a_bad_value_are_errors() {
        let e = choose(None, Some(OsStr::new("ringbuf")), lacks).unwrap_err();
        assert!(e.contains("CORETRACE_TRANSPORT=perf"), "{e}");
        let e = choose(None, Some(OsStr::new("shm")), has).unwrap_err();
        assert!(e.contains("'shm' is not a transport"), "{e}");
    }
}
