//! -c: the command line split as a shell would split it, its program found as execvp would
//! find it (so that a missing one is reported before anything starts), and the command started
//! held before its exec until the probes are in place, so that not one of its allocations is
//! missed; its exit status as a shell gives it.

use std::cell::Cell;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::host::proc_maps;

/// Splits a command line the way a shell would for simple words: spaces separate, quotes
/// ('...' and "...") and backslashes group.
pub fn split_command(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        let line = crate::render::escape::escaped(line.as_bytes());
        bail!("unbalanced quote in the command: {line}");
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        bail!("the command to run (-c) is empty");
    }
    Ok(words)
}

/// Finds the program the way execvp would, so that a missing one is reported before anything
/// starts.
pub fn resolve_program(name: &str) -> Result<PathBuf> {
    use crate::host::system::is_executable as executable;
    let shown = crate::render::escape::escaped(name.as_bytes());
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.exists() {
            bail!("cannot start '{shown}': no such file");
        }
        if !executable(&p) {
            bail!("cannot start '{shown}': not an executable file");
        }
        return Ok(p);
    }
    crate::host::system::find_in_path(name)
        .with_context(|| format!("cannot start '{shown}': command not found in $PATH"))
}

/// A command started by the tool, held before exec until [`Child::release`]. It runs as a
/// shell would start it (default signal dispositions, nothing blocked), and does not outlive the
/// tool: it is killed if the tool dies, and ended with [`Child::terminate`] when the tool stops
/// first.
pub struct Child {
    pub pid: u32,
    go: Option<i32>,
    exec_error: i32,
    /// The wait status, once reaped.
    status: Cell<Option<i32>>,
    /// /proc/PID/maps read when exec succeeded: a command that ends before the first report
    /// still has its executable's frames symbolized.
    pub maps_at_exec: Vec<proc_maps::Mapping>,
}

/// Sent on the exec-error pipe, before the exec, when the child could not ask to stop at exec.
const NOT_TRACED: i32 = -1;

