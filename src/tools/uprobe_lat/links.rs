//! Attaching uprobe-lat's programs to many functions, and letting go of them fast and in an
//! order that cannot corrupt the per-thread stacks.
//!
//! Two kinds of link:
//! - multi-uprobe links (kernel 6.6+): one link per binary for the entry probes and one for the
//!   return probes, however many functions; detaching one waits for one grace period in all.
//! - per-probe links (perf events): two file descriptors per function. On recent kernels
//!   (6.18 here) closing each one waits for RCU grace periods while holding the kernel's global
//!   trace-event mutex: about 0.1 s per probe, one after the other, which closing them from many
//!   threads does not overlap (tried: 100 functions took 16 s instead of 20). Those kernels all
//!   have multi-uprobe links, so this path is for the ones before 6.6.
//!
//! And two sets of programs: with attach cookies (5.15+), one entry and one return program
//! serve every function, the cookie saying which; without them, function i gets a program pair
//! of its own (`func_entry_i`, `func_exit_i`: the id is a constant in each), so at most
//! NO_COOKIE_PROGS functions are timed at once.
//!
//! Detaching removes every entry probe before any return probe: a return probe removed first
//! would let entries pile up on the per-thread stacks with nothing to pop them, and the tool
//! would report calls "nested deeper than 32 levels" that never were.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use libbpf_rs::{Link, Object, OpenObject, ProgramMut, UprobeMultiOpts, UprobeOpts};

use super::target::Probe;
use crate::consumer::Stop;
use crate::render::escape::escaped;

/// Program pairs for kernels without attach cookies (NO_COOKIE_PROGS in uprobe_lat.h): at most
/// this many functions there.
pub const NO_COOKIE_PROGS: usize = crate::skel::uprobe_lat::defs::NO_COOKIE_PROGS as usize;

/// How the probes are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Multi-uprobe links, one program pair for all (cookies tell the functions apart).
    Multi,
    /// Per-probe links, one program pair for all (cookies tell the functions apart).
    PerProbe,
    /// Per-probe links, a program pair per function: for kernels without attach cookies.
    NoCookies,
}

impl Kind {
    /// The kind this kernel can do: `no_cookies` and `per_probe` force the paths older kernels
    /// take (for tests and benchmarks).
    pub fn choose(no_cookies: bool, per_probe: bool) -> Kind {
        if no_cookies || !cookies_supported() {
            Kind::NoCookies
        } else if !per_probe && multi_supported() {
            Kind::Multi
        } else {
            Kind::PerProbe
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Multi => "multi-uprobe links (one per binary)",
            Kind::PerProbe => "one uprobe link per probe",
            Kind::NoCookies => {
                "one uprobe link per probe, and no attach cookies: one program pair per function"
            }
        }
    }

    /// Fails, naming the limit and the fixes, when this kind cannot time `functions` at once.
    pub fn check_count(self, functions: usize, forced: bool) -> Result<()> {
        if self == Kind::NoCookies && functions > NO_COOKIE_PROGS {
            let why = if forced {
                "--no-cookies".to_string()
            } else {
                format!("Linux {} has none", crate::host::system::kernel_release())
            };
            anyhow::bail!(
                "{functions} functions to time, but without BPF attach cookies ({why}) uprobe-lat times at most {NO_COOKIE_PROGS} at once: give fewer functions (or narrower globs), or run it on Linux 5.15 or later"
            );
        }
        Ok(())
    }

    /// The entry (or return) program names this kind loads for `functions` functions, in
    /// function order (one name serves every function where cookies tell them apart).
    fn prog_names(self, functions: usize, entry: bool) -> Vec<String> {
        let base = if entry { "func_entry" } else { "func_exit" };
        match self {
            Kind::Multi => vec![format!("{base}_multi")],
            Kind::PerProbe => vec![base.to_string()],
            Kind::NoCookies => (0..functions).map(|i| format!("{base}_{i}")).collect(),
        }
    }

