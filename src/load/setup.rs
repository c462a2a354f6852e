//! What every tool does around loading its BPF programs: check that this host can run them at
//! all (privileges, BTF), route libbpf's log, size the ring buffer, and fill the cgroup filter.

use std::ffi::CString;
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::SkelBuilder;
use libbpf_rs::{libbpf_sys, MapCore, MapFlags, OpenMapMut, OpenObject, PrintLevel};

/// Where the running kernel publishes its BTF; CO-RE relocations resolve against it.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The environment variable that names a BTF file, as `--btf FILE` does (the option wins).
pub const BTF_ENV: &str = "CORETRACE_BTF";

/// The BTF file given with `--btf` or `CORETRACE_BTF`, once `use_btf` accepted it: CO-RE
/// relocations, the attach-method probes and `--check` read it instead of the kernel's own.
static CUSTOM_BTF: OnceLock<CustomBtf> = OnceLock::new();

struct CustomBtf {
    path: PathBuf,
    /// For libbpf's `btf_custom_path` open option, which must outlive every open.
    c_path: CString,
    /// How the user gave it, for messages: "--btf" or "CORETRACE_BTF".
    given_by: &'static str,
}

/// Takes the BTF file of `--btf FILE` (else of `CORETRACE_BTF`, when set and not empty) for
/// CO-RE, for kernels without /sys/kernel/btf/vmlinux (files made by `pahole` or from BTFHub).
/// Fails in one line when the file cannot be read or is not BTF. Called first by every tool.
pub fn use_btf(arg: Option<&Path>) -> Result<()> {
    let env = std::env::var_os(BTF_ENV).filter(|v| !v.is_empty());
    let (path, given_by) = match (arg, env) {
        (Some(p), _) => (p.to_path_buf(), "--btf"),
        (None, Some(v)) => (PathBuf::from(v), BTF_ENV),
        (None, None) => return Ok(()),
    };
    // As the user wrote it: "--btf FILE" or "CORETRACE_BTF=FILE".
    let sep = if given_by == BTF_ENV { "=" } else { " " };
    let shown = format!("{given_by}{sep}{}", path.display());
    let fix = "give a BTF file of the running kernel (made with `pahole --btf_encode_detached=FILE vmlinux`, or from BTFHub)";
    if let Err(e) = File::open(&path) {
        bail!("{shown}: {e}: {fix}");
    }
    // libbpf would print its own complaint about a bad file; ours says it in one line (each
    // tool sets libbpf's log as -v asks right after).
    let log = libbpf_rs::set_print(None);
    let parsed = libbpf_rs::Btf::from_path(&path);
    libbpf_rs::set_print(log);
    if let Err(e) = parsed {
        bail!("{shown} is not a BTF file ({e}): {fix}");
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{shown}: the path holds a NUL byte"))?;
    let _ = CUSTOM_BTF.set(CustomBtf {
        path,
        c_path,
        given_by,
    });
    Ok(())
}

/// The BTF file given with `--btf`/`CORETRACE_BTF`, if one was.
pub fn custom_btf() -> Option<&'static Path> {
    CUSTOM_BTF.get().map(|c| c.path.as_path())
}

/// Whether the kernel publishes its own BTF. fentry/fexit need it whatever `--btf` says: the
/// kernel checks a trampoline's target against its own BTF.
pub fn kernel_has_btf() -> bool {
    std::fs::metadata(KERNEL_BTF).is_ok_and(|m| m.len() > 0)
}

/// Opens a skeleton so that its CO-RE relocations resolve against the `--btf` file when one
/// was given, else against the kernel's own BTF (libbpf's default). Every tool opens with this.
pub fn open_skel<'obj, B: SkelBuilder<'obj>>(
    builder: B,
    object: &'obj mut MaybeUninit<OpenObject>,
) -> Result<B::Output> {
    let opened = match CUSTOM_BTF.get() {
        Some(custom) => {
            let opts = libbpf_sys::bpf_object_open_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _,
                btf_custom_path: custom.c_path.as_ptr(),
                ..Default::default()
            };
            builder.open_opts(opts, object)
        }
        None => builder.open(object),
    };
    opened.context("opening the BPF object")
}

