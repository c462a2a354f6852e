//! The BPF side set up for the mode asked for: its tables sized and its constants set from the
//! options, only the programs of that mode loaded (kernel: the kmem tracepoints, and fentry on
//! kmem_cache_free_bulk where allowed; user: uprobes on the allocator), and attached.

use anyhow::{Context, Result};
use libbpf_rs::Link;

use super::target::{self, Allocator, Probe};
use super::{unwind, Args};
use crate::host::container::CgroupFilter;
use crate::load::driver::Session;
use crate::load::{attach, setup};
use crate::skel::kmemleak_lite::defs::{MAX_CALL_SITES, STACK_ERROR_SLOTS};
use crate::skel::kmemleak_lite::{KmemleakLiteSkel, OpenKmemleakLiteSkel};

const BPF_F_USER_STACK: u64 = 1 << 8;

fn page_size() -> u64 {
    // SAFETY: sysconf takes a constant and reads no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Opens the skeleton with its tables sized and its constants set from `args`, and only the
/// programs of the mode enabled (see `choose_programs`); also returns whether the kernel has
/// the separate _node tracepoints.
pub(super) fn open_sized(
    session: &Session,
    args: &Args,
    user: bool,
    bulk: bool,
) -> Result<(OpenKmemleakLiteSkel<'static>, bool)> {
    let mut open = session.open::<KmemleakLiteSkel>(&CgroupFilter::default())?;
    let maps = &mut open.maps;
    maps.allocs
        .set_max_entries(args.max_allocs)
        .context("sizing the allocation table")?;
    maps.stack_traces
        .set_max_entries(args.max_stacks)
        .context("sizing the stack table")?;
    // Kernel mode only (user mode leaves them empty: one entry each).
    let (kernel_stacks, call_sites) = match user {
        true => (1, 1),
        false => (args.max_stacks + STACK_ERROR_SLOTS, MAX_CALL_SITES),
    };
    // One entry per stack id, plus the negative errors, plus the call sites recorded without
    // stacks: they can never fill (see the BPF side). Only --combined uses them.
    let combined_entries = match args.combined {
        true => args.max_stacks + STACK_ERROR_SLOTS + call_sites,
        false => 1,
    };
    maps.combined_allocs
        .set_max_entries(combined_entries)
        .context("sizing the per-stack totals")?;
    maps.kstacks
        .set_max_entries(kernel_stacks)
        .context("sizing the per-stack table")?;
    maps.ksites
        .set_max_entries(call_sites)
        .context("sizing the per-call-site table")?;
    let dwarf = user && args.unwind == unwind::UnwindMode::Dwarf;
    if user && !dwarf {
        // Unused: user mode with frame pointers takes every stack.
        maps.site_budgets
            .set_max_entries(1)
            .context("sizing the stack budgets")?;
    }
    // --unwind dwarf: one scratch entry per CPU (the stack copy); frame pointers: no copies.
    let cpus = match dwarf {
        true => libbpf_rs::num_possible_cpus().context("counting the CPUs")? as u32,
        false => 1,
    };
    maps.samples
        .set_max_entries(cpus)
        .context("sizing the stack copies")?;
    maps.pending
        .set_max_entries(args.max_threads)
        .context("sizing the table of calls in progress")?;
    {
        let rodata = setup::rodata(open.maps.rodata_data.as_deref_mut())?;
        rodata.min_size = args.min_size.unwrap_or(0);
        rodata.max_size = args.max_size.unwrap_or(u64::MAX);
        rodata.sample_every = args.sample_rate;
        rodata.combined = args.combined;
        rodata.stack_flags = if user { BPF_F_USER_STACK } else { 0 };
        rodata.stacks_per_second = args.stack_budget();
        rodata.stack_bytes = if dwarf { args.stack_bytes } else { 0 };
        rodata.page_size = page_size();
    }
    let node_tps = choose_programs(&mut open, user, args.pages, bulk);
    Ok((open, node_tps))
}

/// Attaches the kernel-mode programs loaded; returns the links and the tracepoints' names.
pub(super) fn attach_kernel(
    skel: &KmemleakLiteSkel,
    node_tps: bool,
    pages: bool,
    bulk: bool,
) -> Result<(Vec<Link>, String)> {
    let progs = &skel.progs;
    let mut tps = vec![
        ("kmalloc", &progs.kmalloc),
        ("kfree", &progs.kfree),
        ("kmem_cache_alloc", &progs.kmem_cache_alloc),
        ("kmem_cache_free", &progs.kmem_cache_free),
    ];
    if node_tps {
        tps.push(("kmalloc_node", &progs.kmalloc_node));
        tps.push(("kmem_cache_alloc_node", &progs.kmem_cache_alloc_node));
    }
    if pages {
        tps.push(("mm_page_alloc", &progs.mm_page_alloc));
        tps.push(("mm_page_free", &progs.mm_page_free));
        tps.push(("mm_page_free_batched", &progs.mm_page_free_batched));
    }
    let mut links = Vec::new();
    for (name, prog) in &tps {
        links.push(
            prog.attach()
                .with_context(|| format!("attaching to the kmem:{name} tracepoint"))?,
        );
    }
    let mut names: Vec<&str> = tps.iter().map(|(n, _)| *n).collect();
    if bulk {
        links.push(
            progs
                .kmem_cache_free_bulk
                .attach()
                .context("attaching fentry to kmem_cache_free_bulk")?,
        );
        names.push("and fentry on kmem_cache_free_bulk");
    }
    Ok((links, names.join(", ")))
}

/// Loads only the programs of the chosen mode; returns whether the kernel still has the
/// separate kmalloc_node / kmem_cache_alloc_node tracepoints (merged into kmalloc and
/// kmem_cache_alloc in 6.1 and later).
fn choose_programs(open: &mut OpenKmemleakLiteSkel, user: bool, pages: bool, bulk: bool) -> bool {
    let node = !user && attach::tracepoint_exists("kmem/kmalloc_node");
    let p = &mut open.progs;
    for prog in [
        &mut p.kmalloc,
        &mut p.kfree,
        &mut p.kmem_cache_alloc,
        &mut p.kmem_cache_free,
    ] {
        prog.set_autoload(!user);
    }
    p.kmem_cache_free_bulk.set_autoload(!user && bulk);
    p.kmalloc_node.set_autoload(node);
    p.kmem_cache_alloc_node.set_autoload(node);
    p.mm_page_alloc.set_autoload(!user && pages);
    p.mm_page_free.set_autoload(!user && pages);
    p.mm_page_free_batched.set_autoload(!user && pages);
    for prog in [
        &mut p.malloc_enter,
        &mut p.calloc_enter,
        &mut p.realloc_enter,
        &mut p.posix_memalign_enter,
        &mut p.memalign_enter,
        &mut p.valloc_enter,
        &mut p.pvalloc_enter,
        &mut p.mmap_enter,
        &mut p.free_enter,
        &mut p.alloc_exit,
        &mut p.mmap_exit,
        &mut p.realloc_exit,
        &mut p.posix_memalign_exit,
        &mut p.thread_exit,
        &mut p.loader_changed,
    ] {
        prog.set_autoload(user);
    }
    node
}

/// Entry probe and return probe of each allocator function found. Two names at one address
/// (glibc's aligned_alloc is memalign) are probed once.
pub(super) fn attach_allocator(
    skel: &crate::skel::kmemleak_lite::KmemleakLiteSkel,
    pid: u32,
    alloc: &Allocator,
    links: &mut Vec<Link>,
    verbose: bool,
) -> Result<()> {
    let p = &skel.progs;
    links.push(
        p.thread_exit
            .attach()
            .context("attaching to sched_process_exit (to forget threads that end)")?,
    );
    let files = std::iter::once((&alloc.path, &alloc.functions)).chain(
        alloc
            .cxx
            .as_ref()
            .map(|(path, functions)| (path, functions)),
    );
    for (path, functions) in files {
        let mut done: Vec<u64> = Vec::new();
        for &(probe, name, offset) in functions {
            if done.contains(&offset) {
                continue;
            }
            done.push(offset);
            let (entry, ret) = match probe {
                Probe::Malloc | Probe::CxxNew => (&p.malloc_enter, Some(&p.alloc_exit)),
                Probe::Calloc => (&p.calloc_enter, Some(&p.alloc_exit)),
                Probe::Realloc => (&p.realloc_enter, Some(&p.realloc_exit)),
                Probe::PosixMemalign => (&p.posix_memalign_enter, Some(&p.posix_memalign_exit)),
                Probe::AlignedAlloc | Probe::Memalign => (&p.memalign_enter, Some(&p.alloc_exit)),
                Probe::Valloc => (&p.valloc_enter, Some(&p.alloc_exit)),
                Probe::Pvalloc => (&p.pvalloc_enter, Some(&p.alloc_exit)),
                Probe::Mmap => (&p.mmap_enter, Some(&p.mmap_exit)),
                Probe::Free | Probe::Munmap => (&p.free_enter, None),
            };
            let off = offset as usize;
            let attach = |prog: &libbpf_rs::ProgramMut, retprobe: bool| {
                prog.attach_uprobe(retprobe, pid as i32, path, off)
                    .with_context(|| {
                        format!(
                            "attaching a uprobe to {name} in {} (pid {pid})",
                            crate::render::escape::path(path)
                        )
                    })
            };
            // Return probe first: an entry without its return would leave a pending call.
            if let Some(ret) = ret {
                links.push(attach(ret, true)?);
            }
            links.push(attach(entry, false)?);
            if verbose {
                eprintln!(
                    "kmemleak-lite: probing {name} at {:#x} in {}",
                    offset,
                    crate::render::escape::path(path)
                );
            }
        }
    }
    attach_loader(skel, pid, alloc, links, verbose)
}

/// The dynamic loader's hook ([`target::LOADER_HOOK`]), when the program has a dynamic loader:
/// a record each time it maps or unmaps a library, so that the maps are read again then.
fn attach_loader(
    skel: &KmemleakLiteSkel,
    pid: u32,
    alloc: &Allocator,
    links: &mut Vec<Link>,
    verbose: bool,
) -> Result<()> {
    let p = &skel.progs;
    if let Some((path, offset)) = &alloc.loader {
        let shown = crate::render::escape::path(path);
        links.push(
            p.loader_changed
                .attach_uprobe(false, pid as i32, path, *offset as usize)
                .with_context(|| {
                    format!(
                        "attaching a uprobe to {} in {shown} (pid {pid})",
                        target::LOADER_HOOK
                    )
                })?,
        );
        if verbose {
            eprintln!(
                "kmemleak-lite: probing {} at {offset:#x} in {shown}: its maps are read again when it maps a library",
                target::LOADER_HOOK
            );
        }
    }
    Ok(())
}