    /// Loads only the programs this kind attaches for `functions` functions: the others stay
    /// out of the kernel, which matters where it would refuse them (the cookie helper before
    /// 5.15, multi-uprobe programs before 6.6).
    pub fn set_autoload(self, obj: &mut OpenObject, functions: usize) {
        let mut wanted = self.prog_names(functions, true);
        wanted.extend(self.prog_names(functions, false));
        for mut prog in obj.progs_mut() {
            let name = prog.name().to_string_lossy();
            if name.starts_with("func_entry") || name.starts_with("func_exit") {
                let load = wanted.iter().any(|w| *w == name);
                prog.set_autoload(load);
            }
        }
    }

    /// The loaded entry and return programs, in function order (see `prog_names`).
    pub fn programs(
        self,
        obj: &Object,
        functions: usize,
    ) -> Result<(Vec<ProgramMut<'_>>, Vec<ProgramMut<'_>>)> {
        let pick = |entry: bool| -> Result<Vec<ProgramMut<'_>>> {
            self.prog_names(functions, entry)
                .iter()
                .map(|name| {
                    obj.progs_mut()
                        .find(|p| p.name() == name.as_str())
                        .with_context(|| format!("the BPF object has no program {name}"))
                })
                .collect()
        };
        Ok((pick(true)?, pick(false)?))
    }
}

/// Whether uprobe programs may call bpf_get_attach_cookie() here (5.15+).
pub fn cookies_supported() -> bool {
    crate::load::needs::attach_cookie_probe().is_ok()
}

/// The entry and return links of every probe; dropped entry links first.
pub struct Attached {
    entries: Vec<Link>,
    returns: Vec<Link>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.entries.clear();
        self.returns.clear();
    }
}

