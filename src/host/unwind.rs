//! User stacks through code built without frame pointers: a copy of the stack's top and the
//! registers, taken by a BPF program, unwound here with the unwind tables every binary carries
//! (.eh_frame, kept even in stripped files because C++ exceptions need it, and .debug_frame), by
//! framehop, which falls back to the frame pointer where a function has no table. Also: whether
//! a program keeps frame pointers (is the kernel's cheaper walk enough?). Used by kmemleak-lite's
//! --unwind dwarf; any tool that copies stacks the same way can use it.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, MayAllocateDuringUnwind, Module, Unwinder as _,
};
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use object::ObjectSegment;
use object::{Object, ObjectSection};

use crate::host::proc_maps::Mapping;

/// A user stack unwound in user space.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Unwound {
    /// The innermost frame first (the instruction pointer copied), then its callers.
    pub frames: Vec<u64>,
    /// The walk needed stack beyond the bytes copied: callers are missing.
    pub cut: bool,
    /// A frame is in no executable mapping given to the unwinder (the process ended, or
    /// unmapped that code, before its maps were read; or its file was deleted): the walk could
    /// not go on past it, and it cannot be named.
    pub unmapped: bool,
}

/// The most frames kept of one stack (as the kernel's stack table: PERF_MAX_STACK_DEPTH).
const MAX_FRAMES: usize = 127;

/// Whether this architecture has an unwinder: framehop's, for x86-64 and arm64. Elsewhere a copy
/// unwinds to its first frame alone (kmemleak-lite refuses --unwind dwarf there).
pub const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// framehop's unwinder for one process: its executable mappings and their unwind tables.
pub struct Unwinder {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    unwinder: framehop::UnwinderNative<Vec<u8>, MayAllocateDuringUnwind>,
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    cache: framehop::CacheNative<MayAllocateDuringUnwind>,
    /// Executable mappings given to the unwinder: start -> (file, end).
    modules: BTreeMap<u64, (PathBuf, u64)>,
}

impl Default for Unwinder {
    fn default() -> Self {
        Unwinder {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            unwinder: framehop::UnwinderNative::new(),
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            cache: framehop::CacheNative::new(),
            modules: BTreeMap::new(),
        }
    }
}

impl Unwinder {
    /// Unwinds a copy of a stack: `regs` (ip, sp, frame pointer, arm64's link register) and
    /// `data`, the stack's bytes from sp up; `ended`: the copy reaches the end of the stack
    /// (a walk that wants more is then complete, not cut). Call [`Unwinder::sync_modules`]
    /// first.
    pub fn unwind(&mut self, regs: [u64; 4], data: &[u8], ended: bool) -> Unwound {
        let (mut frames, complete, beyond) = self.walk(regs, data);
        // Past code in no known mapping the walk guessed (framehop falls back to the frame
        // pointer, which such code need not keep): keep that frame, drop the guesses.
        let unknown = frames.iter().position(|&a| !self.in_module(a));
        if let Some(i) = unknown {
            frames.truncate(i + 1);
        }
        // Cut: the walk wanted what was not copied, and the copy had stopped at --stack-bytes,
        // not at the end of the stack; or the stack is deeper than the frames kept.
        let cut =
            unknown.is_none() && ((!complete && beyond && !ended) || frames.len() >= MAX_FRAMES);
        let unmapped = unknown.is_some();
        Unwound {
            frames,
            cut,
            unmapped,
        }
    }

