//! Which BTF CO-RE relocates against: the `--btf` file (or `CORETRACE_BTF`), else the kernel's
//! own. Every tool opens its skeleton through [`open_skel`].

use std::ffi::CString;
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::SkelBuilder;
use libbpf_rs::{libbpf_sys, OpenObject};

/// Where the running kernel publishes its BTF; CO-RE relocations resolve against it.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The environment variable that names a BTF file, as `--btf FILE` does (the option wins).
pub const BTF_ENV: &str = "CORETRACE_BTF";

/// The BTF file given with `--btf` or `CORETRACE_BTF`, once `use_btf` accepted it: CO-RE
/// relocations, the attach-method probes and `--check` read it instead of the kernel's own.
static CUSTOM_BTF: OnceLock<CustomBtf> = OnceLock::new();

struct CustomBtf {
    path: PathBuf,
    /// For libbpf's `btf_custom_path` open option, which must outlive every open.
    c_path: CString,
    /// How the user gave it, for messages: "--btf" or "CORETRACE_BTF".
    given_by: &'static str,
}

/// Takes the BTF file of `--btf FILE` (else of `CORETRACE_BTF`, when set and not empty) for
/// CO-RE, for kernels without /sys/kernel/btf/vmlinux (files made by `pahole` or from BTFHub).
/// Fails in one line when the file cannot be read or is not BTF. Called first by every tool.
pub fn use_btf(arg: Option<&Path>) -> Result<()> {
    let env = std::env::var_os(BTF_ENV).filter(|v| !v.is_empty());
    let (path, given_by) = match (arg, env) {
        (Some(p), _) => (p.to_path_buf(), "--btf"),
        (None, Some(v)) => (PathBuf::from(v), BTF_ENV),
        (None, None) => return Ok(()),
    };
    // As the user wrote it: "--btf FILE" or "CORETRACE_BTF=FILE".
    let sep = if given_by == BTF_ENV { "=" } else { " " };
    let shown = format!("{given_by}{sep}{}", path.display());
    let fix = "give a BTF file of the running kernel (made with `pahole --btf_encode_detached=FILE vmlinux`, or from BTFHub)";
    if let Err(e) = File::open(&path) {
        bail!("{shown}: {e}: {fix}");
    }
    // libbpf would print its own complaint about a bad file; ours says it in one line (each
    // tool sets libbpf's log as -v asks right after).
    let log = libbpf_rs::set_print(None);
    let parsed = libbpf_rs::Btf::from_path(&path);
    libbpf_rs::set_print(log);
    if let Err(e) = parsed {
        bail!("{shown} is not a BTF file ({e}): {fix}");
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{shown}: the path holds a NUL byte"))?;
    let _ = CUSTOM_BTF.set(CustomBtf {
        path,
        c_path,
        given_by,
    });
    Ok(())
}

/// The BTF file given with `--btf`/`CORETRACE_BTF`, if one was.
pub fn custom_btf() -> Option<&'static Path> {
    CUSTOM_BTF.get().map(|c| c.path.as_path())
}

/// Whether the kernel publishes its own BTF. fentry/fexit need it whatever `--btf` says: the
/// kernel checks a trampoline's target against its own BTF.
pub fn kernel_has_btf() -> bool {
    std::fs::metadata(KERNEL_BTF).is_ok_and(|m| m.len() > 0)
}

/// Opens a skeleton so that its CO-RE relocations resolve against the `--btf` file when one
/// was given, else against the kernel's own BTF (libbpf's default). Every tool opens with this.
pub fn open_skel<'obj, B: SkelBuilder<'obj>>(
    builder: B,
    object: &'obj mut MaybeUninit<OpenObject>,
) -> Result<B::Output> {
    let opened = match CUSTOM_BTF.get() {
        Some(custom) => {
            let opts = libbpf_sys::bpf_object_open_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _,
                btf_custom_path: custom.c_path.as_ptr(),
                ..Default::default()
            };
            builder.open_opts(opts, object)
        }
        None => builder.open(object),
    };
    opened.context("opening the BPF object")
}

/// CO-RE needs the kernel's types: from the `--btf` file (checked by `use_btf`), else from the
/// kernel's own BTF (CONFIG_DEBUG_INFO_BTF=y). `Ok` says which; `Err` names both fixes.
pub fn check_btf() -> Result<String, String> {
    btf_status(
        CUSTOM_BTF.get().map(|c| (c.path.as_path(), c.given_by)),
        Path::new(KERNEL_BTF),
    )
}

fn btf_status(custom: Option<(&Path, &str)>, kernel: &Path) -> Result<String, String> {
    if let Some((path, given_by)) = custom {
        return Ok(format!("{} (given with {given_by})", path.display()));
    }
    if std::fs::metadata(kernel).is_ok_and(|m| m.len() > 0) {
        return Ok(kernel.display().to_string());
    }
    Err(format!(
        "this kernel has no BTF ({} is missing): give its BTF with --btf FILE or {BTF_ENV}=FILE (a file made with pahole, or from BTFHub), or run a kernel built with CONFIG_DEBUG_INFO_BTF=y (any distribution kernel since 2020)",
        kernel.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_btf_names_both_fixes() {
        let err = btf_status(None, Path::new("/nonexistent/btf")).unwrap_err();
        assert!(err.contains("/nonexistent/btf is missing"), "{err}");
        assert!(err.contains("--btf FILE or CORETRACE_BTF=FILE"), "{err}");
        assert!(err.contains("CONFIG_DEBUG_INFO_BTF=y"), "{err}");
        let given = btf_status(
            Some((Path::new("/x.btf"), "--btf")),
            Path::new("/nonexistent"),
        );
        assert_eq!(given.unwrap(), "/x.btf (given with --btf)");
    }
}