/// Signals a child may still find ignored or caught: every one but SIGKILL/SIGSTOP (1..=64).
const LAST_SIGNAL: i32 = 64;
impl Child {
    /// Forks; the child waits for the go byte, then execs `argv` (argv[0] resolved to `exe`).
    pub fn spawn(exe: &Path, argv: &[String]) -> Result<Child> {
        let exe_c = CString::new(exe.as_os_str().as_bytes()).context("command path has a NUL")?;
        let args_c: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .context("command argument has a NUL byte")?;
        let mut argv_p: Vec<*const libc::c_char> = args_c.iter().map(|a| a.as_ptr()).collect();
        argv_p.push(std::ptr::null());
        let mut go = [0i32; 2];
        let mut err = [0i32; 2];
        // SAFETY: pipe2 writes two fds into each 2-element array.
        unsafe {
            if libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) != 0
                || libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC) != 0
            {
                bail!("pipe: {}", std::io::Error::last_os_error());
            }
        }
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child runs only async-signal-safe calls until it execs or exits (below).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!(
                "cannot start the command: fork: {}",
                std::io::Error::last_os_error()
            );
        }
        if pid == 0 {
            // Child: only async-signal-safe calls from here on.
            // SAFETY: in the forked child, with the command's path and argv prepared before the fork.
            unsafe { exec_when_released(go, err, parent, &exe_c, &argv_p) }
        }
        // SAFETY: the parent closes its copies of the child's pipe ends, once.
        unsafe {
            libc::close(go[0]);
            libc::close(err[1]);
        }
        Ok(Child {
            pid: pid as u32,
            go: Some(go[1]),
            exec_error: err[0],
            status: Cell::new(None),
            maps_at_exec: Vec::new(),
        })
    }

    /// Lets the child exec; fails with the reason if exec failed.
    pub fn release(&mut self) -> Result<()> {
        if let Some(fd) = self.go.take() {
            // SAFETY: `fd` is the go pipe's write end, taken out of `self.go` so it is closed once.
            unsafe {
                libc::write(fd, b"g".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
        let mut traced = true;
        let errno = loop {
            let mut word = 0i32;
            // SAFETY: reads at most 4 bytes into a 4-byte i32.
            let n = unsafe { libc::read(self.exec_error, (&mut word as *mut i32).cast(), 4) };
            match (n, word) {
                (4, NOT_TRACED) => traced = false,
                (4, errno) => break Some(errno),
                (n, _)
                    if n < 0
                        && std::io::Error::last_os_error().kind()
                            == std::io::ErrorKind::Interrupted => {}
                _ => break None, // closed by the exec
            }
        };
        // SAFETY: the fd is ours and marked closed (-1) right after.
        unsafe { libc::close(self.exec_error) };
        self.exec_error = -1;
        if let Some(errno) = errno {
            self.wait(true);
            bail!(
                "cannot start the command: {}",
                std::io::Error::from_raw_os_error(errno)
            );
        }
        if traced {
            self.read_maps_at_exec();
        }
        Ok(())
    }

    /// The child is stopped after its exec (the program and its loader are mapped, nothing of
    /// it has run): snapshot its maps, so that a command ending before the first report still
    /// has its frames symbolized; then let it go, no longer traced.
    fn read_maps_at_exec(&mut self) {
        let mut status = 0;
        let r = loop {
            // SAFETY: waitpid writes the status into a live i32.
            let r = unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
            if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break r;
            }
        };
        if r != self.pid as i32 {
            return;
        }
        if !libc::WIFSTOPPED(status) {
            self.status.set(Some(status)); // ended (killed) before the stop
            return;
        }
        self.maps_at_exec = proc_maps::read(self.pid).unwrap_or_default();
        // The exec's SIGTRAP is swallowed; any other signal that stopped it is delivered.
        let sig = match libc::WSTOPSIG(status) {
            libc::SIGTRAP => 0,
            other => other,
        };
        // SAFETY: detaches our own traced, stopped child.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, self.pid as libc::pid_t, 0, sig) };
    }

    /// The wait status once the child has ended (reaps it), None while it runs.
    pub fn wait(&self, block: bool) -> Option<i32> {
        if let Some(status) = self.status.get() {
            return Some(status);
        }
        let mut status = 0;
        let flags = if block { 0 } else { libc::WNOHANG };
        loop {
            // SAFETY: waitpid writes the status into a live i32.
            let r = unsafe { libc::waitpid(self.pid as i32, &mut status, flags) };
            if r == self.pid as i32 {
                self.status.set(Some(status));
                return Some(status);
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return None;
        }
    }

    /// Ends the command because the tool stops first (Ctrl-C, SIGTERM, --timeout): SIGTERM,
    /// then SIGKILL if it is still there after `grace`. Returns its wait status.
    pub fn terminate(&self, grace: Duration) -> i32 {
        if let Some(status) = self.wait(false) {
            return status;
        }
        // SAFETY: signals our own child, not yet reaped (so its pid is not reused).
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.wait(false) {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: signals our own child, not yet reaped (so its pid is not reused).
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        self.wait(true).unwrap_or(libc::SIGKILL)
    }
}

/// The forked child's side of [`Child::spawn`]: signal dispositions and mask as a shell's child
/// has them, death with the tool, the wait for the go byte, the stop at exec, and the exec; the
/// exec's errno (or [`NOT_TRACED`]) goes back on the error pipe.
///
/// # Safety
///
/// Only in the child just forked by [`Child::spawn`], with `exe_c` and `argv_p` (NULL-ended)
/// prepared before the fork: it makes only async-signal-safe calls, and never returns.
unsafe fn exec_when_released(
    go: [i32; 2],
    err: [i32; 2],
    parent: libc::pid_t,
    exe_c: &CString,
    argv_p: &[*const libc::c_char],
) -> ! {
    // SAFETY: in the forked child: only async-signal-safe calls on fds and memory prepared before the fork, ending in exec or _exit.
    unsafe {
        libc::close(go[1]);
        libc::close(err[0]);
        // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: the
        // command would see EPIPE where a shell's child dies of SIGPIPE. Default
        // dispositions, empty mask, as a shell starts it.
        for sig in 1..=LAST_SIGNAL {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // Dies with the tool, however the tool ends (SIGKILL included). Kept across
        // exec (but for set-uid programs). The tool may have died before this line.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != parent {
            libc::_exit(126);
        }
        let mut byte = 0u8;
        if libc::read(go[0], (&mut byte as *mut u8).cast(), 1) != 1 {
            libc::_exit(126);
        }
        // Stop right after exec (SIGTRAP), so the tool reads the new program's maps
        // before it can run and end; a refusal is said (NOT_TRACED) and not fatal.
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
            libc::write(err[1], (&NOT_TRACED as *const i32).cast(), 4);
        }
        libc::execv(exe_c.as_ptr(), argv_p.as_ptr());
        let errno = *libc::__errno_location();
        libc::write(err[1], (&errno as *const i32).cast(), 4);
        libc::_exit(127);
    }
}

/// A wait status as a shell's `$?`: exit code N gives N, death by signal S gives 128+S.
pub fn shell_status(status: i32) -> u8 {
    if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)) as u8
    } else {
        libc::WEXITSTATUS(status) as u8
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Never released (set-up failed): the child exits on the closed pipe.
        if let Some(fd) = self.go.take() {
            // SAFETY: `fd` was taken out of `self.go`: closed once.
            unsafe { libc::close(fd) };
            self.wait(true);
        } else if self.exec_error < 0 && self.wait(false).is_none() {
            // Released and still running: the tool is failing; the command goes with it.
            // SAFETY: signals our own child, not yet reaped (so its pid is not reused).
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
            self.wait(true);
        }
        if self.exec_error >= 0 {
            // SAFETY: the fd is still ours (>= 0), and the Child is being dropped.
            unsafe { libc::close(self.exec_error) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_a_shell() {
        assert_eq!(
            split_command(r#"prog -x 'a b' "c d" e\ f"#).unwrap(),
            vec!["prog", "-x", "a b", "c d", "e f"]
        );
        assert!(split_command("   ").is_err());
        assert!(split_command("prog 'open").is_err());
    }

    #[test]
    fn status_as_a_shell_gives_it() {
        assert_eq!(shell_status(0), 0);
        assert_eq!(shell_status(3 << 8), 3);
        assert_eq!(shell_status(libc::SIGKILL), 137);
        assert_eq!(shell_status(libc::SIGPIPE | 0x80), 141); // core dumped
    }

    #[test]
    fn missing_program_is_named() {
        let err = resolve_program("no-such-command-kmemleak").unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
    }

}
