//! What tools read off the machine, outside BPF: which container a cgroup belongs to
//! ([`container`]), what a process maps ([`proc_maps`]), and small questions about the running
//! system such as whether a process is alive or where `$PATH` finds a command ([`system`]).

pub mod container;
pub mod proc_maps;
pub mod system;