/// Attaches the entry and return programs to every probe, return probes first: a call whose
/// entry is timed then has its return seen too. With cookies, one pair serves all (cookie =
/// index in `probes`); without, pair i is probe i's. `pid` -1: every process. A stop request
/// (Ctrl-C) ends a long per-probe attach early, with what is attached so far.
pub fn attach(
    kind: Kind,
    entries: &[ProgramMut<'_>],
    exits: &[ProgramMut<'_>],
    probes: &[Probe],
    pid: i32,
    stop: &Stop,
) -> Result<Attached> {
    let mut attached = Attached {
        entries: Vec::new(),
        returns: Vec::new(),
    };
    match kind {
        Kind::Multi => attach_multi(&mut attached, &entries[0], &exits[0], probes, pid)?,
        Kind::PerProbe | Kind::NoCookies => {
            let own = kind == Kind::NoCookies;
            attach_each(&mut attached, own, entries, exits, probes, pid, stop)?
        }
    }
    Ok(attached)
}

/// Multi-uprobe links: one pair per binary file, cookie = index in `probes`.
fn attach_multi(
    attached: &mut Attached,
    entry: &ProgramMut<'_>,
    exit: &ProgramMut<'_>,
    probes: &[Probe],
    pid: i32,
) -> Result<()> {
    // One pair of links per binary file.
    let mut by_path: BTreeMap<&PathBuf, (Vec<usize>, Vec<u64>)> = BTreeMap::new();
    for (id, p) in probes.iter().enumerate() {
        let e = by_path.entry(&p.path).or_default();
        e.0.push(p.offset as usize);
        e.1.push(id as u64);
    }
    for (path, (offsets, cookies)) in by_path {
        for (prog, retprobe) in [(exit, true), (entry, false)] {
            let opts = UprobeMultiOpts {
                offsets: offsets.clone(),
                cookies: cookies.clone(),
                retprobe,
                ..Default::default()
            };
            let link = prog
                .attach_uprobe_multi_with_opts(pid, path, "", opts)
                .with_context(|| {
                    format!(
                        "attaching to {} function{} in {}",
                        offsets.len(),
                        if offsets.len() == 1 { "" } else { "s" },
                        escaped(path.as_os_str().as_encoded_bytes())
                    )
                })?;
            if retprobe {
                attached.returns.push(link);
            } else {
                attached.entries.push(link);
            }
        }
    }
    Ok(())
}

/// Per-probe links, two per probe; `own`: program pair i is probe i's (no cookies).
fn attach_each(
    attached: &mut Attached,
    own: bool,
    entries: &[ProgramMut<'_>],
    exits: &[ProgramMut<'_>],
    probes: &[Probe],
    pid: i32,
    stop: &Stop,
) -> Result<()> {
    attached.entries.reserve(probes.len());
    attached.returns.reserve(probes.len());
    for (id, p) in probes.iter().enumerate() {
        if stop.requested() {
            break;
        }
        let (entry, exit) = match own {
            true => (&entries[id], &exits[id]),
            false => (&entries[0], &exits[0]),
        };
        for (prog, retprobe) in [(exit, true), (entry, false)] {
            let opts = UprobeOpts {
                // None without cookies: before 5.15 libbpf refuses a non-zero one.
                cookie: if own { 0 } else { id as u64 },
                retprobe,
                ..Default::default()
            };
            let link = prog
                .attach_uprobe_with_opts(pid, &p.path, p.offset as usize, opts)
                .with_context(|| {
                    format!(
                        "attaching to {}:{} (offset {:#x})",
                        p.binary,
                        escaped(p.function.as_bytes()),
                        p.offset
                    )
                })?;
            if retprobe {
                attached.returns.push(link);
            } else {
                attached.entries.push(link);
            }
        }
    }
    Ok(())
}

/// Per-probe links hold two file descriptors per function; a shell's usual soft limit (1024)
/// would stop at about 500 functions. Raise it to the hard limit, which needs no privilege.
pub fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Whether this kernel has multi-uprobe links that filter by process correctly (6.6 had them;
/// a fix soon after made the pid filter mean the process, not the thread). The same probe as
/// libbpf's own (features.c, probe_uprobe_multi_link): a do-nothing program, then two link
/// requests that must fail in ways that tell the answer.
pub fn multi_supported() -> bool {
    use libbpf_rs::libbpf_sys as sys;
    // r0 = 0; exit
    let insns = [
        sys::bpf_insn {
            code: (sys::BPF_ALU64 | sys::BPF_MOV | sys::BPF_K) as u8,
            _bitfield_align_1: [],
            _bitfield_1: sys::bpf_insn::new_bitfield_1(0, 0),
            off: 0,
            imm: 0,
        },
        sys::bpf_insn {
            code: (sys::BPF_JMP | sys::BPF_EXIT) as u8,
            _bitfield_align_1: [],
            _bitfield_1: sys::bpf_insn::new_bitfield_1(0, 0),
            off: 0,
            imm: 0,
        },
    ];
    let mut load_opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: sys::BPF_TRACE_UPROBE_MULTI,
        ..Default::default()
    };
    let license = CString::new("GPL").expect("no NUL");
    // SAFETY: the instructions, license and options outlive the call.
    let prog_fd = unsafe {
        sys::bpf_prog_load(
            sys::BPF_PROG_TYPE_KPROBE,
            std::ptr::null(),
            license.as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut load_opts,
        )
    };
    if prog_fd < 0 {
        return false;
    }
    let root = CString::new("/").expect("no NUL");
    let offset: libc::c_ulong = 0;
    let try_link = |pid: u32| -> i32 {
        let mut opts = sys::bpf_link_create_opts {
            sz: std::mem::size_of::<sys::bpf_link_create_opts>() as _,
            ..Default::default()
        };
        opts.__bindgen_anon_1.uprobe_multi =
            sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
                path: root.as_ptr(),
                offsets: &offset,
                cnt: 1,
                pid,
                ..Default::default()
            };
        // SAFETY: the options point at locals that outlive the call.
        let fd = unsafe { sys::bpf_link_create(prog_fd, -1, sys::BPF_TRACE_UPROBE_MULTI, &opts) };
        if fd >= 0 {
            // SAFETY: our own new descriptor.
            unsafe { libc::close(fd) };
            return 0;
        }
        // libbpf sets errno and returns -1 (or returns -errno): take errno.
        -std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    };
    // A uprobe in the directory "/" fails with EBADF where multi-uprobe links exist;
    // with pid -1 it fails earlier, with EINVAL, where the pid filter was fixed.
    let ok = try_link(0) == -libc::EBADF && try_link(u32::MAX) == -libc::EINVAL;
    // SAFETY: our own descriptor.
    unsafe { libc::close(prog_fd) };
    ok
}
