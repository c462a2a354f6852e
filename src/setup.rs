//! What every tool does around loading its BPF programs: check that this host can run them at
//! all (privileges, BTF), route libbpf's log, size the ring buffer, and fill the cgroup filter.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags, OpenMapMut, PrintLevel};

/// Where the running kernel publishes its BTF; CO-RE relocations resolve against it.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails with one line naming the problem and the fix if BPF tracing cannot work here.
pub fn preflight() -> Result<()> {
    let caps = effective_caps().unwrap_or(0);
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if !(has(CAP_SYS_ADMIN) || has(CAP_BPF) && has(CAP_PERFMON)) {
        bail!("loading BPF programs needs root (or CAP_BPF and CAP_PERFMON): run it with sudo");
    }
    check_btf(Path::new(KERNEL_BTF))?;
    ensure_tracefs()
}

/// Tracepoints are attached by the id tracefs publishes; some hosts do not mount it at boot.
pub fn ensure_tracefs() -> Result<()> {
    const TRACEFS: &str = "/sys/kernel/tracing";
    let mounted = |dir: &str| Path::new(dir).join("events").is_dir();
    if mounted(TRACEFS) || mounted("/sys/kernel/debug/tracing") {
        return Ok(());
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
    if ret != 0 || !mounted(TRACEFS) {
        bail!(
            "tracefs is not mounted and mounting it failed ({}): run `mount -t tracefs nodev {TRACEFS}`",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The kernel must describe its own types (CONFIG_DEBUG_INFO_BTF=y) for CO-RE.
pub fn check_btf(path: &Path) -> Result<()> {
    if !path.exists() {
        bail!(
            "this kernel has no BTF ({} is missing): CO-RE tools need a kernel built with CONFIG_DEBUG_INFO_BTF=y (any distribution kernel since 2020 has it)",
            path.display()
        );
    }
    Ok(())
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The running kernel's version (major, minor), from uname; (0, 0) if it cannot be read.
pub fn kernel_version() -> (u32, u32) {
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    let release = crate::escape::c_str_bytes(&uts.release);
    parse_kernel_version(&String::from_utf8_lossy(release))
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

/// Sizes the `events` ring buffer (before load) and returns the backlog, in bytes, past which
/// the BPF side wakes the consumer (its `wakeup_bytes`).
pub fn size_ringbuf(events: &mut OpenMapMut, bytes: u32) -> Result<u64> {
    events
        .set_max_entries(bytes)
        .context("sizing the ring buffer")?;
    Ok(u64::from(bytes / 4))
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
    anyhow::anyhow!("loading the BPF programs failed: {e} (run with -v to see libbpf's log)")
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
    fn missing_btf_names_the_fix() {
        let err = check_btf(Path::new("/nonexistent/btf"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CONFIG_DEBUG_INFO_BTF"), "{err}");
    }
}
