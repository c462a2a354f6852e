//! coretrace: CO-RE eBPF tracing tools. Each tool is a BPF program in `src/bpf/` plus a module in
//! `src/tools/`; they share the ring-buffer consumer (`ringbuf`), the sinks (`output`), the
//! command-line conventions (`cli`) and the set-up around loading (`setup`).

pub mod attach;
pub mod cli;
pub mod clock;
pub mod container;
pub mod driver;
pub mod errno;
pub mod escape;
pub mod exit_status;
pub mod multicall;
pub mod output;
pub mod proc_maps;
pub mod ringbuf;
pub mod setup;
pub mod skel;
pub mod system;
pub mod tools;
