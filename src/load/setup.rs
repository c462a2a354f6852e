//! What every tool does around loading its BPF programs: route libbpf's log, reach a skeleton's
//! `.rodata`, and explain a refused load.

use anyhow::{Context, Result};
use libbpf_rs::PrintLevel;

/// libbpf's own messages go to stderr with `-v`, and nowhere otherwise (a failed probe of an
/// attach method is expected, not news; errors reach the user through our own message).
pub fn libbpf_log(verbose: bool) {
    fn print(level: PrintLevel, msg: String) {
        let tag = match level {
            PrintLevel::Warn => "warn",
            PrintLevel::Info => "info",
            PrintLevel::Debug => "debug",
        };
        eprint!("libbpf {tag}: {msg}");
    }
    if verbose {
        libbpf_rs::set_print(Some((PrintLevel::Debug, print)));
    } else {
        libbpf_rs::set_print(None);
    }
}

/// A loading failure, explained: what failed, and where to look.
pub fn load_error(e: libbpf_rs::Error) -> anyhow::Error {
    // A BTF file of another kernel (or none at all) makes CO-RE relocations fail.
    let btf = match super::btf::custom_btf() {
        Some(path) => format!("; is {} the running kernel's BTF?", path.display()),
        None => String::new(),
    };
    anyhow::anyhow!("loading the BPF programs failed: {e} (run with -v to see libbpf's log{btf})")
}

/// A skeleton's `.rodata` (the constants set before load), or an error if the object has none.
pub fn rodata<T>(data: Option<&mut T>) -> Result<&mut T> {
    data.context("the BPF object has no .rodata section")
}
