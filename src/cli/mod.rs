//! The command line. What every tool's command line shares (`--json`, `-v`, `--timeout`,
//! `--ringbuf-size`, `--btf`, `--metrics-*`), the parsers for values users type, and the `main`
//! wrapper that turns any error into one line on stderr and a non-zero exit.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::output::Format;

/// Options every tool takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Print one JSON object per line instead of a table
    #[arg(long)]
    pub json: bool,

    /// Verbose: show libbpf's own log and how the tool attached
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Stop after SECS seconds (decimals allowed) and print what was gathered
    #[arg(long, value_name = "SECS", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub timeout: Option<Duration>,

    /// Ring buffer size in KiB (a power of two, 4 to 1048576); on kernels without a BPF ring
    /// buffer (before 5.8), the size of each CPU's perf buffer
    #[arg(long, value_name = "KIB", default_value_t = 256, value_parser = parse_ringbuf_kib,
          allow_negative_numbers = true)]
    pub ringbuf_size: u32,

    /// Exit with status 3 if any event was lost (the causes are printed at exit either way)
    #[arg(long)]
    pub fail_on_loss: bool,

    /// Print what this kernel offers, the privileges and kernel this tool needs, and how it
    /// would attach (really loading and attaching it), then exit: 1 if it cannot run here
    #[arg(long)]
    pub check: bool,

    /// Write Prometheus metrics (text format) to PATH, replaced atomically every
    /// --metrics-interval and at exit (for node_exporter's textfile collector: name it *.prom)
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Serve Prometheus metrics on http://ADDR/metrics: PORT listens on 127.0.0.1 only;
    /// HOST:PORT listens there (0.0.0.0:PORT for every interface)
    #[arg(long, value_name = "ADDR", value_parser = crate::output::metrics::parse_listen)]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Export over OTLP/HTTP (protobuf) to an OpenTelemetry Collector at URL (http:// only;
    /// e.g. http://127.0.0.1:4318): the metrics every --metrics-interval and, with --json, every
    /// record as a log record; env OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables,
    /// see the README)
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// How often the metrics are updated, in seconds
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub metrics_interval: Duration,

    /// Force the transport, as CORETRACE_TRANSPORT does (hidden: for tests)
    #[arg(long, value_enum, value_name = "auto|perf|ringbuf", hide = true)]
    pub transport: Option<crate::consumer::transport::Preference>,

    /// Relocate against this BTF file instead of the kernel's own, for kernels without
    /// /sys/kernel/btf/vmlinux (a file made with pahole, or from BTFHub); env CORETRACE_BTF
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
}

impl CommonArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            Format::Table
        }
    }

    /// Standard output in the chosen format, with the Prometheus exporter when
    /// --metrics-file or --metrics-listen asks for it (the port is bound here), and OTLP
    /// export when --otlp-endpoint or the environment asks for it.
    pub fn sink(&self, tool: &str) -> anyhow::Result<crate::output::Sink> {
        use crate::output::otlp;
        let otlp = match otlp::Config::from_env(self.otlp_endpoint.as_deref(), tool)? {
            Some(config) => Some(otlp::Client::start(config, tool)?),
            None => None,
        };
        let exporter = crate::output::metrics::Exporter::new(
            tool,
            self.metrics_file.as_deref(),
            self.metrics_listen,
            otlp.clone(),
            self.metrics_interval,
            self.verbose,
        )?;
        Ok(crate::output::Sink::stdout(self.format())
            .with_metrics(exporter)
            .with_otlp(otlp))
    }

    pub fn ringbuf_bytes(&self) -> u32 {
        self.ringbuf_size * 1024
    }

    /// What the consumer needs to report this tool's losses (and fail on them if asked).
    pub fn losses<'a>(
        &self,
        tool: &'static str,
        map: &'a dyn libbpf_rs::MapCore,
        causes: &'static [crate::consumer::LossCause],
    ) -> crate::consumer::Losses<'a> {
        crate::consumer::Losses {
            tool,
            map,
            causes,
            skipped: None,
            fail_on_loss: self.fail_on_loss,
        }
    }
}

/// `-c CGROUP-PATH` and `--container ID-PREFIX`: trace only tasks in this cgroup (v2) or
/// container; `--print-container`: say which container each event came from.
#[derive(Args, Debug, Clone)]
pub struct CgroupArg {
    /// Trace only processes in this cgroup v2 directory (e.g. /sys/fs/cgroup/system.slice;
    /// find where cgroup2 is mounted with `grep cgroup2 /proc/mounts`)
    #[arg(short = 'c', long = "cgroup", value_name = "CGROUP-PATH")]
    pub cgroup: Option<PathBuf>,

