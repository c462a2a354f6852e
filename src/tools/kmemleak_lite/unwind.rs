//! User mode's stacks through code built without frame pointers (--unwind dwarf): the BPF
//! program copies the registers and the top of the user stack at the allocator's return
//! (user_stack.bpf.h, stack_sample); here they are unwound (host::unwind) and numbered. Each
//! allocation keeps its sample's id; the report asks for its stack here. And which walk
//! --unwind auto picks for a program.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{command, Args};
use crate::host::proc_maps::Mapping;
pub use crate::host::unwind::{parse_stack_bytes, DEFAULT_STACK_BYTES};
use crate::host::unwind::{has_frame_pointers, needs_libstdcxx, Sample, Unwinder, Unwound};
use crate::skel::kmemleak_lite::defs;

/// The user-mode stack ids (kmemleak_lite.h), as the report's i64 stack ids.
const STACK_ID_SAMPLE: i64 = defs::STACK_ID_SAMPLE as i64;
const STACK_ID_USER_SITE: i64 = defs::STACK_ID_USER_SITE as i64;
const USER_SITE_LOST: i64 = defs::USER_SITE_LOST as i64;
const SAMPLE_SEQ_MASK: i64 = USER_SITE_LOST - 1;

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
            .then_some(UserId::Sample((stack_id & SAMPLE_SEQ_MASK) as u64))
    }
}

/// The samples received and the stacks they unwound to.
pub struct Stacks {
    unwinder: Unwinder,
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
            unwinder: Unwinder::default(),
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
        record.len() >= Sample::HEADER
    }

    /// Unwinds one stack_sample record with the process's mappings `maps`.
    pub fn add(&mut self, record: &[u8], maps: &[Mapping]) {
        let Some(sample) = Sample::parse(record) else {
            return;
        };
        let seq = sample.seq & SAMPLE_SEQ_MASK as u64;
        self.unwinder.sync_modules(maps);
        let stack = self.unwinder.unwind(sample.regs, sample.data, sample.ended);
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

/// What --unwind auto picks for a program: dwarf when it lacks frame pointers or is C++ (its
/// allocations pass through libstdc++), fp otherwise; and why, for -v.
pub fn choose(mode: UnwindMode, exe: &Path) -> (UnwindMode, String) {
    let shown = crate::render::escape::path(exe);
    match mode {
        UnwindMode::Auto if !crate::host::unwind::SUPPORTED => {
            return (UnwindMode::Fp, "no unwinder for this architecture".into())
        }
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

/// User mode: turns --unwind auto into fp or dwarf, from the program (the report and .rodata
/// read `args.unwind`), says which with -v, and refuses what the walk cannot do.
pub fn settle(args: &mut Args) -> Result<()> {
    let exe = match (args.pid, &args.command) {
        (Some(pid), _) => PathBuf::from(format!("/proc/{pid}/exe")),
        (None, Some(line)) => command::resolve_program(&command::split_command(line)?[0])?,
        (None, None) => PathBuf::new(),
    };
    let (chosen, why) = match (args.unwind, args.combined) {
        // --combined's totals are kept by kernel stack id.
        (UnwindMode::Auto, true) => (
            UnwindMode::Fp,
            "--combined keeps totals by kernel stack id".to_string(),
        ),
        (m, _) => choose(m, &exe),
    };
    check_combined(chosen, args.combined)?;
    if chosen == UnwindMode::Dwarf && !crate::host::unwind::SUPPORTED {
        bail!("--unwind dwarf has no unwinder on this architecture (x86-64 and arm64 only): use --unwind fp");
    }
    if args.stacks_per_second.is_some() && chosen != UnwindMode::Dwarf {
        bail!("--stacks-per-second is for kernel mode and --unwind dwarf (with frame pointers user mode takes every stack): leave it out, or add --unwind dwarf");
    }
    if args.common.verbose {
        let how = match chosen {
            UnwindMode::Dwarf => format!(
                "with the binaries' unwind tables (.eh_frame), from {} bytes of stack",
                args.stack_bytes
            ),
            _ => "with frame pointers".to_string(),
        };
        eprintln!("kmemleak-lite: user stacks are walked {how}: {why}");
    }
    args.unwind = chosen;
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
    fn stack_bytes_are_bounded() {
        assert_eq!(parse_stack_bytes("16384"), Ok(16384));
        assert!(parse_stack_bytes("100").is_err());
        assert!(parse_stack_bytes("1000000").is_err());
        assert!(parse_stack_bytes("x").is_err());
    }
}
