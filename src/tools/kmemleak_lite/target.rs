//! User mode: which file holds the process's allocator, where its functions are, and how to
//! start a command so that not one of its allocations is missed (it is held before exec until
//! the probes are in place).

use std::cell::Cell;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::host::elf_symbols::{self, Elf};
use crate::host::proc_maps;

/// The allocator functions probed, and the BPF programs for their entry and return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Malloc,
    Calloc,
    Realloc,
    Free,
    PosixMemalign,
    AlignedAlloc,
    Memalign,
    Valloc,
    Pvalloc,
    Mmap,
    Munmap,
    /// C++ operator new and new[] (plain, nothrow, aligned): the size is the first argument.
    CxxNew,
}

pub const PROBES: [(Probe, &str); 19] = [
    (Probe::Malloc, "malloc"),
    (Probe::Calloc, "calloc"),
    (Probe::Realloc, "realloc"),
    (Probe::Free, "free"),
    (Probe::PosixMemalign, "posix_memalign"),
    (Probe::AlignedAlloc, "aligned_alloc"),
    (Probe::Memalign, "memalign"),
    (Probe::Valloc, "valloc"),
    (Probe::Pvalloc, "pvalloc"),
    (Probe::Mmap, "mmap"),
    (Probe::Munmap, "munmap"),
    // Probed although they allocate with malloc: libstdc++ has no frame pointers, so a stack
    // taken when malloc returns into operator new loses new's caller; taken when operator new
    // returns, it starts in that caller. (delete frees with free: nothing to add there.)
    (Probe::CxxNew, "_Znwm"),
    (Probe::CxxNew, "_Znam"),
    (Probe::CxxNew, "_ZnwmRKSt9nothrow_t"),
    (Probe::CxxNew, "_ZnamRKSt9nothrow_t"),
    (Probe::CxxNew, "_ZnwmSt11align_val_t"),
    (Probe::CxxNew, "_ZnamSt11align_val_t"),
    (Probe::CxxNew, "_ZnwmSt11align_val_tRKSt9nothrow_t"),
    (Probe::CxxNew, "_ZnamSt11align_val_tRKSt9nothrow_t"),
];

/// Allocator functions found in one file: which, by what name, at what file offset.
pub type Functions = Vec<(Probe, &'static str, u64)>;

/// Where the allocator lives and where each function found in it starts (file offset).
#[derive(Debug)]
pub struct Allocator {
    pub path: PathBuf,
    pub functions: Functions,
    /// The C++ runtime's operator new, when it is in another file (libstdc++).
    pub cxx: Option<(PathBuf, Functions)>,
    /// The dynamic loader's [`LOADER_HOOK`] (file, offset), for a dynamically linked program.
    pub loader: Option<(PathBuf, u64)>,
}

/// What glibc's and musl's dynamic loaders call before and after they map or unmap libraries
/// (at start-up, dlopen, dlclose): the hook debuggers stop at to learn of new libraries. Probed,
/// it tells when the process's maps are worth reading again.
pub const LOADER_HOOK: &str = "_dl_debug_state";

/// The hook of the dynamic loader at `path`, if it has one.
fn loader_hook(path: PathBuf) -> Option<(PathBuf, u64)> {
    let offset = elf_symbols::read(&path).ok()?.get(LOADER_HOOK)?.offset;
    Some((path, offset))
}

fn is_libstdcxx(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("libstdc++.so"))
}

/// The operator new functions of a C++ runtime library.
fn cxx_in(path: PathBuf) -> Option<(PathBuf, Functions)> {
    let mut functions = find_functions(&path).ok()?;
    functions.retain(|f| f.0 == Probe::CxxNew);
    (!functions.is_empty()).then_some((path, functions))
}

/// The file offsets of the allocator functions `path` defines (not merely imports).
pub fn find_functions(path: &Path) -> Result<Functions> {
    Ok(allocator_functions(&elf_symbols::read(path)?))
}

fn allocator_functions(elf: &Elf) -> Functions {
    PROBES
        .iter()
        .filter_map(|&(probe, name)| Some((probe, name, elf.get(name)?.offset)))
        .collect()
}

