//! execsnoop: see `coretrace::tools::execsnoop`.
use coretrace::tools::execsnoop::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("execsnoop", || {
        run(coretrace::cli::parse::<Args>("execsnoop"))
    })
}
