//! User mode: which file holds the process's allocator and where its functions are (for a
//! running process, or for a command before it starts); starting the command is command.rs's.

use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

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