    /// Trace only processes in this container (Docker, containerd, CRI-O, Podman; its
    /// sub-cgroups included): the first hex digits of its id, as `docker ps` shows it. The
    /// container's cgroups are found at start: once it is removed (a restart makes a new
    /// container with a new id), nothing more is traced; to follow a pod's containers across
    /// restarts, use --pod
    #[arg(long = "container", value_name = "ID-PREFIX",
          value_parser = crate::host::container::parse_prefix)]
    pub container: Option<String>,

    /// Trace only processes in this Kubernetes pod: every container of it, including those
    /// started or restarted after the tool (the pod's cgroup is their ancestor), filtered in
    /// the kernel: the first characters of the pod's uid
    #[arg(long = "pod", value_name = "UID-PREFIX", conflicts_with = "container",
          value_parser = crate::host::container::parse_pod_prefix)]
    pub pod: Option<String>,

    /// Add a CONTAINER column: the container's short id (12 hex digits), or the cgroup path
    /// when no runtime's naming matches (JSON lines always carry the full fields)
    #[arg(long = "print-container")]
    pub print_container: bool,
}

impl CgroupArg {
    /// The kernel-side filters asked for: the open cgroup directory with `-c` (see
    /// `host::cgroupfs::open_cgroup`), the container's cgroups with `--container`.
    pub fn open(&self) -> anyhow::Result<crate::host::container::CgroupFilter> {
        let dir = self
            .cgroup
            .as_deref()
            .map(crate::host::cgroupfs::open_cgroup)
            .transpose()?;
        let container = match &self.container {
            Some(prefix) => crate::host::container::filter_ids(
                &crate::host::container::Hierarchies::find(),
                prefix,
            )?,
            None => match &self.pod {
                Some(prefix) => crate::host::container::pod_filter_ids(
                    &crate::host::container::Hierarchies::find(),
                    prefix,
                )?,
                None => Vec::new(),
            },
        };
        Ok(crate::host::container::CgroupFilter {
            dir,
            container,
            names: false,
        })
    }
}

/// Seconds as a user types them: `5`, `0.5`.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| {
        format!(
            "'{s}' is not a number of seconds: give more than 0 and at most a year (e.g. 5 or 0.5)"
        )
    })?;
    if !(secs > 0.0 && secs <= 31_536_000.0) {
        return Err(format!("'{s}' must be more than 0 and at most a year"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Milliseconds: a positive whole number, at most a day.
pub fn parse_millis(s: &str) -> Result<u64, String> {
    let ms: u64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number of milliseconds: give 1 to 86400000"))?;
    if ms == 0 || ms > 86_400_000 {
        return Err(format!(
            "'{s}' is out of range: give 1 to 86400000 milliseconds"
        ));
    }
    Ok(ms)
}

/// A duration with its unit, as users write it: `10ms`, `500us`, `1.5s`, `250ns`; in ns.
pub fn parse_duration_ns(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "ns" => 1.0,
        "us" | "\u{b5}s" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "" => return Err(format!("'{s}' needs a unit: e.g. 10ms, 500us, 1.5s, 250ns")),
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use ns, us, ms or s)"
            ))
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 10ms, 500us, 1.5s)"))?;
    let ns = value * scale;
    if !(1.0..=86_400e9).contains(&ns) {
        return Err(format!("'{s}' is out of range: give 1ns to a day"));
    }
    Ok(ns.round() as u64)
}

/// A command name filter (`-n`): the kernel keeps 15 bytes of a command name, so a longer NAME
/// could never match.
pub fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the name must not be empty".into());
    }
    if s.len() > 15 {
        return Err(format!(
            "'{s}' is longer than 15 bytes: the kernel keeps only the first 15 bytes of a command name, give a part of it"
        ));
    }
    Ok(s.to_string())
}

/// A user id: 0 to 4294967294 (4294967295 is (uid_t)-1, "no user", which no process runs as).
pub fn parse_uid(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|&u| u != u32::MAX)
        .ok_or_else(|| format!("'{s}' is not a user id: give 0 to 4294967294"))
}

/// A process id that exists now.
pub fn parse_pid(s: &str) -> Result<u32, String> {
    let pid: u32 = s
        .parse()
        .ok()
        .filter(|&p| p > 0 && p <= i32::MAX as u32)
        .ok_or_else(|| format!("'{s}' is not a process id: give 1 to 2147483647"))?;
    if !crate::host::system::process_exists(pid) {
        return Err(format!(
            "no process with pid {pid}: check it with `ps -p {pid}`"
        ));
    }
    Ok(pid)
}

fn parse_ringbuf_kib(s: &str) -> Result<u32, String> {
    let kib: u32 = s.parse().map_err(|_| {
        format!("'{s}' is not a size in KiB: give a power of two between 4 and 1048576")
    })?;
    if !(4..=1 << 20).contains(&kib) || !kib.is_power_of_two() {
        return Err(format!(
            "'{s}' is not a power of two between 4 and 1048576 KiB"
        ));
    }
    Ok(kib)
}

