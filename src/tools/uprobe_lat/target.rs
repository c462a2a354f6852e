//! From what the user typed (`PATH:FUNC`, `LIB:FUNC`, `:FUNC` with `-p`) to the files and
//! offsets to attach to: finds libraries the way the dynamic loader would, expands globs, and
//! names the closest matches when a function is not there.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::host::elf_symbols::{self, Elf, Function};

/// More functions than this from one run is a pattern typed too wide.
pub const MAX_FUNCTIONS: usize = 1000;

/// One function to trace.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The file to attach to (for `-p`, possibly through /proc/PID/root).
    pub path: PathBuf,
    /// The file as the user should read it.
    pub binary: String,
    pub function: String,
    pub offset: u64,
}

/// `BINARY:FUNC` split at the last colon.
pub fn split(target: &str) -> Result<(&str, &str)> {
    let Some((binary, func)) = target.rsplit_once(':') else {
        let target = crate::render::escape::escaped(target.as_bytes());
        bail!(
            "'{target}' is not a target: give PATH:FUNCTION, LIBRARY:FUNCTION (libc:malloc) or :FUNCTION with -p PID"
        );
    };
    if func.is_empty() {
        let target = crate::render::escape::escaped(target.as_bytes());
        bail!("'{target}' names no function after the ':'");
    }
    Ok((binary, func))
}

/// The file `binary` names: a path (it has a '/'), a library as the loader finds it, or a
/// program in $PATH; empty means the executable of `pid`.
pub fn resolve_binary(binary: &str, pid: Option<u32>) -> Result<(PathBuf, String)> {
    if binary.is_empty() {
        let Some(pid) = pid else {
            bail!("':FUNCTION' traces the program of a process: give its PID with -p PID");
        };
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let shown = std::fs::read_link(&exe).with_context(|| {
            format!(
                "cannot read {}: is process {pid} still running (and not a kernel thread)?",
                exe.display()
            )
        })?;
        return Ok((exe, shown_path(&shown)));
    }
    if binary.contains('/') {
        let path = PathBuf::from(binary);
        let binary = shown_path(&path);
        if !path.exists() {
            bail!("{binary} does not exist: give the path of a program or library");
        }
        if !path.is_file() {
            bail!("{binary} is not a file: give the path of a program or library");
        }
        let shown = shown_path(&path);
        return Ok((path, shown));
    }
    if let Some(pid) = pid {
        if let Some(found) = library_in_process(binary, pid) {
            let shown = shown_path(&found);
            // The process may live in another mount namespace: reach its files through its root.
            let through_root = PathBuf::from(format!("/proc/{pid}/root"))
                .join(found.strip_prefix("/").unwrap_or(found.as_path()));
            return Ok((through_root, shown));
        }
    }
    if let Some(found) = find_library(binary) {
        let shown = shown_path(&found);
        return Ok((found, shown));
    }
    if let Some(found) = crate::host::system::find_in_path(binary) {
        let shown = shown_path(&found);
        return Ok((found, shown));
    }
    let within = pid
        .map(|p| format!("the libraries process {p} maps, "))
        .unwrap_or_default();
    let binary = crate::render::escape::escaped(binary.as_bytes());
    bail!(
        "no library or program named '{binary}': looked in {within}$LD_LIBRARY_PATH, the ldconfig cache, /lib, /usr/lib and $PATH; give its path instead"
    )
}

use crate::render::escape::path as shown_path;

const STANDARD_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// Does a library file name answer to `name` (`c`, `libc`, `libc.so`, `libc.so.6`)?
pub fn library_matches(file_name: &str, name: &str) -> bool {
    if name.contains(".so") {
        return file_name == name;
    }
    let stems = [format!("{name}.so"), format!("lib{name}.so")];
    stems.iter().any(|stem| {
        file_name.strip_prefix(stem.as_str()).is_some_and(|rest| {
            rest.is_empty()
                || rest.strip_prefix('.').is_some_and(|v| {
                    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                })
        })
    })
}

/// A library of that name mapped by the process.
fn library_in_process(name: &str, pid: u32) -> Option<PathBuf> {
    let maps = crate::host::proc_maps::read(pid).ok()?;
    crate::host::proc_maps::files(&maps).into_iter().find(|p| {
        p.file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| library_matches(f, name))
    })
}

/// The library as the dynamic loader finds it: $LD_LIBRARY_PATH, the ldconfig cache, the
/// standard directories.
fn find_library(name: &str) -> Option<PathBuf> {
    let env_dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(p) = search_dirs(env_dirs.iter().map(PathBuf::as_path), name) {
        return Some(p);
    }
    if let Some(p) = ldconfig_cache(name) {
        return Some(p);
    }
    search_dirs(STANDARD_DIRS.iter().map(Path::new), name)
}

