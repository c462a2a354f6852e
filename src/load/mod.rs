//! Loading a tool's BPF side: the generated skeletons ([`skel`]), the checks and set-up every
//! tool does around loading them ([`setup`]: privileges, BTF, libbpf's log, ring-buffer size,
//! cgroup filter), the choice of how each hook attaches on the running kernel ([`attach`]), and
//! the one sequence every tool runs them in, from open to consuming events ([`driver`]).

pub mod attach;
pub mod btf;
pub mod driver;
pub mod needs;
pub mod setup;
pub mod skel;
