//! uprobe-lat: see `coretrace::tools::uprobe_lat`.
use coretrace::tools::uprobe_lat::{run, Args};

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("uprobe-lat", || {
        run(coretrace::cli::parse::<Args>("uprobe-lat"))
    })
}
