//! User mode's stacks through code built without frame pointers (--unwind dwarf): the BPF
//! program copies the registers and the top of the user stack at the allocator's return
//! (kmemleak_lite.h, stack_sample); here they are unwound with the unwind tables every binary
//! carries (.eh_frame, kept even in stripped files because C++ exceptions need it, and
//! .debug_frame), by framehop, which falls back to the frame pointer where a function has no
//! table. Each allocation keeps its sample's id; the report asks for its stack here.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, MayAllocateDuringUnwind, Module, Unwinder,
};
use object::{Object, ObjectSection, ObjectSegment};

use crate::host::proc_maps::Mapping;
use crate::load::skel::kmemleak_lite::defs;

/// The user-mode stack ids (kmemleak_lite.h), as the report's i64 stack ids.
const STACK_ID_SAMPLE: i64 = defs::STACK_ID_SAMPLE as i64;
const STACK_ID_USER_SITE: i64 = defs::STACK_ID_USER_SITE as i64;
const USER_SITE_LOST: i64 = defs::USER_SITE_LOST as i64;
const SAMPLE_SEQ_MASK: i64 = USER_SITE_LOST - 1;
const SAMPLE_STACK_END: u32 = defs::SAMPLE_STACK_END as u32;

/// How user stacks are walked (--unwind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UnwindMode {
    /// Frame pointers, walked in the kernel (cheapest; stops at the first function without one)
    Fp,
    /// The binaries' unwind tables (.eh_frame, .debug_frame), from a copy of the stack's top
    Dwarf,
    /// dwarf where the program or its C++ runtime lacks frame pointers, else fp
    Auto,
}

/// How one stack in the report was walked (JSON `unwind`).
pub const FP: &str = "fp";
pub const DWARF: &str = "dwarf";

/// The most frames kept of one stack (as the kernel's stack table: PERF_MAX_STACK_DEPTH).
const MAX_FRAMES: usize = 127;

/// --stack-bytes' default: a copy of the stack's top 16 KiB covers the allocation stacks of
/// deep servers (a C++ request path of 40 frames uses 2-5 KiB); what is deeper is marked cut.
pub const DEFAULT_STACK_BYTES: u32 = 16384;

/// The bytes of a record before its copy of the stack (struct stack_sample).
const HEADER: usize = 56;

/// A user stack unwound in user space.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Unwound {
    /// The allocator's caller first (the return address the uretprobe saw), then its callers.
    pub frames: Vec<u64>,
    /// The walk needed stack beyond the bytes copied (--stack-bytes): callers are missing.
    pub cut: bool,
}

/// What a user-mode stack id stands for, beside a kernel stack table id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserId {
    /// A stack copied and sent to user space: its sample number.
    Sample(u64),
    /// Counted under its call site (the return address): over --stacks-per-second, or its
    /// copy was lost (`lost`).
    Site { addr: u64, lost: bool },
}

impl UserId {
    pub fn of(stack_id: i64) -> Option<UserId> {
        if stack_id < 0 {
            return None; // a kernel call site, or bpf_get_stackid's error
        }
        if stack_id & STACK_ID_USER_SITE != 0 {
            let lost = stack_id & USER_SITE_LOST != 0;
            let addr = (stack_id & !(STACK_ID_USER_SITE | USER_SITE_LOST)) as u64;
            return Some(UserId::Site { addr, lost });
        }
        (stack_id & STACK_ID_SAMPLE != 0)
            .then(|| UserId::Sample((stack_id & SAMPLE_SEQ_MASK) as u64))
    }
}

/// The samples received and the stacks they unwound to.
pub struct Stacks {
    unwinder: framehop::UnwinderNative<Vec<u8>, MayAllocateDuringUnwind>,
    cache: framehop::CacheNative<MayAllocateDuringUnwind>,
    /// Executable mappings given to the unwinder: start -> file.
    modules: HashMap<u64, PathBuf>,
    /// Sample number -> its stack's number in `stacks`, and the report round it came in.
    samples: HashMap<u64, (u64, u64)>,
    round: u64,
    stacks: HashMap<u64, Unwound>,
    numbers: HashMap<Unwound, u64>,
    next: u64,
    /// --stack-bytes (said beside a cut stack).
    pub stack_bytes: u32,
}

impl Stacks {
    pub fn new(stack_bytes: u32) -> Self {
        Stacks {
            unwinder: framehop::UnwinderNative::new(),
            cache: framehop::CacheNative::new(),
            modules: HashMap::new(),
            samples: HashMap::new(),
            round: 0,
            stacks: HashMap::new(),
            numbers: HashMap::new(),
            next: 0,
            stack_bytes,
        }
    }

    /// Whether a record is a stack sample (the other records, the loader's wake-ups, are 8
    /// bytes).
    pub fn is_sample(record: &[u8]) -> bool {
        record.len() >= HEADER
    }

    /// Unwinds one stack_sample record with the process's mappings `maps`.
    pub fn add(&mut self, record: &[u8], maps: &[Mapping]) {
        let word = |i: usize| u64::from_ne_bytes(record[i * 8..i * 8 + 8].try_into().unwrap());
        let (seq, regs) = (
            word(1) & SAMPLE_SEQ_MASK as u64,
            [word(2), word(3), word(4), word(5)],
        );
        let len = u32::from_ne_bytes(record[48..52].try_into().unwrap()) as usize;
        let flags = u32::from_ne_bytes(record[52..56].try_into().unwrap());
        let data = &record[HEADER..(HEADER + len).min(record.len())];
        self.sync_modules(maps);
        let ended = flags & SAMPLE_STACK_END != 0;
        let stack = self.unwind(regs, data, ended);
        let number = match self.numbers.get(&stack) {
            Some(&n) => n,
            None => {
                let n = self.next;
                self.next += 1;
                self.numbers.insert(stack.clone(), n);
                self.stacks.insert(n, stack);
                n
            }
        };
        self.samples.insert(seq, (number, self.round));
    }