/// The capabilities the tools use (numbers from include/uapi/linux/capability.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// Read and search any file and directory: tracefs is mode 0700.
    DacReadSearch = 2,
    /// Read another user's process (/proc/PID/maps, perf events on it).
    SysPtrace = 19,
    /// Covers CAP_BPF and CAP_PERFMON; the only one the kernel accepts for uprobes (and for
    /// mounting tracefs).
    SysAdmin = 21,
    /// Read kernel addresses in /proc/kallsyms when kptr_restrict or perf_event_paranoid hide them.
    Syslog = 34,
    /// Tracing programs, perf events, reading kernel memory.
    Perfmon = 38,
    /// bpf(): programs and maps.
    Bpf = 39,
}

impl Cap {
    pub fn name(self) -> &'static str {
        match self {
            Cap::DacReadSearch => "CAP_DAC_READ_SEARCH",
            Cap::SysPtrace => "CAP_SYS_PTRACE",
            Cap::SysAdmin => "CAP_SYS_ADMIN",
            Cap::Syslog => "CAP_SYSLOG",
            Cap::Perfmon => "CAP_PERFMON",
            Cap::Bpf => "CAP_BPF",
        }
    }
}

/// What a tool, in the mode it was started in, needs from the host beyond a kernel with BTF.
/// `preflight` checks it before anything is loaded and `--check` reports it; README's
/// "Requirements" tables say the same, and tests/requirements.rs runs every tool under exactly
/// that set of capabilities.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// Attaches kernel tracepoints, whose ids are read from tracefs.
    pub tracefs: bool,
    /// Creates uprobes.
    pub uprobes: bool,
    /// Names kernel stack frames, which needs the addresses in /proc/kallsyms.
    pub kernel_symbols: bool,
    /// Reads this process's memory map and probes it (`-p PID`).
    pub process: Option<u32>,
}

impl Needs {
    /// The oldest kernel these needs allow, and why. Events travel through a perf buffer where
    /// there is no ring buffer (before 5.8), and uprobe-lat uses a program per function where
    /// there are no attach cookies (before 5.15), so what is left is the helpers every program
    /// uses to read memory (bpf_probe_read_kernel/_user, which CO-RE reads compile to).
    pub fn min_kernel(&self) -> (&'static str, &'static str) {
        (
            "5.5",
            "CO-RE reads use bpf_probe_read_kernel and bpf_probe_read_user",
        )
    }
}

/// Fails with one line naming the problem and the fix if this host cannot run the tool.
pub fn preflight(needs: &Needs) -> Result<()> {
    check_btf().map_err(anyhow::Error::msg)?;
    check_privileges(needs).map_err(anyhow::Error::msg)?;
    check_kernel_features().map_err(anyhow::Error::msg)?;
    Ok(())
}

/// The capabilities held, checked against `needs` in the order that names the real obstacle
/// first; `Ok` lists the ones the tool relies on. Where the kernel can be asked directly (can
/// we read tracefs, kallsyms, the process?) it is, so a host that needs less is not refused.
pub fn check_privileges(needs: &Needs) -> Result<String, String> {
    let caps = effective_caps().unwrap_or(0);
    let has = |cap: Cap| caps & (1u64 << cap as u32) != 0;
    let missing = |cap: Cap, why: &str| {
        format!(
            "needs {} {why}: run it as root (sudo) or give it the capability",
            cap.name()
        )
    };
    let mut used: Vec<Cap> = Vec::new();
    if needs.uprobes && !has(Cap::SysAdmin) {
        // Linux 6.16 (and the stable kernels updated in July 2025) took uprobes back from
        // CAP_PERFMON; older kernels still allow them with it, so ask this one.
        let permitted = has(Cap::Bpf) && has(Cap::Perfmon) && uprobe_pmu_permits();
        if !permitted {
            return Err(missing(
                Cap::SysAdmin,
                "to create uprobes (the kernel refuses them to CAP_BPF + CAP_PERFMON)",
            ));
        }
    }
    if has(Cap::SysAdmin) {
        used.push(Cap::SysAdmin);
    } else {
        if !has(Cap::Bpf) {
            return Err(missing(Cap::Bpf, "to load BPF programs"));
        }
        if !has(Cap::Perfmon) {
            return Err(missing(Cap::Perfmon, "to load tracing programs"));
        }
        used.extend([Cap::Bpf, Cap::Perfmon]);
    }
    if needs.tracefs {
        tracefs_dir(has(Cap::SysAdmin))?;
        // (Readable without it where tracefs is mounted with a wider mode.)
        if has(Cap::DacReadSearch) {
            used.push(Cap::DacReadSearch);
        }
    }
    if needs.kernel_symbols && has(Cap::Syslog) {
        used.push(Cap::Syslog);
    } else if needs.kernel_symbols && !kallsyms_addresses_visible() {
        return Err(missing(
            Cap::Syslog,
            "to read kernel symbol addresses in /proc/kallsyms (kernel stacks would show as bare addresses)",
        ));
    }
    if let Some(pid) = needs.process {
        check_process_access(pid).map_err(|e| e.to_string())?;
        if has(Cap::SysPtrace) {
            used.push(Cap::SysPtrace);
        }
    }
    let names: Vec<&str> = used.iter().map(|c| c.name()).collect();
    Ok(format!("{} held", names.join(", ")))
}

