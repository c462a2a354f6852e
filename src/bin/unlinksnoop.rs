//! unlinksnoop: see `coretrace::tools::unlinksnoop`.
use coretrace::tools::unlinksnoop::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("unlinksnoop", || {
        run(coretrace::cli::parse::<Args>("unlinksnoop"))
    })
}