    /// framehop's walk: the frames, whether it ended where the stack does, and whether it
    /// wanted bytes beyond the copy.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn walk(&mut self, regs: [u64; 4], data: &[u8]) -> (Vec<u64>, bool, bool) {
        let sp = regs[1];
        let mut beyond = false;
        let mut read = |addr: u64| -> Result<u64, ()> {
            let off = addr.checked_sub(sp).ok_or(())? as usize;
            match data.get(off..off + 8) {
                Some(b) => Ok(u64::from_ne_bytes(b.try_into().unwrap())),
                None => {
                    beyond |= off >= data.len();
                    Err(())
                }
            }
        };
        let mut frames = Vec::new();
        let mut iter =
            self.unwinder
                .iter_frames(regs[0], native_regs(regs), &mut self.cache, &mut read);
        let mut complete = false;
        while frames.len() < MAX_FRAMES {
            match iter.next() {
                Ok(Some(FrameAddress::InstructionPointer(a))) => frames.push(a),
                Ok(Some(FrameAddress::ReturnAddress(a))) => frames.push(a.get()),
                Ok(None) => {
                    complete = true;
                    break;
                }
                Err(_) => break,
            }
        }
        (frames, complete, beyond)
    }

    /// No unwinder here: the first frame alone.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn walk(&mut self, regs: [u64; 4], _data: &[u8]) -> (Vec<u64>, bool, bool) {
        (vec![regs[0]], true, false)
    }

    /// Gives the unwinder every executable file mapping it does not have yet (and takes back
    /// those gone).
    pub fn sync_modules(&mut self, maps: &[Mapping]) {
        let live: HashSet<u64> = maps
            .iter()
            .filter(|m| m.executable())
            .map(|m| m.start)
            .collect();
        let gone: Vec<u64> = self
            .modules
            .keys()
            .filter(|s| !live.contains(s))
            .copied()
            .collect();
        for start in gone {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            self.unwinder.remove_module(start);
            self.modules.remove(&start);
        }
        for m in maps.iter().filter(|m| m.executable()) {
            if self
                .modules
                .get(&m.start)
                .is_some_and(|(p, _)| p == &m.path)
            {
                continue;
            }
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            if let Some(module) = module_of(m) {
                self.unwinder.add_module(module);
            }
            // Remembered even without tables: framehop walks its frame pointers.
            self.modules.insert(m.start, (m.path.clone(), m.end));
        }
    }

    /// Whether `addr` is in an executable mapping given to [`Unwinder::sync_modules`].
    fn in_module(&self, addr: u64) -> bool {
        self.modules
            .range(..=addr)
            .next_back()
            .is_some_and(|(_, &(_, end))| addr < end)
    }
}

/// A stack_sample record (src/bpf/user_stack.bpf.h), read from its bytes.
pub struct Sample<'a> {
    /// The tool's tag for the copy.
    pub seq: u64,
    /// ip, sp, frame pointer, arm64's link register.
    pub regs: [u64; 4],
    /// The stack's bytes from sp up.
    pub data: &'a [u8],
    /// The copy reaches the end of the stack's mapping: nothing was cut.
    pub ended: bool,
}

impl<'a> Sample<'a> {
    /// The bytes of a record before its copy of the stack.
    pub const HEADER: usize = 56;

    /// Reads a record; None if it is too short to be one.
    pub fn parse(record: &'a [u8]) -> Option<Sample<'a>> {
        let word = |i: usize| u64::from_ne_bytes(record[i * 8..i * 8 + 8].try_into().unwrap());
        if record.len() < Self::HEADER {
            return None;
        }
        let len = u32::from_ne_bytes(record[48..52].try_into().unwrap()) as usize;
        let flags = u32::from_ne_bytes(record[52..56].try_into().unwrap());
        Some(Sample {
            seq: word(1),
            regs: [word(2), word(3), word(4), word(5)],
            data: &record[Self::HEADER..(Self::HEADER + len).min(record.len())],
            ended: flags & crate::skel::user_stack::SAMPLE_STACK_END != 0,
        })
    }
}

/// --stack-bytes' default: a copy of the stack's top 16 KiB covers the stacks of deep servers
/// (a C++ request path of 40 frames uses 2-5 KiB); what is deeper is marked cut.
pub const DEFAULT_STACK_BYTES: u32 = 16384;

/// --stack-bytes: a whole number of bytes from 1024 to the most a record carries.
pub fn parse_stack_bytes(s: &str) -> Result<u32, String> {
    let max = crate::skel::user_stack::MAX_STACK_BYTES;
    match s.parse::<u32>() {
        Ok(n) if (1024..=max).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a number of bytes from 1024 to {max}")),
    }
}

#[cfg(target_arch = "x86_64")]
fn native_regs(regs: [u64; 4]) -> framehop::UnwindRegsNative {
    framehop::x86_64::UnwindRegsX86_64::new(regs[0], regs[1], regs[2])
}

#[cfg(target_arch = "aarch64")]
fn native_regs(regs: [u64; 4]) -> framehop::UnwindRegsNative {
    framehop::aarch64::UnwindRegsAarch64::new(regs[3], regs[1], regs[2])
}

/// framehop's view of one executable mapping: where its file is loaded and its unwind
/// sections (copied: .eh_frame is small beside the code it describes).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn module_of(m: &Mapping) -> Option<Module<Vec<u8>>> {
    let file = File::open(&m.path).ok()?;
    // SAFETY: a read-only private map; a file changed under it gives wrong tables at worst,
    // which the unwinder survives (it checks every read against the copied stack).
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let elf = object::File::parse(&*map).ok()?;
    let bias = load_bias(&elf, m)?;
    let section = |name: &str| elf.section_by_name(name);
    let range = |name: &str| section(name).map(|s| s.address()..s.address() + s.size());
    let data = |name: &str| {
        section(name)
            .and_then(|s| s.data().ok())
            .map(<[u8]>::to_vec)
    };
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: range(".text"),
        got_svma: range(".got"),
        eh_frame_svma: range(".eh_frame"),
        eh_frame: data(".eh_frame"),
        eh_frame_hdr_svma: range(".eh_frame_hdr"),
        eh_frame_hdr: data(".eh_frame_hdr"),
        debug_frame: data(".debug_frame"),
        ..Default::default()
    };
    let name = m.path.to_string_lossy().into_owned();
    Some(Module::new(name, m.start..m.end, bias, info))
}