/// Whether we may read process `pid` (its memory map, and its files through /proc/PID/root):
/// another user's process needs CAP_SYS_PTRACE (CAP_SYS_ADMIN shows the map, not the files).
/// A process that does not exist passes: that is reported where it is used.
pub fn check_process_access(pid: u32) -> Result<()> {
    let denied =
        |r: std::io::Result<()>| r.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    if denied(std::fs::read_link(format!("/proc/{pid}/root")).map(drop))
        || denied(File::open(format!("/proc/{pid}/maps")).map(drop))
    {
        // Held and still refused: the capability is not what is missing, so do not ask for it.
        if has_cap(Cap::SysPtrace) {
            bail!(
                "cannot read process {pid} (/proc/{pid}/maps or /proc/{pid}/root: permission denied) although {} is held: it may belong to another user namespace or be protected by Yama's ptrace_scope or a security module",
                Cap::SysPtrace.name()
            );
        }
        bail!(
            "needs {} to read process {pid} (/proc/{pid}/maps and /proc/{pid}/root: it belongs to another user): run it as root (sudo) or give it the capability",
            Cap::SysPtrace.name()
        );
    }
    Ok(())
}

/// The kernel features every tool relies on, probed (after the privilege check: probing
/// creates a map): a transport for its events (the ring buffer, or else the perf buffer,
/// unless the user forced the ring buffer).
pub fn check_kernel_features() -> Result<(), String> {
    crate::consumer::transport::current()?;
    Ok(())
}

/// Can this kernel create a BPF ring buffer (5.8)? `Ok` names it.
pub fn ringbuf_probe() -> Result<String, String> {
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

/// Can a uprobe program call bpf_get_attach_cookie() (5.15)? `Ok` names it.
pub fn attach_cookie_probe() -> Result<String, String> {
    let r = unsafe {
        libbpf_sys::libbpf_probe_bpf_helper(
            libbpf_sys::BPF_PROG_TYPE_KPROBE,
            libbpf_sys::BPF_FUNC_get_attach_cookie,
            std::ptr::null(),
        )
    };
    match r {
        1 => Ok("bpf_get_attach_cookie() in uprobe programs".into()),
        0 => Err("this kernel has no bpf_get_attach_cookie() for uprobes (Linux 5.15)".into()),
        e => Err(format!(
            "probing for bpf_get_attach_cookie() failed: {}",
            std::io::Error::from_raw_os_error(-e)
        )),
    }
}

/// Asks perf's uprobe PMU whether we may create uprobes, without creating one: the kernel
/// checks the capability before it looks at the (empty, so invalid) path.
fn uprobe_pmu_permits() -> bool {
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    let Some(pmu) = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    else {
        return false;
    };
    let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = pmu;
    attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
    attr.__bindgen_anon_3.uprobe_path = c"".as_ptr() as u64;
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const _,
            -1i32,
            0i32,
            -1i32,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd >= 0 {
        unsafe { libc::close(fd as i32) };
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::EACCES)
}

/// Whether /proc/kallsyms shows us real addresses (kptr_restrict and perf_event_paranoid
/// decide; CAP_SYSLOG overrides both below kptr_restrict=2).
fn kallsyms_addresses_visible() -> bool {
    use std::io::BufRead;
    let Ok(f) = File::open("/proc/kallsyms") else {
        return false;
    };
    let mut line = String::new();
    if std::io::BufReader::new(f).read_line(&mut line).is_err() {
        return false;
    }
    line.split_whitespace()
        .next()
        .and_then(|a| u64::from_str_radix(a, 16).ok())
        .is_some_and(|a| a != 0)
}

/// Where tracefs is, mounting it if nobody has; errors name the capability that is missing.
/// Tracepoints are attached by the id tracefs publishes, and some hosts do not mount it at boot.
pub fn tracefs_dir(can_mount: bool) -> Result<&'static str, String> {
    const TRACEFS: &str = "/sys/kernel/tracing";
    let mut denied = None;
    for dir in [TRACEFS, "/sys/kernel/debug/tracing"] {
        match std::fs::metadata(Path::new(dir).join("events")) {
            Ok(m) if m.is_dir() => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                denied.get_or_insert(dir);
            }
            _ => {}
        }
    }
    if let Some(dir) = denied {
        return Err(format!(
            "needs {} to read tracepoint ids under {dir} (mode 0700): run it as root (sudo) or give it the capability",
            Cap::DacReadSearch.name()
        ));
    }
    if !can_mount {
        return Err(format!(
            "tracefs is not mounted and mounting it needs {}: run `mount -t tracefs nodev {TRACEFS}` as root",
            Cap::SysAdmin.name()
        ));
    }
    let ret = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret != 0 || !Path::new(TRACEFS).join("events").is_dir() {
        return Err(format!(
            "tracefs is not mounted and mounting it failed ({}): run `mount -t tracefs nodev {TRACEFS}`",
            std::io::Error::last_os_error()
        ));
    }
    Ok(TRACEFS)
}