fn defines_malloc_and_free(functions: &[(Probe, &'static str, u64)]) -> bool {
    let has = |p: Probe| functions.iter().any(|(q, _, _)| *q == p);
    has(Probe::Malloc) && has(Probe::Free)
}

fn is_libc(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| {
            n.starts_with("libc.so")
                || n.starts_with("libc-")
                || n.starts_with("libc.musl")
                || n.starts_with("ld-musl")
        })
}

/// The allocator of a running process: a non-libc object that defines malloc and free (the
/// executable, jemalloc, tcmalloc ... which then take precedence), else its libc.
pub fn allocator_of_pid(pid: u32) -> Result<Allocator> {
    let maps = proc_maps::read(pid)
        .with_context(|| format!("cannot read /proc/{pid}/maps (has process {pid} exited?)"))?;
    let paths = proc_maps::files(&maps);
    // Files of another mount namespace are reached through the process's root.
    let reach = |path: &Path| {
        Path::new(&format!("/proc/{pid}/root")).join(path.strip_prefix("/").unwrap_or(path))
    };
    let cxx = paths
        .iter()
        .find(|p| is_libstdcxx(p))
        .and_then(|p| cxx_in(reach(p)));
    // The loader its program names (/proc/PID/exe reaches the program in any namespace).
    let loader = elf_symbols::read(Path::new(&format!("/proc/{pid}/exe")))
        .ok()
        .and_then(|exe| exe.interpreter)
        .and_then(|interp| loader_hook(reach(&interp)));
    let (libc, others): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.iter().partition(|p| is_libc(p));
    for path in others.into_iter().chain(libc) {
        let path = reach(path);
        let Ok(functions) = find_functions(&path) else {
            continue;
        };
        if defines_malloc_and_free(&functions) {
            return Ok(Allocator {
                path,
                functions,
                cxx,
                loader,
            });
        }
    }
    bail!("process {pid} maps no libc and defines no malloc/free of its own (a static binary without symbols?): there is no allocator to probe")
}

/// The allocator a command will use, decided before it runs: its own malloc if it defines one
/// (a static binary with symbols); else, for a dynamic executable, its program interpreter when
/// that is a libc too (musl's ld-musl is its libc), else the system libc (the one this tool maps
/// itself; a command with its own glibc through RUNPATH is not seen).
pub fn allocator_of_command(exe: &Path) -> Result<Allocator> {
    let shown = crate::render::escape::path(exe);
    // A script (#!) runs in its interpreter, which is dynamically linked in all but odd cases,
    // by the loader this tool was loaded by.
    let elf = if is_script(exe) {
        None
    } else {
        Some(elf_symbols::read(exe).with_context(|| {
            format!("cannot start {shown}: it is neither a script (#!) nor a 64-bit ELF executable of this machine")
        })?)
    };
    let interp = elf.as_ref().and_then(|e| e.interpreter.clone());
    let loader = match &elf {
        Some(_) => interp.clone(),
        None => elf_symbols::read(Path::new("/proc/self/exe"))
            .ok()
            .and_then(|own| own.interpreter),
    }
    .and_then(loader_hook);
    if let Some(elf) = &elf {
        let functions = allocator_functions(elf);
        if defines_malloc_and_free(&functions) {
            return Ok(Allocator {
                path: exe.to_path_buf(),
                functions,
                cxx: None,
                loader,
            });
        }
        if interp.is_none() {
            bail!("{shown} is statically linked and defines no malloc/free (no libc): there is no allocator to probe");
        }
    }
    // The libstdc++ the loader would find: probed by file, a command that never maps it costs
    // nothing.
    let cxx = crate::tools::uprobe_lat::target::resolve_binary("stdc++", None)
        .ok()
        .and_then(|(path, _)| cxx_in(path));
    if let Some(interp) = interp {
        if let Ok(functions) = find_functions(&interp) {
            if defines_malloc_and_free(&functions) {
                return Ok(Allocator {
                    path: interp,
                    functions,
                    cxx,
                    loader,
                });
            }
        }
    }
    let own = proc_maps::read(std::process::id()).context("reading /proc/self/maps")?;
    let libc = proc_maps::files(&own)
        .into_iter()
        .find(|p| is_libc(p))
        .context("this tool maps no libc, so it cannot tell which libc the command will use: use -p PID on the running command")?;
    let functions = find_functions(&libc)?;
    if !defines_malloc_and_free(&functions) {
        bail!(
            "{} defines no malloc/free",
            crate::render::escape::path(&libc)
        );
    }
    Ok(Allocator {
        path: libc,
        functions,
        cxx,
        loader,
    })
}

fn is_script(exe: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(exe)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == b"#!"
}

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

    #[test]
    fn a_command_that_is_not_an_executable_is_refused() {
        let text = std::env::temp_dir().join(format!("kml-not-elf-{}", std::process::id()));
        std::fs::write(&text, "not an executable").unwrap();
        let err = format!("{:#}", allocator_of_command(&text).unwrap_err());
        std::fs::remove_file(&text).unwrap();
        assert!(err.contains("neither a script"), "{err}");
    }

    #[test]
    fn a_dynamic_command_gets_its_loader_hook() {
        let exe = std::env::current_exe().unwrap();
        let alloc = allocator_of_command(&exe).unwrap();
        let (loader, offset) = alloc.loader.expect("the test binary is dynamic");
        assert!(loader.exists() && offset > 0, "{loader:?}");
    }

    #[test]
    fn own_libc_has_the_allocator() {
        let own = proc_maps::read(std::process::id()).unwrap();
        let libc = proc_maps::files(&own).into_iter().find(|p| is_libc(p));
        if let Some(libc) = libc {
            let f = find_functions(&libc).unwrap();
            assert!(defines_malloc_and_free(&f), "{f:?}");
        }
    }
}