fn search_dirs<'a>(dirs: impl Iterator<Item = &'a Path>, name: &str) -> Option<PathBuf> {
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|f| library_matches(f, name))
            })
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        // libfoo.so.1 (what programs load) before libfoo.so (a development link).
        found.sort_by_key(|p| std::cmp::Reverse(p.to_string_lossy().len()));
        if let Some(p) = found.into_iter().next() {
            return Some(p);
        }
    }
    None
}

/// `ldconfig -p`: "libc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6".
fn ldconfig_cache(name: &str) -> Option<PathBuf> {
    let out = ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"]
        .iter()
        .find_map(|cmd| Command::new(cmd).arg("-p").output().ok())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let native = if cfg!(target_arch = "x86_64") {
        "x86-64"
    } else if cfg!(target_arch = "aarch64") {
        "AArch64"
    } else {
        ""
    };
    let mut best: Option<(bool, PathBuf)> = None;
    for line in text.lines() {
        let Some((lhs, path)) = line.split_once(" => ") else {
            continue;
        };
        let mut words = lhs.split_whitespace();
        let Some(file) = words.next() else { continue };
        if !library_matches(file, name) {
            continue;
        }
        let is_native = native.is_empty() || lhs.contains(native);
        if match &best {
            None => true,
            Some((n, _)) => !n && is_native,
        } {
            best = Some((is_native, PathBuf::from(path.trim())));
        }
    }
    best.map(|(_, p)| p)
}