/// Finds (or mounts) tracefs, as the tool itself would.
pub fn ensure_tracefs() -> Result<&'static str, String> {
    tracefs_dir(has_cap(Cap::SysAdmin))
}

/// Whether the process holds `cap` in its effective set.
pub fn has_cap(cap: Cap) -> bool {
    effective_caps().is_some_and(|c| c & (1u64 << cap as u32) != 0)
}

/// CO-RE needs the kernel's types: from the `--btf` file (checked by `use_btf`), else from the
/// kernel's own BTF (CONFIG_DEBUG_INFO_BTF=y). `Ok` says which; `Err` names both fixes.
pub fn check_btf() -> Result<String, String> {
    btf_status(
        CUSTOM_BTF.get().map(|c| (c.path.as_path(), c.given_by)),
        Path::new(KERNEL_BTF),
    )
}

fn btf_status(custom: Option<(&Path, &str)>, kernel: &Path) -> Result<String, String> {
    if let Some((path, given_by)) = custom {
        return Ok(format!("{} (given with {given_by})", path.display()));
    }
    if std::fs::metadata(kernel).is_ok_and(|m| m.len() > 0) {
        return Ok(kernel.display().to_string());
    }
    Err(format!(
        "this kernel has no BTF ({} is missing): give its BTF with --btf FILE or {BTF_ENV}=FILE (a file made with pahole, or from BTFHub), or run a kernel built with CONFIG_DEBUG_INFO_BTF=y (any distribution kernel since 2020)",
        kernel.display()
    ))
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The running kernel's release ("6.1.0-56-cloud-amd64"), escaped for printing; "unknown" if
/// uname fails.
pub fn kernel_release() -> String {
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown".into();
    }
    crate::render::escape::escaped(crate::render::escape::c_str_bytes(&uts.release))
}

/// The running kernel's version (major, minor), from uname; (0, 0) if it cannot be read.
pub fn kernel_version() -> (u32, u32) {
    parse_kernel_version(&kernel_release())
}

/// "6.1.0-56-cloud-amd64" -> (6, 1).
fn parse_kernel_version(release: &str) -> (u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether the running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    kernel_version() >= (major, minor)
}

