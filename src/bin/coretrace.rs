//! coretrace: every tool in one binary; see `coretrace::multicall`.

fn main() -> std::process::ExitCode {
    coretrace::multicall::main()
}
