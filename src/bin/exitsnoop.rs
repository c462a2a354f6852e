//! exitsnoop: see `coretrace::tools::exitsnoop`.
use coretrace::tools::exitsnoop::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("exitsnoop", || {
        run(coretrace::cli::parse::<Args>("exitsnoop"))
    })
}
