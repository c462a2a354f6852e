//! Compiles every `src/bpf/<tool>.bpf.c` with clang and generates its Rust skeleton into
//! `$OUT_DIR/<tool>.skel.rs` (libbpf-cargo), which `src/skel.rs` includes.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use libbpf_cargo::SkeletonBuilder;

const BPF_DIR: &str = "src/bpf";

fn main() {
    commit();
    println!("cargo:rerun-if-changed={BPF_DIR}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = env::var_os("CLANG").unwrap_or_else(|| "clang".into());
    if Command::new(&clang).arg("--version").output().is_err() {
        fail(&format!(
            "cannot run clang ({}): install it with `apt-get install clang`, or point $CLANG at one",
            Path::new(&clang).display()
        ));
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok("riscv64") => "riscv",
        Ok("s390x") => "s390",
        Ok(other) => fail(&format!("no BPF target arch for {other}")),
        Err(_) => "x86",
    };

    let mut sources: Vec<PathBuf> = std::fs::read_dir(BPF_DIR)
        .unwrap_or_else(|e| fail(&format!("cannot read {BPF_DIR}: {e}")))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();

    // The BPF objects' BTF names their source files (line info): the source tree's own path
    // would make the embedded objects, so the binary, differ between build directories.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for src in sources {
        let file = src.file_name().unwrap().to_string_lossy();
        let tool = file.trim_end_matches(".bpf.c");
        let skel = out_dir.join(format!("{tool}.skel.rs"));
        let result = SkeletonBuilder::new()
            .source(&src)
            .clang(&clang)
            .clang_args([
                format!("-I{BPF_DIR}"),
                format!("-D__TARGET_ARCH_{arch}"),
                "-Wall".into(),
                "-Wno-unused-function".into(),
                format!("-ffile-prefix-map={manifest_dir}=."),
            ])
            .build_and_generate(&skel);
        if let Err(e) = result {
            fail(&format!("building {}: {e:#}", src.display()));
        }
    }
}

/// CORETRACE_COMMIT for `coretrace --version`: $CORETRACE_COMMIT if set (a distribution
/// building from a tarball can name its source), else the git commit when building from a git
/// checkout, else "unknown". Never a date or a dirty flag, so that builds stay reproducible.
fn commit() {
    println!("cargo:rerun-if-env-changed=CORETRACE_COMMIT");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = env::var("CORETRACE_COMMIT").ok().or_else(|| {
        // Only this repository's own git directory, not one the source tree happens to sit in.
        if !Path::new(".git").exists() {
            return None;
        }
        // Rebuild when HEAD moves: a checkout, or a commit on the branch checked out.
        let branch = git(&["symbolic-ref", "-q", "HEAD"]);
        for path in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
            if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!(
        "cargo:rustc-env=CORETRACE_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}

/// One readable line instead of a build-script panic.
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(1);
}