/// Is there anything to glob in `pattern`?
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Shell-style match: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
        // Returns (matched, length of the class in p) or None if unterminated.
        let mut i = 1;
        let negate = matches!(p.get(1), Some(b'!') | Some(b'^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() && (first || p[i] != b']') {
            first = false;
            if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                matched |= p[i] <= c && c <= p[i + 2];
                i += 3;
            } else {
                matched |= p[i] == c;
                i += 1;
            }
        }
        (i < p.len()).then_some((matched != negate, i + 1))
    }
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class(&p[pi..], n[ni]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (n[ni] == b'[').then_some(1),
            },
            Some(&c) => (c == n[ni]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The functions `pattern` selects in `binary` (already resolved to `path`), or an error that
/// names the closest matches.
pub fn select(path: &Path, shown: &str, pattern: &str, funcs: &Elf) -> Result<Vec<Probe>> {
    let probe = |f: &Function| Probe {
        path: path.to_path_buf(),
        binary: shown.to_string(),
        function: f.name.clone(),
        offset: f.offset,
    };
    if funcs.functions.is_empty() {
        bail!(
            "{shown} has no function symbols (it is stripped): install its debug symbols or trace an unstripped build"
        );
    }
    if !is_glob(pattern) {
        if let Some(f) = funcs.get(pattern) {
            return Ok(vec![probe(f)]);
        }
        return Err(not_found(shown, pattern, funcs));
    }
    // Aliases (one address, several names) would fire twice per call: keep one name each.
    let mut seen = HashSet::new();
    let picked: Vec<Probe> = funcs
        .functions
        .iter()
        .filter(|f| glob_match(pattern, &f.name))
        .filter(|f| seen.insert(f.offset))
        .map(probe)
        .collect();
    if picked.is_empty() {
        return Err(not_found(shown, pattern, funcs));
    }
    Ok(picked)
}

fn not_found(shown: &str, pattern: &str, funcs: &Elf) -> anyhow::Error {
    let close = closest(pattern, funcs, 5);
    let stripped = if funcs.has_symtab {
        String::new()
    } else {
        format!(
            " ({shown} is stripped: only its {} exported functions are known)",
            funcs.functions.len()
        )
    };
    let hint = if close.is_empty() {
        format!("list its functions with `uprobe-lat -l '{shown}:*'`")
    } else {
        format!("closest matches: {}", close.join(", "))
    };
    anyhow::anyhow!("no function '{pattern}' in {shown}{stripped}: {hint}")
}

/// Up to `n` names nearest to `wanted`: names containing it first, then by edit distance.
pub fn closest(wanted: &str, funcs: &Elf, n: usize) -> Vec<String> {
    let bare: String = wanted.chars().filter(|c| !"*?[]".contains(*c)).collect();
    let lower = bare.to_lowercase();
    let mut scored: Vec<(usize, &str)> = funcs
        .functions
        .iter()
        .filter_map(|f| {
            let name = f.name.to_lowercase();
            let score = if !lower.is_empty() && name.contains(&lower) {
                name.len() - lower.len()
            } else {
                // Names far apart in length cannot be near: skip the O(n·m) distance.
                if lower.len().abs_diff(name.len()) > 8 {
                    return None;
                }
                let d = strsim::levenshtein(&lower, &name);
                if d > (lower.len() / 3).max(2) {
                    return None;
                }
                100 + d
            };
            Some((score, f.name.as_str()))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(n)
        .map(|(_, name)| crate::render::escape::escaped(name.as_bytes()))
        .collect()
}

/// Resolves every target into probes, in the order given, without duplicates.
pub fn resolve_all(targets: &[String], pid: Option<u32>) -> Result<Vec<Probe>> {
    let mut probes: Vec<Probe> = Vec::new();
    for target in targets {
        let (binary, pattern) = split(target)?;
        let (path, shown) = resolve_binary(binary, pid)?;
        let funcs = elf_symbols::read(&path)?;
        for p in select(&path, &shown, pattern, &funcs)? {
            if !probes
                .iter()
                .any(|q| q.path == p.path && q.offset == p.offset)
            {
                probes.push(p);
            }
        }
    }
    if probes.len() > MAX_FUNCTIONS {
        bail!(
            "the targets match {} functions, more than the {MAX_FUNCTIONS} uprobe-lat traces at once: narrow the pattern",
            probes.len()
        );
    }
    Ok(probes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(names: &[&str]) -> Elf {
        let mut functions: Vec<Function> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Function {
                name: n.to_string(),
                addr: 0x1000 + i as u64 * 16,
                size: 16,
                offset: 0x1000 + i as u64 * 16,
            })
            .collect();
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        Elf {
            functions,
            has_symtab: true,
            interpreter: None,
        }
    }

    #[test]
    fn split_targets() {
        assert_eq!(
            split("/bin/bash:readline").unwrap(),
            ("/bin/bash", "readline")
        );
        assert_eq!(split("libc:malloc").unwrap(), ("libc", "malloc"));
        assert_eq!(split(":main").unwrap(), ("", "main"));
        assert!(split("malloc").is_err());
        assert!(split("libc:").is_err());
    }

    #[test]
    fn library_names_as_the_loader_sees_them() {
        assert!(library_matches("libc.so.6", "c"));
        assert!(library_matches("libc.so.6", "libc"));
        assert!(library_matches("libc.so.6", "libc.so.6"));
        assert!(library_matches("libssl.so.3", "ssl"));
        assert!(library_matches("libz.so", "z"));
        assert!(!library_matches("libcap.so.2", "libc"));
        assert!(!library_matches("libc.so.6", "libc.so"));
        assert!(!library_matches("libc-2.36.so", "libc"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("parse_*", "parse_alpha"));
        assert!(glob_match("*alpha", "parse_alpha"));
        assert!(glob_match("p?rse_*a", "parse_alpha"));
        assert!(glob_match("parse_[ab]*", "parse_beta"));
        assert!(!glob_match("parse_[!ab]*", "parse_beta"));
        assert!(glob_match("[a-p]arse", "parse"));
        assert!(!glob_match("parse_*", "parse"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbc"));
        assert!(!glob_match("a*b*c", "aXbYbd"));
    }

    #[test]
    fn glob_selects_every_match_once() {
        let f = funcs(&["parse_alpha", "parse_beta", "main"]);
        let picked = select(Path::new("/x"), "/x", "parse_*", &f).unwrap();
        let names: Vec<&str> = picked.iter().map(|p| p.function.as_str()).collect();
        assert_eq!(names, ["parse_alpha", "parse_beta"]);
    }

    #[test]
    fn missing_function_names_closest() {
        let f = funcs(&["work_sleep", "work_busy", "main", "recurse"]);
        let err = select(Path::new("/x"), "/x", "work_slep", &f)
            .unwrap_err()
            .to_string();
        assert!(err.contains("closest matches: work_sleep"), "{err}");
        let err = select(Path::new("/x"), "/x", "sleep", &f)
            .unwrap_err()
            .to_string();
        assert!(err.contains("work_sleep"), "{err}");
    }

    #[test]
    fn stripped_binary_says_so() {
        let f = Elf::default();
        let err = select(Path::new("/x"), "/x", "main", &f)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stripped"), "{err}");
    }

    #[test]
    fn unknown_library_is_one_line() {
        let err = resolve_binary("libcoretrace-no-such-lib-xyz", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no library or program named"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn libc_by_name() {
        if !Path::new("/lib/x86_64-linux-gnu/libc.so.6").exists() {
            return;
        }
        let (path, _) = resolve_binary("libc", None).unwrap();
        assert!(path.to_string_lossy().ends_with("libc.so.6"), "{path:?}");
    }
}
