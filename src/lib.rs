//! coretrace: CO-RE eBPF tracing tools. Each tool is a BPF program in `src/bpf/` plus a module in
//! [`tools`]. The shared code is grouped by where an event is on its way to the user:
//!
//! - [`cli`]: the command line; which tool runs (multicall) and the options every tool shares.
//! - [`load`]: loading the tool's BPF side: skeletons, host checks and set-up, attach strategy.
//! - [`consumer`]: carrying events from the kernel: the shared consumer, transport, losses.
//! - [`host`]: what tools read off the machine to enrich an event (containers, /proc maps).
//! - [`render`]: turning event fields into text for people (escaping, time, errno, exit status).
//! - [`output`]: the sinks: table, JSON lines and their schema, histograms, metrics.

pub mod cli;
pub mod consumer;
pub mod host;
pub mod load;
pub mod multicall;
pub mod output;
pub mod render;
pub mod skel;
pub mod tools;
