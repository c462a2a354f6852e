//! Which container (and Kubernetes pod) an event came from, without a daemon or a runtime's API.
//!
//! Every event carries its task's cgroup id (`task_cgroup_id` in src/bpf/common.bpf.h). Here that
//! id becomes a cgroup path, once per cgroup, by walking the cgroup file systems found in
//! /proc/self/mounts; the path becomes a container id, runtime and pod uid by the pattern table
//! in [`parse_path`] (docs/containers.md shows it). The table column ([`Resolver::column`]), the
//! JSON fields ([`Resolver::json`]) and the `--container` filter ([`filter_ids`]) all go through
//! this one place.
//!
//! By concern: `pattern` reads a cgroup path (which runtime, container, pod), `hierarchies`
//! finds and walks the cgroup file systems, `names` keeps the cgroup names the BPF side sends
//! and the rule that forgets cgroups that are gone, `resolver` turns an event's cgroup id into
//! its column and JSON fields, and `filter` turns `-c`, `--container` and `--pod` into the
//! kernel-side filters. What other modules use is re-exported here, so they name
//! `host::container::X` whichever file holds X.

mod filter;
mod hierarchies;
mod names;
mod pattern;
mod resolver;

pub use filter::{filter_ids, parse_pod_prefix, parse_prefix, pod_filter_ids, CgroupFilter};
pub use hierarchies::Hierarchies;
pub use names::{drain_names, names_sent, use_names_map, FORGET_INTERVAL};
pub use pattern::{parse_path, PathInfo, Runtime};
pub use resolver::{cgroups_tracked, CgroupFields, Resolver};

/// Set by the BPF side on the id of a cgroup of the v1 memory hierarchy (a task in the v2 root
/// on a hybrid host); without it, an id is a cgroup v2 id (CGROUP_V1_TAG in common.bpf.h).
pub const V1_TAG: u64 = crate::skel::common::CGROUP_V1_TAG;
