use clap::Parser;
use coretrace::tools::kmemleak_lite::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("kmemleak-lite", || run(Args::parse()))
}