/// Parses `args` (the program name first); a usage error becomes one line (`tool: invalid
/// value ... (see INVOKED --help)`) and exit status 2, as with clap, but without clap's
/// multi-line block. --help and --version print as usual. `invoked` is the name the user ran
/// (`execsnoop-coretrace`, `coretrace execsnoop`), so the hint names a command that exists.
pub fn parse<A: clap::Parser>(tool: &str, invoked: &str, args: Vec<std::ffi::OsString>) -> A {
    parse_refusing(tool, invoked, &[], args)
}

/// Like [`parse`], and refuses, as a usage error, each shared option in `refused` (its id and
/// why it does not apply to this tool) when it is given on the command line (its default is
/// not "given": a tool may ignore a shared option only while the user did not ask for it).
pub fn parse_refusing<A: clap::Parser>(
    tool: &str,
    invoked: &str,
    refused: &[(&str, &str)],
    args: Vec<std::ffi::OsString>,
) -> A {
    let parsed = A::command()
        .try_get_matches_from(args)
        .and_then(|mut matches| {
            // The transport is chosen once per process (consumer::transport), wherever BPF is
            // loaded.
            crate::consumer::transport::init(
                tool,
                matches
                    .try_get_one::<crate::consumer::transport::Preference>("transport")
                    .ok()
                    .flatten()
                    .copied(),
                matches.try_get_one::<bool>("verbose").ok().flatten() == Some(&true),
            );
            for (id, why) in refused {
                if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                    let mut cmd = A::command();
                    return Err(cmd.error(clap::error::ErrorKind::ArgumentConflict, why));
                }
            }
            A::from_arg_matches_mut(&mut matches)
        });
    parsed.unwrap_or_else(|err| {
        use clap::error::ErrorKind;
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            err.exit();
        }
        let text = err.render().to_string();
        // The first paragraph, on one line ("...not provided: <TARGET>...").
        let first: Vec<&str> = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let first = first.join(" ");
        let first = first.strip_prefix("error: ").unwrap_or(&first);
        eprintln!("{tool}: {first} (see {invoked} --help)");
        std::process::exit(2);
    })
}

/// Runs a tool's body: an error becomes one line (`tool: what went wrong: what to do`) and exit
/// status 1; a closed stdout pipe (`execsnoop | head`) ends quietly with status 0; a panic,
/// which is a bug, still becomes one line and status 1. The panic hook itself prints the line
/// and exits, so this holds in the shipped build too, where panics abort instead of unwinding
/// (the kernel detaches the probes of an exiting process).
pub fn main_with(tool: &'static str, body: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("{tool}: internal error{place}: {msg} (please report this)");
        std::process::exit(1);
    }));
    if std::env::var_os("CORETRACE_TEST_PANIC").is_some() {
        // For tests/multicall.rs: proves the guard on the build under test.
        panic!("CORETRACE_TEST_PANIC is set");
    }
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<crate::consumer::EventsLost>().is_some() => {
            eprintln!("{tool}: {e:#}");
            ExitCode::from(crate::output::losses::EXIT_EVENTS_LOST)
        }
        Err(e) => {
            eprintln!("{tool}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("abc").is_err());
    }

    #[test]
    fn millis_range() {
        assert_eq!(parse_millis("100").unwrap(), 100);
        assert!(parse_millis("0").is_err());
        assert!(parse_millis("-5").is_err());
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration_ns("10ms").unwrap(), 10_000_000);
        assert_eq!(parse_duration_ns("500us").unwrap(), 500_000);
        assert_eq!(parse_duration_ns("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration_ns("250ns").unwrap(), 250);
        assert!(parse_duration_ns("10").unwrap_err().contains("unit"));
        assert!(parse_duration_ns("10h").is_err());
        assert!(parse_duration_ns("0ms").is_err());
    }

    #[test]
    fn ringbuf_must_be_power_of_two() {
        assert_eq!(parse_ringbuf_kib("4").unwrap(), 4);
        assert!(parse_ringbuf_kib("3").is_err());
        assert!(parse_ringbuf_kib("2").is_err());
    }

    #[test]
    fn comm_filter_checks_length() {
        assert!(parse_comm("rm").is_ok());
        assert!(parse_comm("fifteen-bytes-x").is_ok());
        assert!(parse_comm("a-very-long-command").is_err());
        assert!(parse_comm("").is_err());
    }

    #[test]
    fn uid_range() {
        assert_eq!(parse_uid("0").unwrap(), 0);
        assert_eq!(parse_uid("4294967294").unwrap(), 4_294_967_294);
        for bad in ["4294967295", "-1", "abc", ""] {
            assert!(
                parse_uid(bad).unwrap_err().contains("0 to 4294967294"),
                "{bad}"
            );
        }
    }

    #[test]
    fn pid_must_exist() {
        assert!(parse_pid(&std::process::id().to_string()).is_ok());
        let err = parse_pid("2147483647").unwrap_err();
        assert!(err.contains("no process"), "{err}");
    }
}