    fn unwind(&mut self, regs: [u64; 4], data: &[u8], ended: bool) -> Unwound {
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
        // Cut: the walk wanted what was not copied, and the copy had stopped at --stack-bytes,
        // not at the end of the stack; or the stack is deeper than the frames kept.
        let cut = (!complete && beyond && !ended) || frames.len() >= MAX_FRAMES;
        Unwound { frames, cut }
    }

    /// Gives the unwinder every executable file mapping it does not have yet (and takes back
    /// those gone).
    fn sync_modules(&mut self, maps: &[Mapping]) {
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
            self.unwinder.remove_module(start);
            self.modules.remove(&start);
        }
        for m in maps.iter().filter(|m| m.executable()) {
            if self.modules.get(&m.start) == Some(&m.path) {
                continue;
            }
            if let Some(module) = module_of(m) {
                self.unwinder.add_module(module);
            }
            // Remembered even without tables: framehop walks its frame pointers.
            self.modules.insert(m.start, m.path.clone());
        }
    }

    /// The stack id the report totals an allocation under: a sample's stack (samples that
    /// unwound alike share it), else the id as it is.
    pub fn canonical(&self, stack_id: i64) -> i64 {
        match UserId::of(stack_id) {
            Some(UserId::Sample(seq)) => match self.samples.get(&seq) {
                Some(&(n, _)) => STACK_ID_SAMPLE | n as i64,
                None => stack_id,
            },
            _ => stack_id,
        }
    }

    /// The stack of a canonical id.
    pub fn stack(&self, canonical: i64) -> Option<&Unwound> {
        match UserId::of(canonical) {
            Some(UserId::Sample(n)) => self.stacks.get(&n),
            _ => None,
        }
    }

    /// Keeps only the samples of allocations still outstanding (`live`: their raw stack ids)
    /// and the stacks they use: memory stays bounded by the table of allocations. Samples that
    /// came since the last call stay too: the BPF side sends the copy before it lists the
    /// allocation, which may not have been listed yet when the table was read.
    pub fn retain(&mut self, live: &HashSet<i64>) {
        let seqs: HashSet<u64> = live
            .iter()
            .filter_map(|&id| match UserId::of(id) {
                Some(UserId::Sample(seq)) => Some(seq),
                _ => None,
            })
            .collect();
        let round = self.round;
        self.samples
            .retain(|seq, (_, came)| seqs.contains(seq) || *came == round);
        self.round += 1;
        let used: HashSet<u64> = self.samples.values().map(|&(n, _)| n).collect();
        self.stacks.retain(|n, _| used.contains(n));
        self.numbers.retain(|_, n| used.contains(n));
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

/// --stack-bytes: a whole number of bytes from 1024 to the most a record carries.
pub fn parse_stack_bytes(s: &str) -> Result<u32, String> {
    let max = defs::MAX_STACK_BYTES as u32;
    match s.parse::<u32>() {
        Ok(n) if (1024..=max).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a number of bytes from 1024 to {max}")),
    }
}

/// Whether the ELF file needs libstdc++ (a C++ program: its std::string and containers
/// allocate through libstdc++, which Debian builds without frame pointers).
fn needs_libstdcxx(path: &Path) -> bool {
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

/// What --unwind auto picks for a program: dwarf when it lacks frame pointers or is C++ (its
/// allocations pass through libstdc++), fp otherwise; and why, for -v.
pub fn choose(mode: UnwindMode, exe: &Path) -> (UnwindMode, String) {
    let shown = crate::render::escape::path(exe);
    match mode {
        UnwindMode::Auto => {}
        m => return (m, "as asked (--unwind)".into()),
    }
    if needs_libstdcxx(exe) {
        return (
            UnwindMode::Dwarf,
            format!("{shown} uses libstdc++, built without frame pointers"),
        );
    }
    match has_frame_pointers(exe) {
        Some(true) => (UnwindMode::Fp, format!("{shown} keeps frame pointers")),
        Some(false) => (UnwindMode::Dwarf, format!("{shown} has no frame pointers")),
        None => (
            UnwindMode::Dwarf,
            format!("frame pointers in {shown} cannot be told"),
        ),
    }
}

/// --combined keeps its totals in the kernel by stack id, which needs stacks the kernel can
/// name: refused with dwarf.
pub fn check_combined(mode: UnwindMode, combined: bool) -> Result<()> {
    if combined && mode == UnwindMode::Dwarf {
        bail!("--combined keeps totals per kernel stack id, which --unwind dwarf does not use: leave out --combined, or use --unwind fp");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_carry_samples_and_call_sites() {
        let site = STACK_ID_USER_SITE | 0x5555_1234;
        assert_eq!(
            UserId::of(site),
            Some(UserId::Site {
                addr: 0x5555_1234,
                lost: false
            })
        );
        assert_eq!(
            UserId::of(site | USER_SITE_LOST),
            Some(UserId::Site {
                addr: 0x5555_1234,
                lost: true
            })
        );
        assert_eq!(UserId::of(STACK_ID_SAMPLE | 77), Some(UserId::Sample(77)));
        // Kernel stack table ids and errors are neither.
        assert_eq!(UserId::of(5), None);
        assert_eq!(UserId::of(-17), None);
    }

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

    #[test]
    fn stack_bytes_are_bounded() {
        assert_eq!(parse_stack_bytes("16384"), Ok(16384));
        assert!(parse_stack_bytes("100").is_err());
        assert!(parse_stack_bytes("1000000").is_err());
        assert!(parse_stack_bytes("x").is_err());
    }
}
