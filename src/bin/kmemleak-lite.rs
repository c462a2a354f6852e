//! kmemleak-lite: see `coretrace::tools::kmemleak_lite`.
use coretrace::tools::kmemleak_lite::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("kmemleak-lite", || {
        run(coretrace::cli::parse::<Args>("kmemleak-lite"))
    })
}
