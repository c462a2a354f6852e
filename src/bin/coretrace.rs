//! coretrace: every tool in one binary; see `coretrace::cli::multicall`.

fn main() -> std::process::ExitCode {
    coretrace::cli::multicall::main()
}
