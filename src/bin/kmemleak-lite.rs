//! kmemleak-lite: see `coretrace::tools::kmemleak_lite`.
use coretrace::tools::kmemleak_lite::{run, Args, REFUSED};

fn main() -> std::process::ExitCode {
    let args = coretrace::cli::parse_refusing::<Args>("kmemleak-lite", REFUSED);
    // With -c, the command's status, as a shell would give it; an error of the tool's own wins.
    let mut status = 0u8;
    let code = coretrace::cli::main_with("kmemleak-lite", || {
        status = run(args)?;
        Ok(())
    });
    if status != 0 {
        std::process::ExitCode::from(status)
    } else {
        code
    }
}
