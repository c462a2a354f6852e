//! `--check`: what this kernel offers every tool (BTF, transports, attach methods), what one
//! tool needs and would use, and whether it can run here, as a table or one JSON object. The
//! answer is the kernel's: each attach method is really loaded and attached (see
//! [`super::attach`] for the strategy itself).

use std::path::Path;

use anyhow::{bail, Result};
use libbpf_rs::btf::types::Func;
use libbpf_rs::libbpf_sys;
use serde::Serialize;

use crate::load::attach::{
    names, precheck, try_method, vmlinux_btf, Attempt, Choice, Hook, Method, KPROBE_PMU, UPROBE_PMU,
};
use crate::load::needs::Needs;

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
    needs: &Needs,
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
    needs: &Needs,
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
    let host = Host::probe(hook, needs);
    let (version, why) = needs.min_kernel();
    let mut reason = host.obstacle(tool, version, why);
    let tried = Tried::methods(hook, choice, reason.is_none(), attempt);
    if reason.is_none() && tried.would_use.is_none() {
        reason = Some(tried.why_none(hook, choice));
    }
    let report = CheckReport {
        kernel: crate::host::system::kernel_description(),
        ring_buffer: host.known(&host.ringbuf),
        attach_cookies: host.known(&host.cookies),
        transport: host.transport.as_ref().ok().map(|c| c.transport.name()),
        transport_why: match &host.transport {
            Ok(c) => c.why.clone(),
            Err(e) => e.clone(),
        },
        features: host.features,
        tool: tool.to_string(),
        // A buffer to carry events (`transport`: the ring buffer, else the perf buffer) is
        // what the kernel must offer; the rest of the minimum is the helpers every program
        // calls.
        min_kernel: MinKernel {
            version,
            why,
            needs: vec!["transport"],
        },
        hooks: hook_needs(hook),
        privileges: host.privileges,
        methods: tried.methods,
        would_use: tried.would_use.filter(|_| reason.is_none()),
        path: path.filter(|_| reason.is_none()),
        ok: reason.is_none(),
        reason: reason.clone(),
    };
    let out = match json {
        true => serde_json::to_string(&report)? + "\n",
        false => report.text(),
    };
    use std::io::Write as _;
    std::io::stdout().write_all(out.as_bytes())?;
    std::io::stdout().flush()?;
    match reason {
        Some(why) => bail!("{why}"),
        None => Ok(()),
    }
}

/// What the host offers, probed: privileges first (without them, probing proves nothing).
struct Host {
    privileges: Feature,
    /// BTF, ring buffer, attach cookies, fentry, kprobes, tracepoints, uprobes.
    features: Vec<Feature>,
    ringbuf: Result<String, String>,
    cookies: Result<String, String>,
    transport: Result<crate::consumer::transport::Chosen, String>,
}

impl Host {
    fn probe(hook: &Hook, needs: &Needs) -> Host {
        let privileges = Feature::new("privileges", crate::load::needs::check_privileges(needs));
        // Tracepoints need tracefs; mounting it is what the tool itself would do.
        let tracefs = crate::load::needs::ensure_tracefs().map(|dir| format!("tracefs at {dir}"));
        // Probing creates a map and loads a program: without the privileges it proves nothing.
        let ok = privileges.ok;
        let probe = |f: fn() -> Result<String, String>| match ok {
            true => f(),
            false => Err("not probed (needs the privileges below)".to_string()),
        };
        let ringbuf = probe(crate::consumer::transport::ringbuf_probe);
        let cookies = probe(crate::load::needs::attach_cookie_probe);
        let features = vec![
            Feature::new("BTF", crate::load::btf::check_btf()),
            Feature::new("ring buffer", ringbuf.clone()),
            Feature::new("attach cookies", cookies.clone()),
            Feature::new("fentry/fexit", fentry_state(hook)),
            Feature::new("kprobes", kprobe_state()),
            Feature::new("tracepoints", tracefs),
            Feature::new("uprobes", uprobe_state()),
        ];
        let transport = match ok {
            true => crate::consumer::transport::current(),
            false => Err("not probed (needs the privileges below)".to_string()),
        };
        Host {
            privileges,
            features,
            ringbuf,
            cookies,
            transport,
        }
    }

    /// A probe's answer, where it could be asked (null in JSON where it could not).
    fn known(&self, probe: &Result<String, String>) -> Option<bool> {
        self.privileges.ok.then_some(probe.is_ok())
    }

    /// The first obstacle to running `tool` here, if any: it is the reason `--check` gives.
    fn obstacle(&self, tool: &str, version: &str, why: &str) -> Option<String> {
        if !self.privileges.ok {
            return Some(self.privileges.detail.clone());
        }
        if let Some(f) = self.features.iter().find(|f| f.name == "BTF" && !f.ok) {
            return Some(f.detail.clone());
        }
        if let Err(e) = &self.transport {
            return Some(e.clone());
        }
        crate::load::needs::check_kernel_features()
            .err()
            .map(|e| format!("{e}: {tool} needs Linux {version} or later ({why})"))
    }
}