/// Where the file's addresses are in the process: the mapping's start less the address the
/// file gives the byte mapped there (0 for a non-PIE executable). A segment need not start on a
/// page (lld's do not): its mapping starts at the page that holds its first byte, which the
/// segment before may share; the executable segment is the one an executable mapping maps.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn load_bias(elf: &object::File, m: &Mapping) -> Option<u64> {
    const PAGE: u64 = 4096;
    let executable = |seg: &object::Segment| matches!(seg.flags(), object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0);
    let mut segments: Vec<_> = elf.segments().collect();
    segments.sort_by_key(|seg| !executable(seg));
    segments.iter().find_map(|seg| {
        let (off, size) = seg.file_range();
        let page_off = off & !(PAGE - 1);
        let page_addr = seg.address() - (off - page_off);
        (page_off <= m.offset && m.offset < off + size.max(1))
            .then(|| m.start.wrapping_sub(page_addr + (m.offset - page_off)))
    })
}

/// Whether the functions of the ELF file at `path` set up frame pointers: at least 90% of up to
/// 256 of them, spread over its symbol table (a program built with -fno-omit-frame-pointer
/// has them all, but for a few of the C runtime's; a Rust program built without them shows
/// the frame pointers of its precompiled standard library only). None when that cannot be
/// told.
pub fn has_frame_pointers(path: &Path) -> Option<bool> {
    const CRT: &[&str] = &["deregister_tm_clones", "register_tm_clones", "frame_dummy"];
    let elf = crate::host::elf_symbols::read(path).ok()?;
    let file = File::open(path).ok()?;
    let functions: Vec<_> = elf
        .functions
        .iter()
        .filter(|f| f.size >= 16 && !f.name.starts_with('_') && !CRT.contains(&f.name.as_str()))
        .collect();
    let step = functions.len().div_ceil(256).max(1);
    let (mut checked, mut with) = (0u32, 0u32);
    for f in functions.iter().step_by(step) {
        let mut head = [0u8; 16];
        if std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, f.offset).is_err() {
            continue;
        }
        checked += 1;
        with += sets_frame_pointer(&head) as u32;
    }
    (checked > 0).then_some(with * 10 >= checked * 9)
}

/// Whether a function starting with `head` saves the caller's frame pointer and sets its own:
/// x86-64 `push %rbp; mov %rsp,%rbp` (after an endbr64), arm64 `stp x29, x30, [sp, #-N]!`
/// (after BTI/PAC hints).
fn sets_frame_pointer(head: &[u8; 16]) -> bool {
    if cfg!(target_arch = "aarch64") {
        let insns = head
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()));
        for insn in insns {
            if insn & 0xffff_f01f == 0xd503_201f {
                continue; // a hint (bti, paciasp)
            }
            return insn & 0xffc0_7fff == 0xa980_7bfd;
        }
        return false;
    }
    let code = head.strip_prefix(&[0xf3, 0x0f, 0x1e, 0xfa]).unwrap_or(head);
    code.starts_with(&[0x55, 0x48, 0x89, 0xe5])
}

/// Whether the ELF file needs libstdc++ (a C++ program: its std::string and containers
/// allocate through libstdc++, which Debian builds without frame pointers).
pub fn needs_libstdcxx(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    // SAFETY: read-only map of a file only read here.
    let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else {
        return false;
    };
    let Ok(elf) = object::File::parse(&*map) else {
        return false;
    };
    elf.section_by_name(".dynstr")
        .and_then(|s| s.data().ok())
        .is_some_and(|d| d.windows(12).any(|w| w == b"libstdc++.so"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_pointer_prologues_are_recognised() {
        let mut head = [0u8; 16];
        if cfg!(target_arch = "x86_64") {
            head[..8].copy_from_slice(&[0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5]);
            assert!(sets_frame_pointer(&head));
            head[..4].copy_from_slice(&[0x41, 0x57, 0x41, 0x56]); // push r15; push r14
            assert!(!sets_frame_pointer(&head));
        }
    }
}
