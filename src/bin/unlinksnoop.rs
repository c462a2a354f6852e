use clap::Parser;
use coretrace::tools::unlinksnoop::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("unlinksnoop", || run(Args::parse()))
}