/// The attach methods tried, in the hook's order.
struct Tried {
    methods: Vec<Feature>,
    /// The first that works of those `choice` allows.
    would_use: Option<Method>,
    /// Those `choice` allows that failed, with why.
    refused: Vec<(Method, String)>,
}

impl Tried {
    /// Loads and attaches each method (none when `go` is false: an obstacle came first).
    fn methods<T>(hook: &Hook, choice: Choice, go: bool, attempt: Attempt<'_, T>) -> Tried {
        let mut tried = Tried {
            methods: Vec::new(),
            would_use: None,
            refused: Vec::new(),
        };
        for &m in hook.methods {
            let wanted = match choice {
                Choice::Auto => true,
                Choice::Force(f) => f == m,
            };
            let result = match go {
                true => try_method(hook, m, &precheck, attempt).map(drop),
                false => Err("not tried (see below)".to_string()),
            };
            match &result {
                Ok(()) if wanted && tried.would_use.is_none() => tried.would_use = Some(m),
                Err(why) if wanted => tried.refused.push((m, why.clone())),
                _ => {}
            }
            tried.methods.push(Feature::new(
                m.name(),
                result.map(|()| format!("works: {}", hook.targets(m))),
            ));
        }
        tried
    }

    /// Why no method can be used, when none worked.
    fn why_none(&self, hook: &Hook, choice: Choice) -> String {
        match choice {
            Choice::Force(m) => {
                let can: Vec<Method> = hook
                    .methods
                    .iter()
                    .zip(&self.methods)
                    .filter(|(_, f)| f.ok)
                    .map(|(m, _)| *m)
                    .collect();
                let can = match can.is_empty() {
                    true => "none of the others either".to_string(),
                    false => format!("--attach {}", names(&can, " or ")),
                };
                let why = self.refused.first().map_or("", |(_, why)| why.as_str());
                format!("cannot attach with {m}: {why}; this kernel can do: {can}")
            }
            Choice::Auto => match self
                .refused
                .iter()
                .find(|(_, w)| w.starts_with("needs CAP_"))
            {
                // A method that only lacks a capability is the one to name.
                Some((m, w)) => {
                    format!("{w} (for --attach {m}; no other attach method works here)")
                }
                None => {
                    let why = self
                        .refused
                        .iter()
                        .map(|(m, why)| format!("{m}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    format!("no attach method works here ({why})")
                }
            },
        }
    }
}

/// Each of the hook's methods, with what the kernel must offer for it.
fn hook_needs(hook: &Hook) -> Vec<HookNeeds> {
    hook.methods
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
        .collect()
}

impl CheckReport {
    /// The report as the table `--check` prints without `--json`.
    fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let row = |out: &mut String, f: &Feature| {
            let _ = writeln!(out, "  {:<14} {:<3}  {}", f.name, yes(f.ok), f.detail);
        };
        let _ = writeln!(out, "kernel: {}", self.kernel);
        for f in &self.features {
            row(&mut out, f);
        }
        // The kernel matrix reads this line's prefix: "transport: ring buffer" or "perf buffer".
        let _ = writeln!(
            out,
            "transport: {} ({})",
            self.transport.unwrap_or("none"),
            self.transport_why
        );
        let _ = writeln!(out, "{}:", self.tool);
        let have = self.ring_buffer.map_or("?", yes);
        let _ = writeln!(
            out,
            "  {:<14} {:<3}  Linux {} or later: {} ({})",
            "needs",
            have,
            self.min_kernel.version,
            self.min_kernel.needs.join(", ").replace('_', " "),
            self.min_kernel.why
        );
        let hooks: Vec<String> = self
            .hooks
            .iter()
            .map(|h| format!("{} ({})", h.method, h.needs))
            .collect();
        let _ = writeln!(out, "  hooks:        {}", hooks.join(", "));
        row(&mut out, &self.privileges);
        for f in &self.methods {
            row(&mut out, f);
        }
        let _ = match (self.would_use, &self.path) {
            (Some(m), Some(path)) => writeln!(out, "  would use:    {m} ({path})"),
            (Some(m), None) => writeln!(out, "  would use:    {m}"),
            (None, _) => writeln!(out, "  would use:    nothing"),
        };
        out
    }
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "no"
    }
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
    // SAFETY: bpf_insn is a plain C struct of integers, for which all zeros is valid.
    let mut insns: [libbpf_sys::bpf_insn; 2] = unsafe { std::mem::zeroed() };
    insns[0].code = 0xb7; // r0 = 0
    insns[1].code = 0x95; // exit
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: libbpf_sys::BPF_TRACE_FENTRY,
        attach_btf_id: id.into(),
        ..Default::default()
    };
    // SAFETY: the names are NUL-terminated literals, `insns` and `opts` live across the call, and the count is `insns`' length.
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
    // SAFETY: `fd` is the program fd the load above returned, closed once.
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
