//! Loading a tool's BPF side: the generated skeletons ([`skel`]), the checks and set-up every
//! tool does around loading them ([`setup`]: privileges, BTF, libbpf's log, ring-buffer size,
//! cgroup filter), and the choice of how each hook attaches on the running kernel ([`attach`]).

pub mod attach;
pub mod setup;
pub mod skel;
