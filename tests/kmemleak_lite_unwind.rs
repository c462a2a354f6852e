//! kmemleak-lite's user stacks through code built without frame pointers (--unwind): issue 24's
//! program (main -> serve -> handle_request -> store -> new std::string) in C++, C and Rust, each
//! built with its compiler's defaults, leaks a known number of blocks; the report must name the
//! whole chain down to main for each leak, through libstdc++ and libc, which Debian builds
//! without frame pointers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{build_c_program, marker, Finished, Traced};
use serde_json::Value;

const TOOL: &str = "kmemleak-lite";
const REQUESTS: u64 = 100;

fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(name)
}

/// Builds tests/programs/`src` with `compiler` and `flags` into a fresh directory (the C++ and
/// Rust programs; the C ones with common's `build_c_program`, which the kernel-matrix guests
/// hand over prebuilt).
fn build(compiler: &str, src: &str, out: &str, flags: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(marker(out));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(out);
    let status = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(source(src))
        .status()
        .unwrap_or_else(|e| panic!("{compiler} must be installed to build the test programs: {e}"));
    assert!(status.success(), "building {src} with {compiler}");
    exe
}

/// The C++ program as g++ builds it by default at -O2: no frame pointers.
fn deep_cxx() -> PathBuf {
    build("g++", "deep_cxx.cc", "deep_cxx", &["-O2", "-g"])
}

/// `kmemleak-lite -c 'PROGRAM REQUESTS MARKER' --json -i 1` (and -v, which Traced adds) and
/// more `args`: its last report, and the run. The program stays, once it has leaked, until
/// MARKER exists: made when two reports have followed its "deep: leaked" (its stack copies were
/// read while it was there), so that how fast it ends cannot decide what the tool can name.
fn final_report(program: &Path, args: &[&str]) -> (Value, Finished) {
    final_report_of(&program.display().to_string(), args)
}

/// [`final_report`] of a command line that the requests and the marker end.
fn final_report_of(program: &str, args: &[&str]) -> (Value, Finished) {
    let marker_file = std::env::temp_dir().join(marker("deep-done"));
    let command = format!("{program} {REQUESTS} {}", marker_file.display());
    let mut all = vec!["-c", &command, "--json", "-i", "1", "-T", "100"];
    all.extend_from_slice(args);
    let traced = Traced::start(TOOL, &all);
    let reported = traced.wait_for(Duration::from_secs(60), |out| {
        out.split_once("deep: leaked\n")
            .is_some_and(|(_, after)| after.lines().filter(|l| l.starts_with('{')).count() >= 2)
    });
    std::fs::write(&marker_file, b"").unwrap();
    let out = traced.wait(Duration::from_secs(90));
    let _ = std::fs::remove_file(&marker_file);
    assert!(reported, "no report after the program leaked: {out:?}");
    assert!(out.status.success(), "{out:?}");
    let last = common::final_report(&out);
    (last, out)
}

/// A frame's function as the test programs name it: C++'s parameter list and Rust's hash left
/// out (`store(int)` and `deep::store::h0123...` are `store` and `deep::store`).
fn function(frame: &Value) -> String {
    let name = frame["code.function.name"].as_str().unwrap_or("");
    let name = name.split('(').next().unwrap();
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => name.to_string(),
    }
}

/// The stacks whose frames hold `chain` in order (each the caller of the one before, with
/// nothing of the program's own between them): (bytes, allocations, the stack).
fn stacks_with_chain<'r>(report: &'r Value, chain: &[&str]) -> Vec<(u64, u64, &'r Value)> {
    report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            let names: Vec<String> = s["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(function)
                .collect();
            names
                .windows(chain.len())
                .any(|w| w.iter().zip(chain).all(|(a, b)| a == b))
        })
        .map(|s| {
            (
                s["bytes"].as_u64().unwrap(),
                s["allocations"].as_u64().unwrap(),
                s,
            )
        })
        .collect()
}

/// The allocations of the stacks that run through `chain` and, before it, through a frame of a
/// file whose name starts with `library`.
fn allocations_through(report: &Value, library: &str, chain: &[&str]) -> u64 {
    stacks_with_chain(report, chain)
        .iter()
        .filter(|(_, _, s)| {
            let frames = s["frames"].as_array().unwrap();
            let first = frames.iter().position(|f| function(f) == chain[0]).unwrap();
            frames[..first].iter().any(|f| {
                let module = f["module"].as_str().unwrap_or("");
                Path::new(module)
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(library))
            })
        })
        .map(|(_, n, _)| n)
        .sum()
}

/// Every stack of the report was unwound with the unwind tables and none was cut.
fn assert_dwarf_whole(report: &Value, out: &Finished) {
    assert!(
        out.stderr
            .contains("walked with the binaries' unwind tables"),
        "{}",
        out.stderr
    );
    for s in report["stacks"].as_array().unwrap() {
        assert_eq!(s["unwind"], "dwarf", "{s}");
        assert_eq!(s["cut"], false, "{s}");
    }
    let whole = serde_json::json!({"cut": 0, "unmapped": 0});
    assert_eq!(report["incomplete_stacks"], whole, "{}", out.stdout);
}

