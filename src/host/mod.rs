//! What tools read off the machine, outside BPF: which container a cgroup belongs to
//! ([`container`]), what a process maps ([`proc_maps`]), which functions an ELF file defines
//! ([`elf_symbols`]: uprobe-lat's targets, kmemleak-lite's allocators), and small questions about the running
//! system such as whether a process is alive or where `$PATH` finds a command ([`system`]); user
//! stacks unwound from a copy with the binaries' unwind tables ([`unwind`]) and their frames
//! named ([`symbols`]).

pub mod cgroupfs;
pub mod container;
pub mod elf_symbols;
pub mod proc_maps;
pub mod symbols;
pub mod system;
pub mod unwind;
