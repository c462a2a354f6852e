//! Compiles every `src/bpf/<tool>.bpf.c` with clang and generates its Rust skeleton into
//! `$OUT_DIR/<tool>.skel.rs` (libbpf-cargo), which `src/skel.rs` includes (through the lines
//! `skeleton_lines` writes, as src/load/driver.rs includes its `bpf!` lines); and turns the
//! numeric `#define`s of the headers the C and the Rust side share (`src/bpf/<tool>.h`,
//! common.bpf.h, user_stack.bpf.h) into Rust constants in `$OUT_DIR/<tool>.defs.rs`, so that
//! no number is copied by hand.

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
        Ok("powerpc64") => "powerpc",
        Ok("riscv64") => "riscv",
        Ok("s390x") => "s390",
        Ok(other) => fail(&format!("no BPF target arch for {other}")),
        Err(_) => "x86",
    };
    let endian_flag = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "-mbig-endian",
        _ => "-mlittle-endian",
    };
    // One vmlinux.h per architecture (src/bpf/<arch>/vmlinux.h, as libbpf-tools keeps them):
    // the BPF programs read pt_regs and the syscall wrappers' layouts, which differ by arch.
    let arch_dir = format!("{BPF_DIR}/{arch}");
    if !Path::new(&arch_dir).join("vmlinux.h").exists() {
        fail(&format!(
            "no {arch_dir}/vmlinux.h for target arch {arch}: generate it from that arch's kernel BTF \
             with `tools/gen_vmlinux.sh {arch} BTF-FILE`"
        ));
    }

    let mut sources: Vec<PathBuf> = std::fs::read_dir(BPF_DIR)
        .unwrap_or_else(|e| fail(&format!("cannot read {BPF_DIR}: {e}")))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();

    // Each tool's shared header is <tool>.h beside <tool>.bpf.c.
    let headers = sources.iter().map(|src| {
        let file = src.file_name().unwrap().to_string_lossy();
        file.replace(".bpf.c", ".h")
    });
    let shared = ["common.bpf.h", "user_stack.bpf.h"].map(String::from);
    for header in shared.into_iter().chain(headers) {
        let path = Path::new(BPF_DIR).join(&header);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
        let stem = header.split('.').next().unwrap_or(&header);
        let out = out_dir.join(format!("{stem}.defs.rs"));
        if let Err(e) = std::fs::write(&out, rust_consts(&text, &path)) {
            fail(&format!("cannot write {}: {e}", out.display()));
        }
    }

    skeleton_lines(&out_dir, &sources);

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
                format!("-I{arch_dir}"),
                format!("-D__TARGET_ARCH_{arch}"),
                // `-target bpf` is the build machine's byte order; the objects take the target's
                // (s390x is big-endian: bpfeb).
                endian_flag.into(),
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

/// The lines that make each `src/bpf/<tool>.bpf.c` a Rust module, so that no list of the tools
/// is kept by hand: `skeleton!(...)` for src/skel.rs (the generated skeleton and its `defs`) and
/// `bpf!(...)` for src/load/driver.rs (its `Bpf` implementation), each file `include!`d there.
fn skeleton_lines(out_dir: &Path, sources: &[PathBuf]) {
    let (mut skeletons, mut bpfs) = (String::new(), String::new());
    for src in sources {
        let file = src.file_name().unwrap().to_string_lossy();
        let tool = file.trim_end_matches(".bpf.c");
        // libbpf-cargo's type names: kmemleak_lite -> KmemleakLiteSkel.
        let camel: String = tool
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        skeletons.push_str(&format!(
            "skeleton!({tool}, \"{tool}.skel.rs\", \"{tool}.defs.rs\");\n"
        ));
        bpfs.push_str(&format!(
            "bpf!({tool}: {camel}Skel, Open{camel}Skel, {camel}SkelBuilder);\n"
        ));
    }
    for (name, text) in [("skeletons.rs", skeletons), ("bpf_impls.rs", bpfs)] {
        let out = out_dir.join(name);
        if let Err(e) = std::fs::write(&out, text) {
            fail(&format!("cannot write {}: {e}", out.display()));
        }
    }
}

/// `pub const NAME: u32 = VALUE;` for each `#define NAME VALUE` whose value is a number or an
/// arithmetic expression of numbers and earlier names (header guards and macros with arguments
/// are skipped), typed u32 unless C's suffix makes it 64-bit (i64 when negative); users convert where a field is
/// narrower or an index.
fn rust_consts(header: &str, path: &Path) -> String {
    let mut out = format!(
        "// Generated by build.rs from {}: do not edit.\n",
        path.display()
    );
    for line in header.lines() {
        let Some(rest) = line.trim_start().strip_prefix("#define") else {
            continue;
        };
        let rest = rest
            .split("/*")
            .next()
            .unwrap_or("")
            .split("//")
            .next()
            .unwrap_or("");
        let mut words = rest.split_whitespace();
        let Some(name) = words.next() else { continue };
        let value: String = words.collect::<Vec<_>>().join(" ");
        let is_const = name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with('_')
            && !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _()+-*<>|".contains(c));
        if is_const {
            // C says the width with a suffix (1ULL << 63): 64-bit there, u32 otherwise; a
            // negative value is signed.
            let (mut ty, value) = c_literals(&value);
            if value.trim_start_matches('(').starts_with('-') {
                ty = "i64";
            }
            out.push_str(&format!("pub const {name}: {ty} = {value};\n"));
        }
    }
    out
}

/// The Rust type of a C constant expression and its text without C's integer suffixes:
/// u64 when a literal says `L`/`LL` (64-bit on the BPF target), else u32.
fn c_literals(value: &str) -> (&'static str, String) {
    let mut wide = false;
    let mut out = String::new();
    for word in value.split_inclusive(|c: char| !c.is_ascii_alphanumeric()) {
        let (token, rest) = word.split_at(
            word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .len(),
        );
        let digits = token.trim_end_matches(['u', 'U', 'l', 'L']);
        if token.starts_with(|c: char| c.is_ascii_digit()) && digits.len() < token.len() {
            wide |= token.contains(['l', 'L']);
            out.push_str(digits);
        } else {
            out.push_str(token);
        }
        out.push_str(rest);
    }
    (if wide { "u64" } else { "u32" }, out)
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