bpf_test!(
    fn a_cxx_program_without_frame_pointers_shows_each_leak_down_to_main() {
        let program = deep_cxx();
        let (last, out) = final_report(&program, &[]);
        assert_dwarf_whole(&last, &out);
        let chain = ["store", "handle_request", "serve", "main"];
        // The string's characters, allocated inside libstdc++ (_M_construct): the stack crosses it.
        assert_eq!(
            allocations_through(&last, "libstdc++", &chain),
            REQUESTS,
            "{}",
            out.stdout
        );
        // The std::string object itself: operator new's caller is store.
        let objects: u64 = stacks_with_chain(&last, &chain)
            .iter()
            .filter(|(_, _, s)| function(&s["frames"][0]) == "store")
            .map(|(bytes, n, _)| {
                assert_eq!(*bytes, n * 32, "{}", out.stdout);
                n
            })
            .sum();
        assert_eq!(objects, REQUESTS, "{}", out.stdout);
    }
);

bpf_test!(
    fn frame_pointers_alone_lose_the_cxx_program_chain() {
        // What --unwind dwarf is for: the same program with --unwind fp stops in libstdc++.
        let (last, out) = final_report(&deep_cxx(), &["--unwind", "fp"]);
        assert!(
            out.stderr.contains("walked with frame pointers"),
            "{}",
            out.stderr
        );
        let chain = ["store", "handle_request", "serve", "main"];
        assert_eq!(
            allocations_through(&last, "libstdc++", &chain),
            0,
            "{}",
            out.stdout
        );
        for s in last["stacks"].as_array().unwrap() {
            assert_eq!(s["unwind"], "fp", "{s}");
        }
    }
);

/// The C program's leaks: REQUESTS blocks of 64-71 bytes from store, and 10 of 24 bytes from
/// qsort's callback, under libc's qsort (`through_libc`: asserted where libc has unwind tables).
fn assert_c_leaks(program: &Path, through_libc: Option<&str>) {
    let (last, out) = final_report(program, &[]);
    assert_dwarf_whole(&last, &out);
    let requests = stacks_with_chain(&last, &["store", "handle_request", "serve", "main"]);
    let n: u64 = requests.iter().map(|s| s.1).sum();
    assert_eq!(n, REQUESTS, "{}", out.stdout);
    if let Some(libc) = through_libc {
        let chain = ["sort_requests", "serve", "main"];
        let sorted = stacks_with_chain(&last, &chain);
        let first = |s: &Value| function(&s["frames"][0]);
        assert!(
            sorted.iter().all(|s| first(s.2) == "compare_and_leak"),
            "{}",
            out.stdout
        );
        assert_eq!(
            allocations_through(&last, libc, &chain),
            10,
            "{}",
            out.stdout
        );
    }
}

bpf_test!(
    fn a_c_program_without_frame_pointers_shows_each_leak_down_to_main_pie_and_not() {
        let pie = build_c_program("deep", &["-O2", "-g"]);
        assert_c_leaks(&pie, Some("libc.so"));
        let fixed = build_c_program("deep_nopie", &["-O2", "-g", "-no-pie"]);
        assert_c_leaks(&fixed, Some("libc.so"));
    }
);

bpf_test!(
    fn a_static_musl_program_without_frame_pointers_shows_each_leak_down_to_main() {
        // musl-gcc's specs, given to cc (Debian's musl-tools), as tests/kmemleak_lite.rs does.
        let specs = format!(
            "/usr/lib/{}-linux-musl/musl-gcc.specs",
            std::env::consts::ARCH
        );
        let program = build_c_program("deep_musl", &["-specs", &specs, "-static", "-O2", "-g"]);
        assert_c_leaks(&program, None);
    }
);

bpf_test!(
    fn a_rust_release_program_shows_each_leak_down_to_main() {
        // cargo's release profile: opt-level 3, no debug info (symbols kept), no frame pointers.
        let program = build(
            "rustc",
            "deep_rs.rs",
            "deep_rs",
            &[
                "--crate-name",
                "deep",
                "--edition",
                "2021",
                "-C",
                "opt-level=3",
                "-C",
                "strip=debuginfo",
            ],
        );
        let (last, out) = final_report(&program, &[]);
        assert_dwarf_whole(&last, &out);
        let chain = [
            "deep::store",
            "deep::handle_request",
            "deep::serve",
            "deep::main",
        ];
        let n: u64 = stacks_with_chain(&last, &chain).iter().map(|s| s.1).sum();
        assert_eq!(n, REQUESTS, "{}", out.stdout);
    }
);

bpf_test!(
    fn frames_in_code_never_seen_mapped_are_counted_by_cause() {
        // deep_dl loads a library whose file it has deleted: its code is in no mapping the tool can
        // read, so the walk stops there; every leak through it is counted as unmapped, none lost.
        let lib = build_c_program("deep_lib", &["-O2", "-shared", "-fPIC"]);
        let program = build_c_program("deep_dl", &["-O2", "-g"]);
        let command = format!("{} {}", program.display(), lib.display());
        let (last, out) = final_report_of(&command, &["--unwind", "dwarf"]);
        let counted = serde_json::json!({"cut": 0, "unmapped": REQUESTS});
        assert_eq!(last["incomplete_stacks"], counted, "{}", out.stdout);
        // The leaks are all there, under store, their stack ending in the deleted library.
        let stores: u64 = last["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| function(&s["frames"][0]) == "store")
            .map(|s| s["allocations"].as_u64().unwrap())
            .sum();
        assert_eq!(stores, REQUESTS, "{}", out.stdout);
    }
);
