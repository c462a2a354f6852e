//! The cgroup names the BPF side sends (common.bpf.h: `cgroup_names`), kept until a resolver
//! asks for them, and the rule by which cgroups that are gone are forgotten ([`keep`],
//! [`FORGET_INTERVAL`]), shared by these names and the resolvers' attributions: what keeps
//! user space's memory following the cgroups that exist.

use std::collections::HashMap;

use anyhow::Result;
use libbpf_rs::MapCore as _;

use super::hierarchies::Hierarchies;

/// The cgroup names the BPF side sent (common.bpf.h: `cgroup_names`), taken out of the map
/// by [`drain_names`] and kept here, by tagged id, until a [`Resolver`](super::Resolver) asks
/// for them or their cgroup is gone. Process-wide: the map belongs to the loaded skeleton, the resolvers to the
/// tool's output.
struct Mailbox {
    map: Option<libbpf_rs::MapHandle>,
    hierarchies: Option<Hierarchies>,
    /// Path relative to the hierarchy's root (escaped), and when it was last known alive.
    names: HashMap<u64, (String, std::time::Instant)>,
    last_sweep: Option<std::time::Instant>,
}

static MAILBOX: std::sync::LazyLock<std::sync::Mutex<Mailbox>> = std::sync::LazyLock::new(|| {
    std::sync::Mutex::new(Mailbox {
        map: None,
        hierarchies: None,
        names: HashMap::new(),
        last_sweep: None,
    })
});

/// How often the names and attributions of cgroups that are gone are forgotten: a sweep
/// forgets a cgroup not there that was last known alive at least this long ago (so its late
/// events are read first), i.e. between one and two intervals after its removal (the consumer
/// runs the sweeps once a second, whether events come or not).
pub const FORGET_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Names the mailbox holds at most (a guard: the sweep keeps it to cgroups that exist).
const MAILBOX_MAX: usize = 1 << 16;

fn mailbox() -> std::sync::MutexGuard<'static, Mailbox> {
    MAILBOX.lock().unwrap_or_else(|e| e.into_inner())
}

/// After load: where the BPF side puts cgroup names (asked for with `send_cgroup_names`).
pub fn use_names_map(map: &libbpf_rs::MapMut<'_>) -> Result<()> {
    use anyhow::Context;
    let handle = libbpf_rs::MapHandle::try_from(map).context("opening the cgroup names map")?;
    let mut mb = mailbox();
    mb.map = Some(handle);
    mb.hierarchies = Some(Hierarchies::find());
    Ok(())
}

/// Whether the BPF side sends cgroup names in this run (its losses are counted then).
pub fn names_sent() -> bool {
    mailbox().map.is_some()
}

/// Takes every name the BPF side sent out of its map (called on a lookup that misses, and
/// once a second by the consumer, so the map never fills with names of events nobody
/// printed), and forgets the names of cgroups that are gone.
pub fn drain_names() {
    let mut mb = mailbox();
    let Some(map) = mb.map.take() else {
        return;
    };
    let keys: Vec<Vec<u8>> = map.keys().collect();
    for key in keys {
        if let Ok(Some(value)) = map.lookup(&key, libbpf_rs::MapFlags::ANY) {
            let _ = map.delete(&key);
            if let (Ok(id), Some(path)) = (
                key[..].try_into().map(u64::from_ne_bytes),
                name_path(&value),
            ) {
                if mb.names.len() < MAILBOX_MAX {
                    mb.names.insert(id, (path, std::time::Instant::now()));
                }
            }
        }
    }
    mb.map = Some(map);
    let now = std::time::Instant::now();
    if mb
        .last_sweep
        .is_none_or(|t| now.duration_since(t) >= FORGET_INTERVAL)
    {
        mb.last_sweep = Some(now);
        let hierarchies = mb.hierarchies.take().unwrap_or_default();
        mb.names
            .retain(|id, (path, alive)| keep(&hierarchies, *id, path, alive, now));
        mb.hierarchies = Some(hierarchies);
    }
}

/// At a sweep: whether to keep cgroup `id` (notes it alive if it is there); one not there is
/// kept until FORGET_INTERVAL after it was last known alive, for its late events.
pub(super) fn keep(
    hierarchies: &Hierarchies,
    id: u64,
    path: &str,
    alive: &mut std::time::Instant,
    now: std::time::Instant,
) -> bool {
    if hierarchies.exists(id, path) {
        *alive = now;
    }
    now.duration_since(*alive) < FORGET_INTERVAL
}

/// The name the BPF side sent for `id`, taken out of the mailbox.
pub(super) fn take_name(id: u64) -> Option<String> {
    mailbox().names.remove(&id).map(|(path, _)| path)
}

/// How many names wait in the mailbox (for [`super::cgroups_tracked`]).
pub(super) fn waiting() -> usize {
    mailbox().names.len()
}

/// A `struct cgroup_name` (common.bpf.h) as a path from the hierarchy's root: its names, top
/// ancestor first, escaped; `/…` in front when levels above were not read, `…` after a name
/// that was cut.
fn name_path(value: &[u8]) -> Option<String> {
    use crate::skel::common::{
        CGROUP_NAME_CUT, CGROUP_NAME_LEN, CGROUP_NAME_LEVELS, CGROUP_NAME_TRUNCATED,
    };
    let (len, levels) = (CGROUP_NAME_LEN as usize, CGROUP_NAME_LEVELS as usize);
    if value.len() < 8 + len * levels {
        return None;
    }
    let word = |i: usize| u32::from_ne_bytes(value[i..i + 4].try_into().unwrap_or_default());
    let (count, flags) = (word(0) as usize, word(4));
    let mut path = String::new();
    if flags & CGROUP_NAME_TRUNCATED != 0 {
        path.push_str("/…");
    }
    for i in (0..count.min(levels)).rev() {
        let raw = &value[8 + i * len..8 + (i + 1) * len];
        let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(len)];
        path.push('/');
        crate::render::escape::escape_into(&mut path, name);
        if flags & CGROUP_NAME_CUT != 0 && name.len() == len - 1 {
            path.push('…');
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    Some(path)
}
