use clap::Parser;
use coretrace::tools::uprobe_lat::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("uprobe-lat", || run(Args::parse()))
}
