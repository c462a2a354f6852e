use clap::Parser;
use coretrace::tools::exitsnoop::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("exitsnoop", || run(Args::parse()))
}
