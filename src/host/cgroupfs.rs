//! cgroup v2 directories for `-c`: opening one (with an error that says where this machine's
//! hierarchy is) and putting it into a tool's `cgroup_filter` map.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags};

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
    // SAFETY: statfs is a plain C struct of integers, for which all zeros is valid.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs fills the struct it is given, from an fd `file` keeps open.
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
