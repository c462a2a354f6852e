//! The suite's attach strategy, in one place. A tool's hook declares the methods it can use, in
//! order of preference (fentry/fexit, kprobe/kretprobe, tracepoint, uprobe); we check what the
//! running kernel offers, try the methods in turn (loading and attaching for real: the kernel is
//! the only reliable judge), and keep the first that works. `--attach METHOD` forces one, and
//! `--check` ([`super::check`]) reports what this kernel offers and what the tool would use.
//!
//! Kernels differ a lot here: some refuse fentry programs (lockdown, old kernels, some clouds),
//! some are built without kprobes, and functions get renamed or inlined. Tracepoints are the
//! stable floor.

use std::fmt;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Result};
use libbpf_rs::btf::types::{Func, FuncProto};
use libbpf_rs::btf::{BtfKind, ReferencesType};
use libbpf_rs::{Btf, OpenObject};
use serde::Serialize;

/// One way of hooking the kernel (or a user program).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// fentry/fexit: BTF-typed trampolines, the cheapest; needs BPF trampolines (5.5+).
    Fentry,
    /// kprobe/kretprobe: breakpoints on a kernel function; needs CONFIG_KPROBES.
    Kprobe,
    /// Static tracepoints: stable, always there, but only where the kernel put them.
    Tracepoint,
    /// uprobe/uretprobe on a function in a user-space binary.
    Uprobe,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Fentry,
        Method::Kprobe,
        Method::Tracepoint,
        Method::Uprobe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Fentry => "fentry",
            Method::Kprobe => "kprobe",
            Method::Tracepoint => "tracepoint",
            Method::Uprobe => "uprobe",
        }
    }

    /// What the kernel must offer for this method: `--check` prints it per tool (`hooks`), and
    /// README's Requirements table says the same (tests/btf.rs compares them).
    pub fn needs(self) -> &'static str {
        match self {
            Method::Fentry => "BPF trampolines (Linux 5.5) and the kernel's own BTF",
            Method::Kprobe => "CONFIG_KPROBES",
            Method::Tracepoint => "tracefs",
            Method::Uprobe => "CONFIG_UPROBE_EVENTS",
        }
    }

    fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `--attach` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Force(Method),
}

/// Parses `--attach` for `tool`: `auto`, or one of the methods its hook has programs for (a
/// tool offers only what it can do; the error lists exactly that). A tool with more than one
/// method declares the option itself, with `value_parser` set to a function calling this one.
pub fn parse_choice(tool: &str, hook: &Hook, s: &str) -> Result<Choice, String> {
    if s == "auto" {
        return Ok(Choice::Auto);
    }
    match Method::parse(s) {
        Some(m) if hook.methods.contains(&m) => Ok(Choice::Force(m)),
        _ => Err(format!(
            "'{s}' is not an attach method of {tool}: give auto, {}",
            names(hook.methods, ", ")
        )),
    }
}

/// What a tool hooks, by method.
pub struct Hook {
    /// The methods the tool has programs for, best first.
    pub methods: &'static [Method],
    /// Kernel functions the fentry and kprobe programs attach to.
    pub functions: &'static [&'static str],
    /// Tracepoints (`category/name`) the tracepoint programs need.
    pub tracepoints: &'static [&'static str],
    /// Tracepoints used where the kernel has them (the tool turns their programs off elsewhere).
    pub optional_tracepoints: &'static [&'static str],
    /// What the tool's programs need beyond the method's own (a newer helper), per method.
    pub also_needs: &'static [(Method, &'static str)],
}

impl Hook {
    /// What the method attaches to, for messages.
    pub(crate) fn targets(&self, method: Method) -> String {
        match method {
            Method::Fentry | Method::Kprobe => self.functions.join(", "),
            Method::Tracepoint => self
                .tracepoints
                .iter()
                .chain(
                    self.optional_tracepoints
                        .iter()
                        .filter(|t| tracepoint_exists(t)),
                )
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
            Method::Uprobe => "a function in a user-space binary".into(),
        }
    }
}

