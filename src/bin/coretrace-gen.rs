//! For packagers: writes every tool's man page and shell completions.
//!
//!   coretrace-gen man DIR                    -> DIR/execsnoop.8, ...
//!   coretrace-gen completions SHELL DIR      -> bash, zsh, fish, elvish or powershell files

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap_complete::Shell;

fn main() -> std::process::ExitCode {
    coretrace::cli::main_with("coretrace-gen", run)
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["man", dir] => man(PathBuf::from(dir)),
        ["completions", shell, dir] => {
            let shell: Shell = shell.parse().map_err(|_| {
                anyhow::anyhow!(
                    "unknown shell '{shell}': use bash, zsh, fish, elvish or powershell"
                )
            })?;
            completions(shell, PathBuf::from(dir))
        }
        _ => bail!("usage: coretrace-gen man DIR | coretrace-gen completions SHELL DIR"),
    }
}

fn man(dir: PathBuf) -> Result<()> {
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for cmd in coretrace::tools::commands() {
        let path = dir.join(format!("{}.8", cmd.get_name()));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).section("8").render(&mut page)?;
        fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn completions(shell: Shell, dir: PathBuf) -> Result<()> {
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for mut cmd in coretrace::tools::commands() {
        let name = cmd.get_name().to_string();
        let path = clap_complete::generate_to(shell, &mut cmd, name, &dir)?;
        println!("{}", path.display());
    }
    Ok(())
}
