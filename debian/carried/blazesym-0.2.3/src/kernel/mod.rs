#[cfg(feature = "bpf")]
mod bpf;
mod cache;
mod kaslr;
mod ksym;
mod resolver;

/// The path to the `/proc/kallsyms` file.
const KALLSYMS: &str = "/proc/kallsyms";

pub(crate) use cache::KernelCache;
pub(crate) use resolver::KernelResolver;
