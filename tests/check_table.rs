//! One table of truth: README's Requirements table says, per tool, what `--check` says (the
//! minimum kernel, and each attach method with what it needs), and `--check` exits 0 only when
//! the tool then runs.

mod common;

use common::{bin, run_tool, Traced};

/// `tool --check --json args...`: (exit code, the report).
fn check(tool: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let (code, out, err) = run_tool(tool, &[&["--check", "--json"], args].concat());
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{tool}: {e}: {out}{err}"));
    (code, report)
}

/// The README row of `tool`, split into cells.
fn readme_row(tool: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = format!("| `{tool}` |");
    let row = readme
        .lines()
        .find(|l| l.starts_with(&start) && l.contains("BPF ring buffer"))
        .unwrap_or_else(|| panic!("README's Requirements table has no row for {tool}"));
    row.split('|').map(|c| c.trim().to_string()).collect()
}

bpf_test!(
    fn readme_says_what_check_says_per_tool() {
        let own_main = format!("{}:main", bin("uprobe-lat"));
        let modes = [
            ("execsnoop", vec![]),
            ("exitsnoop", vec![]),
            ("unlinksnoop", vec![]),
            ("kmemleak-lite", vec![]),
            ("kmemleak-lite", vec!["-c", "/bin/true"]),
            ("uprobe-lat", vec![own_main.as_str()]),
        ];
        // Every tool of the registry (coretrace --list-tools), in its order: a new tool needs its
        // row here.
        let mut tools: Vec<&str> = modes.iter().map(|(t, _)| *t).collect();
        tools.dedup();
        assert_eq!(tools, common::tools());
        for (tool, args) in modes {
            let (code, report) = check(tool, &args);
            assert_eq!(code, 0, "{tool} --check: {report}");
            let row = readme_row(tool);
            let version = report["min_kernel"]["version"].as_str().unwrap();
            assert_eq!(row[2], version, "{tool}: README's minimum kernel");
            let hooks: Vec<String> = report["hooks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    format!(
                        "{} ({})",
                        h["method"].as_str().unwrap(),
                        h["needs"].as_str().unwrap()
                    )
                })
                .collect();
            let hooks = hooks.join(", ");
            assert!(
                row[4].contains(&hooks),
                "{tool} {args:?}: README says {:?}, --check says {hooks:?}",
                row[4]
            );
        }
    }
);

bpf_test!(
    fn check_names_the_method_the_run_then_uses() {
        for tool in ["execsnoop", "exitsnoop", "unlinksnoop"] {
            let (code, report) = check(tool, &[]);
            assert_eq!(code, 0, "{report}");
            let would = report["would_use"].as_str().unwrap().to_string();
            let out = Traced::start(tool, &[]).stop();
            let attached = out
                .stderr
                .lines()
                .find(|l| l.starts_with(&format!("{tool}: attached")))
                .unwrap_or_else(|| panic!("{tool}: no 'attached' line: {out:?}"));
            // execsnoop and exitsnoop name their tracepoints ("... tracepoints").
            assert!(
                attached.contains(&would),
                "{tool}: --check would use {would}: {attached}"
            );
        }
    }
);
