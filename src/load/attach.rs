//! The suite's attach strategy, in one place. A tool's hook declares the methods it can use, in
//! order of preference (fentry/fexit, kprobe/kretprobe, tracepoint, uprobe); we check what the
//! running kernel offers, try the methods in turn (loading and attaching for real: the kernel is
//! the only reliable judge), and keep the first that works. `--attach METHOD` forces one, and
//! `--check` reports what this kernel offers and what the tool would use.
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
use libbpf_rs::{libbpf_sys, Btf, OpenObject};
use serde::Serialize;

use crate::load::setup;

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
    fn targets(&self, method: Method) -> String {
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

fn names(methods: &[Method], sep: &str) -> String {
    methods
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(sep)
}

/// The cheap checks first (they give the clearest reasons), then the real load and attach.
fn try_method<T>(
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

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";
const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

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

/// One line of `--check`.
#[derive(Serialize)]
struct Feature {
    name: &'static str,
    ok: bool,
    detail: String,
}

impl Feature {
    fn new(name: &'static str, result: Result<String, String>) -> Self {
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        Feature { name, ok, detail }
    }
}

/// One attach method of a tool, and what it needs (see `Method::needs`).
#[derive(Serialize)]
struct HookNeeds {
    method: Method,
    needs: String,
}

/// The oldest kernel a tool runs on, and the kernel features that set it.
#[derive(Serialize)]
struct MinKernel {
    version: &'static str,
    why: &'static str,
    /// The probed features (top-level fields of the report) the tool cannot run without.
    needs: Vec<&'static str>,
}

#[derive(Serialize)]
struct CheckReport {
    kernel: String,
    features: Vec<Feature>,
    /// BPF_MAP_TYPE_RINGBUF can be created (5.8): events travel through it where it can,
    /// else through a perf buffer (see `transport`). (null: not probed, for want of privileges)
    ring_buffer: Option<bool>,
    /// A uprobe program may call bpf_get_attach_cookie() (5.15): uprobe-lat uses it where
    /// the kernel has it (see `path`).
    attach_cookies: Option<bool>,
    /// What events would travel in ("ring buffer" or "perf buffer", see
    /// `consumer::transport`), and why; null where none can be chosen (see `reason`).
    transport: Option<&'static str>,
    transport_why: String,
    tool: String,
    min_kernel: MinKernel,
    /// The tool's attach methods, best first, each with what the kernel must offer for it.
    hooks: Vec<HookNeeds>,
    /// The capabilities (and tracefs access) the tool needs here, checked.
    privileges: Feature,
    methods: Vec<Feature>,
    would_use: Option<Method>,
    /// Which of the tool's own ways of using `would_use` it would take, where it has several
    /// (uprobe-lat: with attach cookies or without).
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// Whether the tool can run here with `would_use`; if not, `reason` says why.
    ok: bool,
    reason: Option<String>,
}

/// `--check`: what this kernel offers, and what `tool` would use, printed as a table or as one
/// JSON object. Each method is really loaded and attached by `attempt` (then detached), with
/// what the tool would load, so "yes" means the tool runs. Fails (exit status 1, the reason
/// on stderr's last line) when the tool cannot run here: privileges, a kernel feature it
/// needs, or no attach method that works.
pub fn check<T>(
    tool: &str,
    hook: &Hook,
    choice: Choice,
    json: bool,
    needs: &crate::load::needs::Needs,
    attempt: Attempt<'_, T>,
) -> Result<()> {
    check_path(tool, hook, choice, json, needs, None, attempt)
}

/// `check`, for a tool that also says which of its ways of using the method it would take
/// (`path`, shown after "would use" and as `"path"` in JSON; `attempt` tries that one).
pub fn check_path<T>(
    tool: &str,
    hook: &Hook,
    choice: Choice,
    json: bool,
    needs: &crate::load::needs::Needs,
    path: Option<String>,
    attempt: Attempt<'_, T>,
) -> Result<()> {
    if let Choice::Force(m) = choice {
        if !hook.methods.contains(&m) {
            bail!(
                "--attach {m}: this tool has no {m} programs; give --attach {}",
                names(hook.methods, " or ")
            );
        }
    }
    let privileges = Feature::new("privileges", crate::load::needs::check_privileges(needs));
    // Tracepoints need tracefs; mounting it is what the tool itself would do.
    let tracefs_state = crate::load::needs::ensure_tracefs().map(|dir| format!("tracefs at {dir}"));
    // Probing creates a map and loads a program: without the privileges it proves nothing.
    let probe = |f: fn() -> Result<String, String>| match privileges.ok {
        true => f(),
        false => Err("not probed (needs the privileges below)".to_string()),
    };
    let ringbuf = probe(crate::consumer::transport::ringbuf_probe);
    let cookies = probe(crate::load::needs::attach_cookie_probe);
    let known = |r: &Result<String, String>| privileges.ok.then_some(r.is_ok());
    let (ring_buffer, attach_cookies) = (known(&ringbuf), known(&cookies));
    let features = vec![
        Feature::new("BTF", crate::load::btf::check_btf()),
        Feature::new("ring buffer", ringbuf),
        Feature::new("attach cookies", cookies),
        Feature::new("fentry/fexit", fentry_state(hook)),
        Feature::new("kprobes", kprobe_state()),
        Feature::new("tracepoints", tracefs_state),
        Feature::new("uprobes", uprobe_state()),
    ];
    let transport = match privileges.ok {
        true => crate::consumer::transport::current(),
        false => Err("not probed (needs the privileges below)".to_string()),
    };
    let (version, why) = needs.min_kernel();
    // A buffer to carry events (`transport`: the ring buffer, else the perf buffer) is what
    // the kernel must offer; the rest of the minimum is the helpers every program calls.
    let required = vec!["transport"];
    // The first obstacle is the reason; without the privileges, nothing is loaded.
    let mut reason = if !privileges.ok {
        Some(privileges.detail.clone())
    } else if let Some(f) = features.iter().find(|f| f.name == "BTF" && !f.ok) {
        Some(f.detail.clone())
    } else if let Err(e) = &transport {
        Some(e.clone())
    } else if let Err(e) = crate::load::needs::check_kernel_features() {
        Some(format!(
            "{e}: {tool} needs Linux {version} or later ({why})"
        ))
    } else {
        None
    };
    let mut methods = Vec::new();
    let mut would_use = None;
    let mut refused: Vec<(Method, String)> = Vec::new();
    for &m in hook.methods {
        let wanted = match choice {
            Choice::Auto => true,
            Choice::Force(f) => f == m,
        };
        let result = if reason.is_some() {
            Err("not tried (see below)".to_string())
        } else {
            try_method(hook, m, &precheck, attempt).map(drop)
        };
        match &result {
            Ok(()) if wanted && would_use.is_none() => would_use = Some(m),
            Err(why) if wanted => refused.push((m, why.clone())),
            _ => {}
        }
        methods.push(Feature::new(
            m.name(),
            result.map(|()| format!("works: {}", hook.targets(m))),
        ));
    }
    if reason.is_none() && would_use.is_none() {
        let why = refused
            .iter()
            .map(|(m, why)| format!("{m}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        reason = Some(match choice {
            Choice::Force(m) => {
                let can: Vec<Method> = hook
                    .methods
                    .iter()
                    .zip(&methods)
                    .filter(|(_, f)| f.ok)
                    .map(|(m, _)| *m)
                    .collect();
                let can = match can.is_empty() {
                    true => "none of the others either".to_string(),
                    false => format!("--attach {}", names(&can, " or ")),
                };
                let why = refused.first().map_or("", |(_, why)| why.as_str());
                format!("cannot attach with {m}: {why}; this kernel can do: {can}")
            }
            Choice::Auto => match refused.iter().find(|(_, w)| w.starts_with("needs CAP_")) {
                // A method that only lacks a capability is the one to name.
                Some((m, w)) => {
                    format!("{w} (for --attach {m}; no other attach method works here)")
                }
                None => format!("no attach method works here ({why})"),
            },
        });
    }
    let report = CheckReport {
        kernel: kernel_release(),
        features,
        ring_buffer,
        attach_cookies,
        transport: transport.as_ref().ok().map(|c| c.transport.name()),
        transport_why: match &transport {
            Ok(c) => c.why.clone(),
            Err(e) => e.clone(),
        },
        tool: tool.to_string(),
        min_kernel: MinKernel {
            version,
            why,
            needs: required,
        },
        hooks: hook
            .methods
            .iter()
            .map(|&method| HookNeeds {
                method,
                needs: std::iter::once(method.needs())
                    .chain(
                        hook.also_needs
                            .iter()
                            .filter(|(m, _)| *m == method)
                            .map(|(_, needs)| *needs),
                    )
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        privileges,
        methods,
        would_use: if reason.is_none() { would_use } else { None },
        path: if reason.is_none() { path } else { None },
        ok: reason.is_none(),
        reason: reason.clone(),
    };
    let mut out = String::new();
    if json {
        out = serde_json::to_string(&report)?;
        out.push('\n');
    } else {
        use std::fmt::Write as _;
        let row = |out: &mut String, f: &Feature| {
            let _ = writeln!(out, "  {:<14} {:<3}  {}", f.name, yes(f.ok), f.detail);
        };
        let _ = writeln!(out, "kernel: {}", report.kernel);
        for f in &report.features {
            row(&mut out, f);
        }
        // The kernel matrix reads this line's prefix: "transport: ring buffer" or "perf buffer".
        let _ = writeln!(
            out,
            "transport: {} ({})",
            report.transport.unwrap_or("none"),
            report.transport_why
        );
        let _ = writeln!(out, "{tool}:");
        let have = match report.ring_buffer {
            Some(ring) => yes(ring),
            None => "?",
        };
        let _ = writeln!(
            out,
            "  {:<14} {:<3}  Linux {version} or later: {} ({why})",
            "needs",
            have,
            report.min_kernel.needs.join(", ").replace('_', " ")
        );
        let hooks: Vec<String> = report
            .hooks
            .iter()
            .map(|h| format!("{} ({})", h.method, h.needs))
            .collect();
        let _ = writeln!(out, "  hooks:        {}", hooks.join(", "));
        row(&mut out, &report.privileges);
        for f in &report.methods {
            row(&mut out, f);
        }
        let _ = match (report.would_use, &report.path) {
            (Some(m), Some(path)) => writeln!(out, "  would use:    {m} ({path})"),
            (Some(m), None) => writeln!(out, "  would use:    {m}"),
            (None, _) => writeln!(out, "  would use:    nothing"),
        };
    }
    use std::io::Write as _;
    std::io::stdout().write_all(out.as_bytes())?;
    std::io::stdout().flush()?;
    match reason {
        Some(why) => bail!("{why}"),
        None => Ok(()),
    }
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "no"
    }
}

fn kernel_release() -> String {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let field =
        |f: &[libc::c_char]| crate::render::escape::escaped(crate::render::escape::c_str_bytes(f));
    format!(
        "{} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.machine)
    )
}

/// Loads a two-instruction fentry program on a function every kernel has (or on the hook's own).
fn fentry_state(hook: &Hook) -> Result<String, String> {
    if !crate::load::btf::kernel_has_btf() {
        return Err(format!(
            "needs the kernel's own BTF ({})",
            crate::load::btf::KERNEL_BTF
        ));
    }
    let btf = vmlinux_btf().ok_or("needs kernel BTF")?;
    let (func, id) = ["vfs_read", "vfs_write"]
        .iter()
        .chain(hook.functions)
        .find_map(|f| btf.type_by_name::<Func>(f).map(|t| (*f, t.type_id())))
        .ok_or("no known function in the kernel's BTF to probe with")?;
    let mut insns: [libbpf_sys::bpf_insn; 2] = unsafe { std::mem::zeroed() };
    insns[0].code = 0xb7; // r0 = 0
    insns[1].code = 0x95; // exit
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: libbpf_sys::BPF_TRACE_FENTRY,
        attach_btf_id: id.into(),
        ..Default::default()
    };
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_TRACING,
            c"probe_fentry".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        return Err(format!(
            "the kernel refused a fentry program on {func}: {}",
            std::io::Error::from_raw_os_error(-fd)
        ));
    }
    unsafe { libc::close(fd) };
    Ok(format!("a fentry program on {func} loaded"))
}

fn kprobe_state() -> Result<String, String> {
    if Path::new(KPROBE_PMU).exists() {
        Ok(KPROBE_PMU.to_string())
    } else {
        Err(format!(
            "no {KPROBE_PMU}: the kernel is built without CONFIG_KPROBES"
        ))
    }
}

fn uprobe_state() -> Result<String, String> {
    if Path::new(UPROBE_PMU).exists() {
        Ok(UPROBE_PMU.to_string())
    } else {
        Err(format!(
            "no {UPROBE_PMU}: the kernel is built without CONFIG_UPROBE_EVENTS"
        ))
    }
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
