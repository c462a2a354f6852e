//! Small questions about the running system that several tools ask: is a process still there,
//! where does `$PATH` find a command. One answer each, so every tool behaves the same.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Whether process `pid` exists. `kill(pid, 0)` sends nothing; EPERM means it exists but
/// belongs to someone else, so only ESRCH says it is gone.
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 performs only the existence and permission checks.
    let ret = unsafe { libc::kill(pid, 0) };
    ret == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether `path` is a regular file we may execute (access(2) with X_OK, as execvp checks).
pub fn is_executable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    path.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

/// The first executable called `name` in `$PATH` (or execvp's default path when it is unset),
/// the way a shell finds a command.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// The running kernel's name, release and machine, from uname(2), escaped for printing; None
/// if uname fails.
fn uname() -> Option<[String; 3]> {
    // SAFETY: utsname is a plain C struct of byte arrays, for which all zeros is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let field =
        |f: &[libc::c_char]| crate::render::escape::escaped(crate::render::escape::c_str_bytes(f));
    Some([
        field(&uts.sysname),
        field(&uts.release),
        field(&uts.machine),
    ])
}

/// The running kernel's release ("6.1.0-56-cloud-amd64"), escaped for printing; "unknown" if
/// uname fails.
pub fn kernel_release() -> String {
    uname().map_or_else(|| "unknown".into(), |[_, release, _]| release)
}

/// The running kernel as `uname -srm` names it ("Linux 6.1.0-56-cloud-amd64 x86_64"), escaped
/// for printing (`--check`); "unknown" if uname fails.
pub fn kernel_description() -> String {
    uname().map_or_else(|| "unknown".into(), |u| u.join(" "))
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
    fn finds_commands_like_a_shell() {
        assert_eq!(find_in_path("sh").map(|p| p.is_absolute()), Some(true));
        assert_eq!(find_in_path("no-such-command-coretrace"), None);
        // Not executable, though it exists.
        assert!(!is_executable(Path::new("/etc/passwd")));
    }

    #[test]
    fn knows_which_processes_exist() {
        assert!(process_exists(std::process::id()));
        assert!(process_exists(1));
        assert!(!process_exists(i32::MAX as u32));
        assert!(!process_exists(u32::MAX));
    }
}
