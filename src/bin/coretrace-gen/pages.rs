//! What every tool's man page says alike. What a page says of one tool (its description,
//! requirements, output fields, cost and exit statuses) is that tool's `TOOL.page`
//! (`coretrace::tools::Page`, in the tool's module); `coretrace-gen` adds NAME, SYNOPSIS,
//! OPTIONS and EXAMPLES from the tool's command line.

/// What every tool needs from the kernel: its minimum version (`load::needs::MIN_KERNEL`, as
/// `--check` and the README say), BTF, and the events transport.
pub fn kernel() -> String {
    let (version, why) = coretrace::load::needs::MIN_KERNEL;
    format!(
        "Linux {version} or later ({why}), with BTF (/sys/kernel/btf/vmlinux, \
         CONFIG_DEBUG_INFO_BTF=y, or a BTF file given with --btf); no kernel headers and no \
         compiler. Events travel in a BPF ring buffer where the kernel has one (5.8), else in a \
         perf buffer. If tracefs is not mounted, the tool mounts it, which needs CAP_SYS_ADMIN \
         once. Run the tool with --check first on an unfamiliar host: it prints what the kernel \
         offers and exits 1 with the reason when the tool cannot run."
    )
}

pub const SHARED_EXIT: &[(&str, &str)] = &[
    ("0", "Success (also when stdout is a pipe that was closed, as in TOOL | head)."),
    ("1", "An error, printed as one line naming the problem and the fix; with --check: the tool cannot run here."),
    ("2", "A usage error: an unknown option or an invalid value."),
    ("3", "With --fail-on-loss: events were lost (the causes are printed at exit either way)."),
];

/// The variables every tool reads.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("CORETRACE_BTF", "The kernel's types from this BTF file, as --btf gives them."),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "Export over OTLP/HTTP (protobuf) to this base URL, as --otlp-endpoint does (which overrides it): logs to URL/v1/logs, metrics to URL/v1/metrics. http:// only: https is refused (send to a local OpenTelemetry Collector, which can forward over TLS)."),
    ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "The full URL of one signal; either alone exports that signal only."),
    ("OTEL_EXPORTER_OTLP_HEADERS", "Headers sent with every request: key1=value1,key2=value2, values percent-encoded."),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "Milliseconds an export may take, retries included (default 10000); what is not sent in time counts as lost (otlp_endpoint_down)."),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "Only http/protobuf is supported; anything else is refused."),
    ("OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME", "Resource attributes added to (or overriding) service.name=coretrace, service.version, host.name and coretrace.tool."),
];
