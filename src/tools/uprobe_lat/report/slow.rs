//! The rows of calls slower than --slower-than (and with --stack, their stacks).

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::Report;
use crate::host::container::CgroupFields;
use crate::output::histogram::human_ns;
use crate::output::schema::{event, Attrs, Header};
use crate::render::escape::{c_str_bytes, escape_into, escaped};
use crate::skel::uprobe_lat::defs::CALL_STACK;
use crate::skel::uprobe_lat::types::call_event;
use crate::tools::uprobe_lat::stack::StackJson;

/// One call slower than --slower-than.
#[derive(Serialize)]
struct SlowJson<'a> {
    #[serde(flatten)]
    head: Header,
    #[serde(flatten)]
    attrs: Attrs<'a>,
    binary: &'a str,
    latency_ns: u64,
    #[serde(flatten)]
    cgroup: CgroupFields<'a>,
    #[serde(flatten)]
    stack: Option<StackJson<'a>>,
}

impl Report<'_> {
    /// Prints one slow call: its row (and with --stack its stack under it), or its record.
    pub(super) fn slow_call(&mut self, e: &call_event) -> Result<()> {
        let Some(probe) = self.probes.get(e.func_id as usize) else {
            return Ok(());
        };
        let comm = c_str_bytes(&e.comm);
        let name = &self.names[e.func_id as usize];
        // --stack: the call's stack, None if its copy was lost.
        let stack = match &mut self.stacks {
            Some(st) if e.flags & CALL_STACK != 0 => Some(st.take(e.pid, e.tid)),
            Some(_) => Some(None),
            None => None,
        };
        if self.sink.is_json() {
            let rec = SlowJson {
                head: Header::new(event::SLOW_CALL, self.table.clock.rfc3339(e.ts)),
                attrs: Attrs {
                    pid: Some(e.pid),
                    tid: Some(e.tid),
                    comm: Some(escaped(comm)),
                    function: Some(name),
                    ..Default::default()
                },
                binary: &probe.binary,
                latency_ns: e.lat_ns,
                cgroup: self.table.containers.json(e.cgroup_id),
                stack: stack.as_ref().map(|s| StackJson::of(s.as_ref())),
            };
            return Ok(self.sink.json(&rec)?);
        }
        self.comm_text.clear();
        escape_into(&mut self.comm_text, comm);
        self.lat_text.clear();
        let _ = write!(self.lat_text, "{}", human_ns(e.lat_ns as f64));
        let own: [&dyn std::fmt::Display; 3] = [&e.pid, &e.tid, &self.comm_text];
        let tail: [&dyn std::fmt::Display; 2] = [name, &self.lat_text];
        self.table
            .row(&mut self.sink, e.ts, e.cgroup_id, &own, &tail)?;
        if let (Some(st), Some(stack)) = (&self.stacks, stack) {
            self.lat_text.clear();
            st.text(stack.as_ref(), &mut self.lat_text);
            self.sink.writer().write_all(self.lat_text.as_bytes())?;
        }
        Ok(())
    }
}
