use clap::Parser;
use coretrace::tools::execsnoop::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("execsnoop", || run(Args::parse()))
}