/// The outcome of trying one method.
pub type Attempt<'a, T> = &'a mut dyn FnMut(Method) -> Result<T>;

/// Picks, loads and attaches: `attempt(method)` opens the tool's skeleton with only that
/// method's programs enabled, loads and attaches it. With `-v`, says which method was used and
/// why the better ones were not.
pub fn select<T>(
    tool: &str,
    hook: &Hook,
    choice: Choice,
    verbose: bool,
    attempt: Attempt<'_, T>,
) -> Result<(T, Method)> {
    select_with(tool, hook, choice, verbose, &precheck, attempt)
}

type Precheck<'a> = &'a dyn Fn(&Hook, Method) -> Result<(), String>;

fn select_with<T>(
    tool: &str,
    hook: &Hook,
    choice: Choice,
    verbose: bool,
    precheck: Precheck<'_>,
    attempt: Attempt<'_, T>,
) -> Result<(T, Method)> {
    let mut refused: Vec<(Method, String)> = Vec::new();
    let order: Vec<Method> = match choice {
        Choice::Auto => hook.methods.to_vec(),
        Choice::Force(m) if hook.methods.contains(&m) => vec![m],
        Choice::Force(m) => bail!(
            "--attach {m}: this tool has no {m} programs; give --attach {}",
            names(hook.methods, " or ")
        ),
    };
    for method in order {
        match try_method(hook, method, precheck, attempt) {
            Ok(value) => {
                if verbose {
                    let why = refused
                        .iter()
                        .map(|(m, why)| format!("{m}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let why = if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    };
                    eprintln!(
                        "{tool}: attached with {method} to {}{why}",
                        hook.targets(method)
                    );
                }
                return Ok((value, method));
            }
            Err(why) => refused.push((method, why)),
        }
    }
    if let Choice::Force(m) = choice {
        let why = &refused[0].1;
        let others: Vec<Method> = hook
            .methods
            .iter()
            .copied()
            .filter(|&o| o != m && try_method(hook, o, precheck, attempt).is_ok())
            .collect();
        let can = if others.is_empty() {
            "none of the others either".to_string()
        } else {
            format!("--attach {}", names(&others, " or "))
        };
        bail!("cannot attach with {m}: {why}; this kernel can do: {can}");
    }
    // A method that only lacks a capability is the one to name: the others cannot work here.
    if let Some((m, why)) = refused
        .iter()
        .find(|(_, why)| why.starts_with("needs CAP_"))
    {
        bail!("{why} (for --attach {m}; no other attach method works on this kernel: run with --check for details)");
    }
    let why = refused
        .iter()
        .map(|(m, why)| format!("{m}: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    bail!("no attach method works on this kernel ({why}); run with --check for details")
}

pub(crate) fn names(methods: &[Method], sep: &str) -> String {
    methods
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(sep)
}

/// The cheap checks first (they give the clearest reasons), then the real load and attach.
pub(crate) fn try_method<T>(
    hook: &Hook,
    method: Method,
    precheck: Precheck<'_>,
    attempt: Attempt<'_, T>,
) -> Result<T, String> {
    precheck(hook, method)?;
    attempt(method).map_err(|e| format!("{e:#}"))
}

/// Can this kernel possibly do `method` for `hook`? `Err` says why not.
pub fn precheck(hook: &Hook, method: Method) -> Result<(), String> {
    match method {
        Method::Fentry => {
            if !crate::load::btf::kernel_has_btf() {
                return Err(format!(
                    "fentry needs the kernel's own BTF ({}; a --btf file serves CO-RE only)",
                    crate::load::btf::KERNEL_BTF
                ));
            }
            let btf = vmlinux_btf().ok_or("the kernel has no BTF")?;
            for f in hook.functions {
                if btf.type_by_name::<Func>(f).is_none() {
                    return Err(format!("{f} is not in the kernel's BTF"));
                }
            }
            traceable(hook.functions)
        }
        Method::Kprobe => {
            if !Path::new(KPROBE_PMU).exists() {
                return Err(format!(
                    "this kernel has no kprobes (no {KPROBE_PMU}: built without CONFIG_KPROBES)"
                ));
            }
            traceable(hook.functions)
        }
        Method::Tracepoint => {
            crate::load::needs::ensure_tracefs()?;
            for tp in hook.tracepoints {
                if !tracepoint_exists(tp) {
                    return Err(format!("tracepoint {tp} does not exist here"));
                }
            }
            Ok(())
        }
        Method::Uprobe => {
            if Path::new(UPROBE_PMU).exists() {
                Ok(())
            } else {
                Err(format!(
                    "this kernel has no uprobes (no {UPROBE_PMU}: built without CONFIG_UPROBE_EVENTS)"
                ))
            }
        }
    }
}

pub(crate) const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";
pub(crate) const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

fn tracefs() -> Option<&'static str> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .find(|d| Path::new(d).join("events").is_dir())
}

/// Whether tracefs lists `category/name` (e.g. `syscalls/sys_enter_unlink`, absent on arm64).
pub fn tracepoint_exists(tp: &str) -> bool {
    tracefs().is_some_and(|t| Path::new(t).join("events").join(tp).is_dir())
}

/// Functions the kernel can put a trampoline or probe on are listed in
/// available_filter_functions; one missing there was inlined or is marked notrace. When the
/// list cannot be read we let the load decide.
fn traceable(functions: &[&str]) -> Result<(), String> {
    let Some(t) = tracefs() else { return Ok(()) };
    let Ok(list) = std::fs::read_to_string(Path::new(t).join("available_filter_functions")) else {
        return Ok(());
    };
    for f in functions {
        let listed = list.lines().any(|l| l.split_whitespace().next() == Some(f));
        if !listed {
            return Err(format!(
                "{f} cannot be traced here (not in available_filter_functions: inlined or notrace)"
            ));
        }
    }
    Ok(())
}

/// The kernel's BTF, read once: the `--btf` file when one was given, else the kernel's own.
pub fn vmlinux_btf() -> Option<&'static Btf<'static>> {
    struct Shared(Option<Btf<'static>>);
    // SAFETY: the BTF is only read after it has been parsed, and never freed.
    unsafe impl Sync for Shared {}
    // SAFETY: as for Sync: the BTF is read-only once parsed, from any thread.
    unsafe impl Send for Shared {}
    static BTF: OnceLock<Shared> = OnceLock::new();
    BTF.get_or_init(|| {
        Shared(match crate::load::btf::custom_btf() {
            Some(path) => Btf::from_path(path).ok(),
            None => Btf::from_vmlinux().ok(),
        })
    })
    .0
    .as_ref()
}

/// The C type of parameter `index` of kernel function `func` as BTF describes it (`struct
/// filename *`, `const char *`, `int`); `None` if the function or parameter is not in BTF. For
/// functions whose arguments changed type between kernel versions: the tool reads it before
/// load and tells its BPF side (a .rodata flag) how to read the argument.
pub fn param_type(func: &str, index: usize) -> Option<String> {
    let btf = vmlinux_btf()?;
    let f = btf.type_by_name::<Func>(func)?;
    let proto = FuncProto::try_from(f.referenced_type()).ok()?;
    let param = proto.get(index)?;
    let ty = btf.type_by_id::<libbpf_rs::btf::BtfType>(param.ty)?;
    Some(c_type(ty, 0))
}

/// A BTF type written as C, enough to tell argument types apart.
fn c_type(ty: libbpf_rs::btf::BtfType<'_>, depth: u32) -> String {
    let name = || {
        ty.name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let next = |prefix: &str, suffix: &str| match ty.next_type() {
        Some(t) if depth < 8 => format!("{prefix}{}{suffix}", c_type(t, depth + 1)),
        _ => format!("{prefix}void{suffix}"),
    };
    match ty.kind() {
        BtfKind::Ptr => next("", " *"),
        BtfKind::Const => next("const ", ""),
        BtfKind::Volatile => next("volatile ", ""),
        BtfKind::Restrict | BtfKind::TypeTag => next("", ""),
        BtfKind::Struct => format!("struct {}", name()),
        BtfKind::Union => format!("union {}", name()),
        BtfKind::Enum | BtfKind::Enum64 => format!("enum {}", name()),
        BtfKind::Void => "void".into(),
        _ => name(),
    }
}

/// Storage for one skeleton attempt. Every attempt opens its own object; a failed one is closed
/// when its skeleton drops, and its few bytes of storage stay allocated (at most one per method).
pub fn object_storage() -> &'static mut MaybeUninit<OpenObject> {
    Box::leak(Box::new(MaybeUninit::uninit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    static HOOK: Hook = Hook {
        methods: &[Method::Fentry, Method::Kprobe, Method::Tracepoint],
        functions: &["f"],
        tracepoints: &["t/t"],
        optional_tracepoints: &[],
        also_needs: &[],
    };

    #[test]
    fn choice_parses_against_the_tools_own_methods() {
        assert_eq!(parse_choice("t", &HOOK, "auto").unwrap(), Choice::Auto);
        assert_eq!(
            parse_choice("t", &HOOK, "kprobe").unwrap(),
            Choice::Force(Method::Kprobe)
        );
        let err = parse_choice("t", &HOOK, "ebpf").unwrap_err();
        assert_eq!(
            err,
            "'ebpf' is not an attach method of t: give auto, fentry, kprobe, tracepoint"
        );
        // A method the suite knows but this tool has no programs for is not offered.
        assert_eq!(
            parse_choice("t", &HOOK, "uprobe").unwrap_err(),
            "'uprobe' is not an attach method of t: give auto, fentry, kprobe, tracepoint"
        );
    }

    /// Fakes the kernel: only the methods in `works` load.
    fn fake(works: &'static [Method]) -> impl FnMut(Method) -> Result<Method> {
        move |m| {
            if works.contains(&m) {
                Ok(m)
            } else {
                bail!("{m} refused")
            }
        }
    }

    fn no_precheck(_: &Hook, _: Method) -> Result<(), String> {
        Ok(())
    }

    fn pick(choice: Choice, works: &'static [Method]) -> Result<Method> {
        let mut f = fake(works);
        select_with("t", &HOOK, choice, false, &no_precheck, &mut f).map(|(m, _)| m)
    }

    #[test]
    fn best_working_method_wins() {
        assert_eq!(
            pick(Choice::Auto, &[Method::Kprobe, Method::Tracepoint]).unwrap(),
            Method::Kprobe
        );
        assert_eq!(
            pick(Choice::Auto, &[Method::Tracepoint]).unwrap(),
            Method::Tracepoint
        );
        let err = pick(Choice::Auto, &[]).unwrap_err().to_string();
        assert!(err.contains("fentry: fentry refused"), "{err}");
    }

    #[test]
    fn a_forced_method_that_fails_says_why_and_what_works() {
        let err = pick(Choice::Force(Method::Fentry), &[Method::Tracepoint])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cannot attach with fentry: fentry refused; this kernel can do: --attach tracepoint"
        );
        assert_eq!(
            pick(
                Choice::Force(Method::Kprobe),
                &[Method::Kprobe, Method::Tracepoint]
            )
            .unwrap(),
            Method::Kprobe
        );
    }

    #[test]
    fn forcing_a_method_the_tool_lacks_names_the_ones_it_has() {
        let mut f = fake(&[Method::Tracepoint]);
        let err = select("t", &HOOK, Choice::Force(Method::Uprobe), false, &mut f)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no uprobe programs")
                && err.contains("fentry or kprobe or tracepoint"),
            "{err}"
        );
    }
}
