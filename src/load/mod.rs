//! Loading a tool's BPF side (the skeletons are in [`crate::skel`]): which BTF CO-RE relocates
//! against ([`btf`]), what the host must allow ([`needs`]: privileges, tracefs, uprobes), the
//! set-up around loading ([`setup`]: libbpf's log, `.rodata`, load errors), the choice of how each hook attaches on the running kernel ([`attach`]), and
//! the one sequence every tool runs them in, from open to consuming events ([`driver`]).

pub mod attach;
pub mod btf;
pub mod check;
pub mod driver;
pub mod needs;
pub mod setup;
