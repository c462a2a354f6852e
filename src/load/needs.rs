//! What a tool needs from the host beyond a kernel with BTF ([`Needs`]: capabilities, tracefs,
//! uprobes, kernel symbols, access to a process), checked before anything is loaded
//! ([`preflight`]) and reported by `--check`.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Result};
use libbpf_rs::libbpf_sys;

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
        MIN_KERNEL
    }
}

/// The oldest kernel every tool runs on, and why (see [`Needs::min_kernel`]); `--check`, the
/// README's Requirements and the man pages (coretrace-gen) say this.
pub const MIN_KERNEL: (&str, &str) = (
    "5.5",
    "CO-RE reads use bpf_probe_read_kernel and bpf_probe_read_user",
);

/// Fails with one line naming the problem and the fix if this host cannot run the tool.
pub fn preflight(needs: &Needs) -> Result<()> {
    super::btf::check_btf().map_err(anyhow::Error::msg)?;
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

/// Can a uprobe program call bpf_get_attach_cookie() (5.15)? `Ok` names it.
pub fn attach_cookie_probe() -> Result<String, String> {
    // SAFETY: libbpf's probe takes a program type, a helper id and a null (reserved) options pointer.
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
    // SAFETY: perf_event_attr is a plain C struct of integers, for which all zeros is valid.
    let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = pmu;
    attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
    attr.__bindgen_anon_3.uprobe_path = c"".as_ptr() as u64;
    // SAFETY: perf_event_open reads `attr` (alive across the call; its path points at a static empty C string).
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
        // SAFETY: `fd` is the perf event the call above opened, closed once.
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
    // SAFETY: mount reads NUL-terminated literals and a null data pointer.
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

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}