/// libbpf's own messages go to stderr with `-v`, and nowhere otherwise (a failed probe of an
/// attach method is expected, not news; errors reach the user through our own message).
pub fn libbpf_log(verbose: bool) {
    fn print(level: PrintLevel, msg: String) {
        let tag = match level {
            PrintLevel::Warn => "warn",
            PrintLevel::Info => "info",
            PrintLevel::Debug => "debug",
        };
        eprint!("libbpf {tag}: {msg}");
    }
    if verbose {
        libbpf_rs::set_print(Some((PrintLevel::Debug, print)));
    } else {
        libbpf_rs::set_print(None);
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
) -> Result<EventsSetup> {
    use crate::consumer::transport::{self, Transport};
    let chosen = transport::current().map_err(anyhow::Error::msg)?;
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

/// `statfs` f_type of a cgroup v2 file system, and of a cgroup v1 hierarchy.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// An open cgroup v2 directory for `-c`, or a one-line error that says what the path is and
/// where this machine's cgroup v2 hierarchy is. (The BPF cgroup filter only takes v2 cgroups;
/// a v1 or plain directory would otherwise fail later with a bare "Bad file descriptor".)
pub fn open_cgroup(path: &Path) -> Result<File> {
    let shown = path.display();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => bail!(
            "cannot open cgroup {shown}: {e}: give a cgroup v2 directory ({})",
            cgroup2_hint()
        ),
    };
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 {
        bail!(
            "cannot check cgroup {shown}: {}",
            std::io::Error::last_os_error()
        );
    }
    match fs.f_type as i64 {
        CGROUP2_SUPER_MAGIC => {}
        CGROUP_SUPER_MAGIC => bail!(
            "{shown} is a cgroup v1 directory, and -c needs cgroup v2: give a cgroup v2 directory ({})",
            cgroup2_hint()
        ),
        _ => bail!(
            "{shown} is not a cgroup directory: give a cgroup v2 directory ({})",
            cgroup2_hint()
        ),
    }
    if !file.metadata().is_ok_and(|m| m.is_dir()) {
        bail!(
            "{shown} is a file, not a cgroup directory: give its directory ({})",
            cgroup2_hint()
        );
    }
    Ok(file)
}

/// Where to look for cgroup v2 directories on this machine, for error messages.
fn cgroup2_hint() -> String {
    match cgroup2_mount() {
        Some(dir) => format!("cgroup v2 is mounted at {dir} on this machine"),
        None => "this machine has no cgroup v2 mounted: mount it with `mount -t cgroup2 none /sys/fs/cgroup` or give a path under an existing one".into(),
    }
}

/// The first cgroup2 mount point in /proc/self/mounts (never assume /sys/fs/cgroup: hybrid
/// systems mount v1 controllers there and v2 at /sys/fs/cgroup/unified).
pub fn cgroup2_mount() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| dir.to_string())
    })
}

/// After load: puts the cgroup into slot 0 of the `cgroup_filter` map.
pub fn fill_cgroup_filter(map: &dyn MapCore, cgroup: &File) -> Result<()> {
    let fd = cgroup.as_raw_fd() as u32;
    map.update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
        .context("setting the cgroup filter")
}

/// A loading failure, explained: what failed, and where to look.
pub fn load_error(e: libbpf_rs::Error) -> anyhow::Error {
    // A BTF file of another kernel (or none at all) makes CO-RE relocations fail.
    let btf = match CUSTOM_BTF.get() {
        Some(c) => format!("; is {} the running kernel's BTF?", c.path.display()),
        None => String::new(),
    };
    anyhow::anyhow!("loading the BPF programs failed: {e} (run with -v to see libbpf's log{btf})")
}

/// A skeleton's `.rodata` (the constants set before load), or an error if the object has none.
pub fn rodata<T>(data: Option<&mut T>) -> Result<&mut T> {
    data.context("the BPF object has no .rodata section")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.1.0-56-cloud-amd64"), (6, 1));
        assert_eq!(parse_kernel_version("5.10.0-46-cloud-amd64"), (5, 10));
        assert_eq!(parse_kernel_version("6.12.117+deb12-cloud-amd64"), (6, 12));
        assert!(parse_kernel_version("6.18.0") >= (6, 1));
        assert!(parse_kernel_version("5.10.0") < (6, 1));
    }

    #[test]
    fn missing_btf_names_both_fixes() {
        let err = btf_status(None, Path::new("/nonexistent/btf")).unwrap_err();
        assert!(err.contains("/nonexistent/btf is missing"), "{err}");
        assert!(err.contains("--btf FILE or CORETRACE_BTF=FILE"), "{err}");
        assert!(err.contains("CONFIG_DEBUG_INFO_BTF=y"), "{err}");
        let given = btf_status(
            Some((Path::new("/x.btf"), "--btf")),
            Path::new("/nonexistent"),
        );
        assert_eq!(given.unwrap(), "/x.btf (given with --btf)");
    }
}
