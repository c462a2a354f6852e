//! Which container (and Kubernetes pod) an event came from, without a daemon or a runtime's API.
//!
//! Every event carries its task's cgroup id (`task_cgroup_id` in src/bpf/common.bpf.h). Here that
//! id becomes a cgroup path, once per cgroup, by walking the cgroup file systems found in
//! /proc/self/mounts; the path becomes a container id, runtime and pod uid by the pattern table
//! in [`parse_path`] (docs/containers.md shows it). The table column ([`Resolver::column`]), the
//! JSON fields ([`Resolver::json`]) and the `--container` filter ([`filter_ids`]) all go through
//! this one place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use libbpf_rs::MapCore as _;
use serde::Serialize;

use crate::render::column::Column;

/// Set by the BPF side on the id of a cgroup of the v1 memory hierarchy (a task in the v2 root
/// on a hybrid host); without it, an id is a cgroup v2 id (CGROUP_V1_TAG in common.bpf.h).
pub const V1_TAG: u64 = crate::skel::common::CGROUP_V1_TAG;

/// Directory levels walked below a hierarchy's root (a guard against a pathological tree).
const MAX_SCAN_DEPTH: usize = 32;

/// The runtimes whose cgroup names say who made them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
}

impl Runtime {
    /// The name in `container.runtime`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

/// What a cgroup path says about its tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathInfo {
    /// The full container id (64 hex digits) and, where the name says, the runtime.
    pub container: Option<(Option<Runtime>, String)>,
    /// The Kubernetes pod uid, with dashes.
    pub pod_uid: Option<String>,
    /// Whether the container's own cgroup is the last component (not one of its sub-cgroups).
    pub container_is_leaf: bool,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<prefix><64 hex><suffix>` -> the id.
fn id_between<'a>(name: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let id = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    is_hex64(id).then_some(id)
}

/// The container named by one path component (`parent` is the component above it).
fn container_in(name: &str, parent: &str) -> Option<(Option<Runtime>, String)> {
    const SCOPES: [(&str, Runtime); 4] = [
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("libpod-", Runtime::Podman),
    ];
    for (prefix, runtime) in SCOPES {
        // systemd driver: `<prefix><id>.scope`; Podman's cgroupfs driver: `libpod-<id>`.
        if let Some(id) = id_between(name, prefix, ".scope").or_else(|| {
            (runtime == Runtime::Podman)
                .then(|| id_between(name, prefix, ""))
                .flatten()
        }) {
            return Some((Some(runtime), id.to_string()));
        }
    }
    if is_hex64(name) {
        // cgroupfs driver: `/docker/<id>`; the kubelet's cgroupfs driver: `.../pod<uid>/<id>`
        // (the runtime is not in the name there).
        let runtime = (parent == "docker").then_some(Runtime::Docker);
        return Some((runtime, name.to_string()));
    }
    None
}

/// A pod uid as the kubelet writes it: a UUID, or 32 hex digits (a static pod's config hash).
fn pod_uid(raw: &str) -> Option<String> {
    let uid = raw.replace('_', "-");
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = uid.split('-').collect();
    let uuid = parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| hex(p));
    (uuid || (uid.len() == 32 && hex(&uid))).then_some(uid)
}

/// The pod named by one component: `kubepods[-<qos>]-pod<uid_with_underscores>.slice`
/// (systemd driver) or `pod<uid>` below `kubepods` (cgroupfs driver).
fn pod_in(name: &str, under_kubepods: bool) -> Option<String> {
    if let Some(rest) = name
        .strip_prefix("kubepods-")
        .and_then(|r| r.strip_suffix(".slice"))
    {
        let uid = rest.rsplit_once("pod").map(|(_, uid)| uid)?;
        return pod_uid(uid);
    }
    if under_kubepods {
        return name.strip_prefix("pod").and_then(pod_uid);
    }
    None
}

/// What a cgroup path (relative to its hierarchy's root, e.g.
/// `/system.slice/docker-<id>.scope`) says: the deepest component that names a container, and
/// any component that names a pod. (The deepest wins: a container's sub-cgroups, or a container
/// inside a container, are shown as the innermost.)
pub fn parse_path(path: &str) -> PathInfo {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut info = PathInfo::default();
    let mut under_kubepods = false;
    for (i, name) in parts.iter().enumerate() {
        if let Some(uid) = pod_in(name, under_kubepods) {
            info.pod_uid = Some(uid);
        }
        under_kubepods |= *name == "kubepods" || name.starts_with("kubepods.");
        let parent = if i > 0 { parts[i - 1] } else { "" };
        if let Some(c) = container_in(name, parent) {
            info.container = Some(c);
            info.container_is_leaf = i + 1 == parts.len();
        }
    }
    info
}

/// The cgroup file systems this host has mounted: where to map ids back to paths.
#[derive(Clone, Debug, Default)]
pub struct Hierarchies {
    /// The cgroup v2 mount (found in /proc/self/mounts: hybrid hosts mount it at
    /// /sys/fs/cgroup/unified, not /sys/fs/cgroup).
    pub v2: Option<PathBuf>,
    /// The v1 memory hierarchy's mount and its hierarchy number (as /proc/PID/cgroup shows it).
    pub v1_memory: Option<(PathBuf, u32)>,
}

impl Hierarchies {
    /// Finds them in /proc/self/mounts and /proc/cgroups.
    pub fn find() -> Self {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
        Self::parse(&mounts, &cgroups)
    }

    fn parse(mounts: &str, cgroups: &str) -> Self {
        let mut h = Hierarchies::default();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [_, dir, fstype, opts, ..] = f[..] else {
                continue;
            };
            // Mount points with spaces are written as \040: not where cgroups live; skip them.
            if fstype == "cgroup2" && h.v2.is_none() {
                h.v2 = Some(PathBuf::from(dir));
            } else if fstype == "cgroup"
                && h.v1_memory.is_none()
                && opts.split(',').any(|o| o == "memory")
            {
                let number = cgroups
                    .lines()
                    .find_map(|l| {
                        let mut c = l.split_whitespace();
                        (c.next()? == "memory").then(|| c.next()?.parse().ok())?
                    })
                    .unwrap_or(0);
                h.v1_memory = Some((PathBuf::from(dir), number));
            }
        }
        h
    }

    /// A one-line error where no cgroup file system is mounted to find containers in.
    pub fn require(&self) -> Result<()> {
        if self.v2.is_none() && self.v1_memory.is_none() {
            bail!("cannot tell containers apart: no cgroup v2 file system and no cgroup v1 memory hierarchy is mounted (see `grep cgroup /proc/mounts`): mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup`");
        }
        Ok(())
    }

    /// Whether cgroup `id` (tagged) is still at `path` (relative to its hierarchy's root):
    /// ids are never reused, so a directory there with another id is another cgroup.
    pub fn exists(&self, id: u64, path: &str) -> bool {
        use std::os::unix::fs::MetadataExt;
        let root = if id & V1_TAG != 0 {
            self.v1_memory.as_ref().map(|(root, _)| root)
        } else {
            self.v2.as_ref()
        };
        root.and_then(|r| std::fs::metadata(r.join(path.trim_start_matches('/'))).ok())
            .is_some_and(|m| m.ino() == id & !V1_TAG)
    }

    /// Every cgroup directory: (tagged id, path relative to its hierarchy's root, escaped).
    pub fn scan(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        if let Some(root) = &self.v2 {
            scan_tree(root, 0, &mut out);
        }
        if let Some((root, _)) = &self.v1_memory {
            scan_tree(root, V1_TAG, &mut out);
        }
        out
    }
}

/// Walks one hierarchy; a directory's inode number is its cgroup (kernfs) id.
fn scan_tree(root: &Path, tag: u64, out: &mut Vec<(u64, String)>) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{DirEntryExt, MetadataExt};
    let Ok(meta) = std::fs::metadata(root) else {
        return;
    };
    out.push((meta.ino() | tag, "/".to_string()));
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue; // gone since its parent was read
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let mut path = rel.clone();
            path.push('/');
            crate::render::escape::escape_into(&mut path, entry.file_name().as_bytes());
            out.push((entry.ino() | tag, path.clone()));
            if depth + 1 < MAX_SCAN_DEPTH {
                stack.push((entry.path(), path, depth + 1));
            }
        }
    }
}

/// The cgroup names the BPF side sent (common.bpf.h: `cgroup_names`), taken out of the map
/// by [`drain_names`] and kept here, by tagged id, until a [`Resolver`] asks for them or their
/// cgroup is gone. Process-wide: the map belongs to the loaded skeleton, the resolvers to the
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

/// Cgroups every [`Resolver`] of this process holds now.
static RESOLVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many cgroups user space remembers now (resolved, or named and waiting): it follows the
/// cgroups that exist, as those gone are forgotten (see [`FORGET_INTERVAL`]). The exposition's
/// `coretrace_cgroups_tracked` gauge.
pub fn cgroups_tracked() -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    RESOLVED.load(Relaxed) + mailbox().names.len() as u64
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
fn keep(
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
fn take_name(id: u64) -> Option<String> {
    mailbox().names.remove(&id).map(|(path, _)| path)
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

/// One cgroup, resolved: what the column and the JSON fields show.
#[derive(Debug)]
struct Attribution {
    id: u64,
    /// `0::/path` (v2) or `N:memory:/path` (v1), as /proc/PID/cgroup writes it; None when the
    /// cgroup was gone before it could be looked up.
    cgroup: Option<String>,
    container: Option<(Option<Runtime>, String)>,
    pod_uid: Option<String>,
    /// The table cell: the short container id, else the path, else `id:<n>`.
    cell: String,
    /// The path relative to the hierarchy's root, to tell whether the cgroup is gone.
    path: Option<String>,
    /// When the cgroup was last known to be there (see [`FORGET_INTERVAL`]).
    alive: std::time::Instant,
}

/// The JSON fields of an event's cgroup, flattened into each tool's record; a field without a
/// value is left out, except the id.
#[derive(Serialize, Debug)]
pub struct CgroupFields<'a> {
    #[serde(rename = "container.id", skip_serializing_if = "Option::is_none")]
    pub container_id: Option<&'a str>,
    #[serde(rename = "container.runtime", skip_serializing_if = "Option::is_none")]
    pub runtime: Option<&'static str>,
    #[serde(rename = "k8s.pod.uid", skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<&'a str>,
    #[serde(
        rename = "process.linux.cgroup",
        skip_serializing_if = "Option::is_none"
    )]
    pub cgroup: Option<&'a str>,
    #[serde(rename = "coretrace.cgroup.id")]
    pub cgroup_id: u64,
}

/// Turns cgroup ids into attributions, each looked up once: a new id costs one walk of the
/// cgroup file systems, every later event with it one hash lookup.
pub struct Resolver {
    hierarchies: Hierarchies,
    /// Every id seen and not gone, resolved.
    known: HashMap<u64, Attribution>,
    /// The last walk's directories, by id (ids the kernel never reuses, so they stay valid);
    /// dropped at each sweep.
    paths: HashMap<u64, String>,
    /// When the last sweep was, and lookups since it was checked for.
    last_sweep: std::time::Instant,
    lookups: u32,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new(Hierarchies::find())
    }
}

impl Resolver {
    pub fn new(hierarchies: Hierarchies) -> Self {
        Resolver {
            hierarchies,
            known: HashMap::new(),
            paths: HashMap::new(),
            last_sweep: std::time::Instant::now(),
            lookups: 0,
        }
    }

    /// The table column: `CONTAINER`, the short id (12 hex digits, as `docker ps` shows it) or
    /// the cgroup path.
    pub fn header() -> Column {
        Column::left("CONTAINER", 12)
    }

    /// The table cell for cgroup `id` (as the BPF side sent it).
    pub fn column(&mut self, id: u64) -> &String {
        &self.get(id).cell
    }

    /// The JSON fields for cgroup `id`.
    pub fn json(&mut self, id: u64) -> CgroupFields<'_> {
        let a = self.get(id);
        CgroupFields {
            container_id: a.container.as_ref().map(|(_, id)| id.as_str()),
            runtime: a.container.as_ref().and_then(|(r, _)| r.map(Runtime::name)),
            pod_uid: a.pod_uid.as_deref(),
            cgroup: a.cgroup.as_deref(),
            cgroup_id: a.id,
        }
    }

    /// The cgroup id process `pid` is in now, chosen as the BPF side chooses (its v2 cgroup,
    /// or its v1 memory cgroup where it sits in the v2 root), from /proc/PID/cgroup: for a tool
    /// that reports on one process as a whole (kmemleak-lite -p). None if it is gone.
    pub fn pid_cgroup(&self, pid: u32) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let (mut v2, mut memory) = (None, None);
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            if controllers.is_empty() {
                v2 = Some(path);
            } else if controllers.split(',').any(|c| c == "memory") {
                memory = Some(path);
            }
        }
        let ino = |root: &Path, path: &str| {
            std::fs::metadata(root.join(path.trim_start_matches('/')))
                .ok()
                .map(|m| m.ino())
        };
        if let (Some((root, _)), Some(path), None | Some("/")) =
            (&self.hierarchies.v1_memory, memory, v2)
        {
            if path != "/" {
                return ino(root, path).map(|i| i | V1_TAG);
            }
        }
        ino(self.hierarchies.v2.as_deref()?, v2?)
    }

    /// How many cgroups it holds (for tests and the soak benchmark's figures).
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    fn get(&mut self, id: u64) -> &Attribution {
        self.lookups = self.lookups.wrapping_add(1);
        if self.lookups.is_multiple_of(1024) || !self.known.contains_key(&id) {
            self.sweep();
        }
        if !self.known.contains_key(&id) {
            drain_names();
            let a = match take_name(id) {
                Some(path) => self.attribute(id, Some(path)),
                None => {
                    if !self.paths.contains_key(&id) {
                        // New since the last walk (or gone, and its name never sent: then
                        // it is shown by number).
                        self.paths = self.hierarchies.scan().into_iter().collect();
                    }
                    self.attribute(id, self.paths.get(&id).cloned())
                }
            };
            self.known.insert(id, a);
            RESOLVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        &self.known[&id]
    }

    /// Every [`FORGET_INTERVAL`]: forgets the cgroups found gone at this sweep and the one
    /// before (one never found, shown by number, goes too), and the last walk. Run on lookups
    /// and, by the consumer, once a second (so that an idle tool forgets too).
    pub fn sweep(&mut self) {
        if self.last_sweep.elapsed() < FORGET_INTERVAL {
            return;
        }
        let now = std::time::Instant::now();
        self.last_sweep = now;
        self.paths = HashMap::new();
        let hierarchies = &self.hierarchies;
        let before = self.known.len();
        self.known.retain(|id, a| match a.path.as_deref() {
            Some(path) => keep(hierarchies, *id, path, &mut a.alive, now),
            None => now.duration_since(a.alive) < FORGET_INTERVAL,
        });
        let gone = (before - self.known.len()) as u64;
        RESOLVED.fetch_sub(gone, std::sync::atomic::Ordering::Relaxed);
        self.known.shrink_to_fit();
    }

    fn attribute(&self, id: u64, path: Option<String>) -> Attribution {
        let bare = id & !V1_TAG;
        let Some(path) = path else {
            return Attribution {
                id: bare,
                cgroup: None,
                container: None,
                pod_uid: None,
                cell: format!("id:{bare}"),
                path: None,
                alive: std::time::Instant::now(),
            };
        };
        let info = parse_path(&path);
        let cgroup = if id & V1_TAG != 0 {
            let number = self.hierarchies.v1_memory.as_ref().map_or(0, |(_, n)| *n);
            format!("{number}:memory:{path}")
        } else {
            format!("0::{path}")
        };
        let cell = match &info.container {
            Some((_, cid)) => cid[..12].to_string(),
            None => path.clone(),
        };
        Attribution {
            id: bare,
            cgroup: Some(cgroup),
            container: info.container,
            pod_uid: info.pod_uid,
            cell,
            path: Some(path),
            alive: std::time::Instant::now(),
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let n = self.known.len() as u64;
        RESOLVED.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `--container ID-PREFIX`: the cgroups (tagged ids) of the one container whose id starts with
/// `prefix`, for the BPF filter (which also takes their sub-cgroups); a one-line error when no
/// container, or more than one, matches.
pub fn filter_ids(hierarchies: &Hierarchies, prefix: &str) -> Result<Vec<u64>> {
    hierarchies.require()?;
    let prefix = prefix.to_ascii_lowercase();
    let dirs = hierarchies.scan();
    let mut containers: HashMap<String, Vec<u64>> = HashMap::new();
    for (id, path) in &dirs {
        let info = parse_path(path);
        if let Some((_, cid)) = info.container {
            if cid.starts_with(&prefix) && info.container_is_leaf {
                containers.entry(cid).or_default().push(*id);
            }
        }
    }
    let mut names: Vec<&String> = containers.keys().collect();
    names.sort();
    match names.len() {
        0 => bail!(
            "no container's id starts with '{prefix}' (no cgroup here is named like a Docker, containerd, CRI-O or Podman container with that id): check the id with `docker ps` (or `crictl ps`, `podman ps`)"
        ),
        1 => {}
        n => {
            let shown: Vec<String> = names.iter().take(4).map(|c| c[..12].to_string()).collect();
            bail!(
                "the container id prefix '{prefix}' is ambiguous: {n} containers match ({}{}): give more digits",
                shown.join(", "),
                if n > 4 { ", ..." } else { "" }
            );
        }
    }
    let chosen = names[0].clone();
    let ids = containers.remove(&chosen).unwrap_or_default();
    if ids.len() > CONTAINER_FILTER_SLOTS {
        bail!(
            "container {} has {} cgroups of its own, more than the {CONTAINER_FILTER_SLOTS} the kernel-side filter holds: filter by its cgroup with -c instead",
            &chosen[..12],
            ids.len()
        );
    }
    Ok(ids)
}

/// `--pod UID-PREFIX`: the cgroups (tagged ids, v2 and v1 memory) of the one Kubernetes pod
/// whose uid starts with `prefix` (dashes or underscores alike). The pod's cgroup is the
/// ancestor of all its containers, so the kernel's ancestor walk (`container_wanted`) passes
/// every container of the pod, including those started or restarted after the tool.
pub fn pod_filter_ids(hierarchies: &Hierarchies, prefix: &str) -> Result<Vec<u64>> {
    hierarchies.require()?;
    let prefix = prefix.replace('_', "-").to_ascii_lowercase();
    let mut pods: HashMap<String, Vec<u64>> = HashMap::new();
    for (id, path) in hierarchies.scan() {
        let info = parse_path(&path);
        let Some(uid) = info.pod_uid else { continue };
        // The pod's own cgroup: its last component names the pod (not a container below it).
        let last = path.rsplit('/').next().unwrap_or_default();
        let own = pod_in(last, true).is_some_and(|u| u == uid) && info.container.is_none();
        if own && uid.starts_with(&prefix) {
            pods.entry(uid).or_default().push(id);
        }
    }
    let mut uids: Vec<&String> = pods.keys().collect();
    uids.sort();
    match uids.len() {
        0 => bail!(
            "no Kubernetes pod's uid starts with '{prefix}' (no cgroup here is named like a kubelet pod cgroup with that uid): check it with `kubectl get pod NAME -o jsonpath='{{.metadata.uid}}'` (or `crictl pods -o json`)"
        ),
        1 => {}
        n => {
            let shown: Vec<&str> = uids.iter().take(4).map(|u| u.as_str()).collect();
            bail!(
                "the pod uid prefix '{prefix}' is ambiguous: {n} pods match ({}{}): give more digits",
                shown.join(", "),
                if n > 4 { ", ..." } else { "" }
            );
        }
    }
    let chosen = uids[0].clone();
    Ok(pods.remove(&chosen).unwrap_or_default())
}

/// A pod uid prefix as users type it: hex digits and dashes (or the kubelet's underscores).
pub fn parse_pod_prefix(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 36
        && s.bytes().any(|b| b.is_ascii_hexdigit())
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    if !ok {
        return Err(format!(
            "'{s}' is not a pod uid: give its first characters, as `kubectl get pod NAME -o jsonpath='{{.metadata.uid}}'` shows it (e.g. 0c5b2e1a-7f3d)"
        ));
    }
    Ok(s.replace('_', "-").to_ascii_lowercase())
}

/// The kernel-side filters `-c` and `--container` ask for, ready to load.
#[derive(Debug, Default)]
pub struct CgroupFilter {
    /// `-c`: the open cgroup v2 directory.
    pub dir: Option<std::fs::File>,
    /// `--container` or `--pod`: the container's, or the pod's, cgroup ids (tagged).
    pub container: Vec<u64>,
    /// Whether every event's cgroup is shown (`--json`, `--print-container`): then the BPF
    /// side sends each cgroup's name when it first sees it (`send_cgroup_names`).
    pub names: bool,
}

impl CgroupFilter {
    /// For the `.rodata` flag `filter_cgroup`.
    pub fn by_cgroup(&self) -> bool {
        self.dir.is_some()
    }

    /// For the `.rodata` flag `filter_container`.
    pub fn by_container(&self) -> bool {
        !self.container.is_empty()
    }

    /// After load: fills the `cgroup_filter` and `container_filter` maps (common.bpf.h).
    pub fn fill(
        &self,
        cgroup_map: &dyn libbpf_rs::MapCore,
        container_map: &dyn libbpf_rs::MapCore,
    ) -> Result<()> {
        use anyhow::Context;
        if let Some(dir) = &self.dir {
            crate::host::cgroupfs::fill_cgroup_filter(cgroup_map, dir)?;
        }
        for id in &self.container {
            container_map
                .update(&id.to_ne_bytes(), &[1], libbpf_rs::MapFlags::ANY)
                .context("setting the container filter")?;
        }
        Ok(())
    }
}

/// Entries of the BPF `container_filter` map (common.bpf.h).
const CONTAINER_FILTER_SLOTS: usize = 64;

/// A container id prefix as users type it: 1 to 64 hex digits.
pub fn parse_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "'{s}' is not a container id: give its first hex digits, as `docker ps` shows them (e.g. 3f2a1b9c4d5e)"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a1b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

    fn container(path: &str) -> Option<(Option<&'static str>, String)> {
        parse_path(path)
            .container
            .map(|(r, id)| (r.map(Runtime::name), id))
    }

    #[test]
    fn docker_systemd_and_cgroupfs_drivers() {
        let want = Some((Some("docker"), ID.to_string()));
        assert_eq!(container(&format!("/system.slice/docker-{ID}.scope")), want);
        assert_eq!(container(&format!("/docker/{ID}")), want);
        // A sub-cgroup of a container (systemd inside it) is still that container's.
        let sub = parse_path(&format!("/system.slice/docker-{ID}.scope/init.scope"));
        assert_eq!(sub.container.unwrap().1, ID);
        assert!(!sub.container_is_leaf);
    }

    #[test]
    fn containerd_crio_podman() {
        assert_eq!(
            container(&format!("/system.slice/cri-containerd-{ID}.scope")),
            Some((Some("containerd"), ID.to_string()))
        );
        assert_eq!(
            container(&format!("/machine.slice/crio-{ID}.scope")),
            Some((Some("cri-o"), ID.to_string()))
        );
        // CRI-O's monitor process is not the container.
        assert_eq!(
            container(&format!("/machine.slice/crio-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            container(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
            )),
            Some((Some("podman"), ID.to_string()))
        );
        assert_eq!(
            container(&format!("/libpod_parent/libpod-{ID}")),
            Some((Some("podman"), ID.to_string()))
        );
    }

    #[test]
    fn kubernetes_pods_systemd_driver() {
        let info = parse_path(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c5b2e1a_7f3d_4c8e_9a6b_2d1e0f9c8b7a.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(
            info.pod_uid.as_deref(),
            Some("0c5b2e1a-7f3d-4c8e-9a6b-2d1e0f9c8b7a")
        );
        assert_eq!(info.container.unwrap().0, Some(Runtime::Containerd));
        // Guaranteed QoS: no class in the slice name.
        let info = parse_path(&format!(
            "/kubepods.slice/kubepods-pod0c5b2e1a_7f3d_4c8e_9a6b_2d1e0f9c8b7a.slice/crio-{ID}.scope"
        ));
        assert_eq!(
            info.pod_uid.as_deref(),
            Some("0c5b2e1a-7f3d-4c8e-9a6b-2d1e0f9c8b7a")
        );
    }

    #[test]
    fn kubernetes_pods_cgroupfs_driver() {
        let info = parse_path(&format!(
            "/kubepods/besteffort/pod0c5b2e1a-7f3d-4c8e-9a6b-2d1e0f9c8b7a/{ID}"
        ));
        assert_eq!(
            info.pod_uid.as_deref(),
            Some("0c5b2e1a-7f3d-4c8e-9a6b-2d1e0f9c8b7a")
        );
        assert_eq!(info.container, Some((None, ID.to_string())));
        // A static pod: its uid is the manifest's hash.
        let info = parse_path("/kubepods/pod6a4f8b6d5d2f5e6b5c2a1b0e9f8d7c6b");
        assert_eq!(
            info.pod_uid.as_deref(),
            Some("6a4f8b6d5d2f5e6b5c2a1b0e9f8d7c6b")
        );
        // `pod...` outside kubepods is someone else's name.
        assert_eq!(
            parse_path("/system.slice/pod0c5b2e1a-7f3d-4c8e-9a6b-2d1e0f9c8b7a").pod_uid,
            None
        );
    }

    #[test]
    fn plain_cgroups_name_no_container() {
        for path in [
            "/",
            "/system.slice/ssh.service",
            "/user.slice/user-1000.slice/session-3.scope",
            "/docker",
            "/system.slice/docker.service",
            "/system.slice/docker-3f2a.scope",
        ] {
            assert_eq!(parse_path(path), PathInfo::default(), "{path}");
        }
    }

    #[test]
    fn hybrid_mounts_are_found() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
            cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
            cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        let cgroups =
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t4\t20\t1\n";
        let h = Hierarchies::parse(mounts, cgroups);
        assert_eq!(h.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(
            h.v1_memory,
            Some((PathBuf::from("/sys/fs/cgroup/memory"), 4))
        );
        assert!(Hierarchies::parse("", "").require().is_err());
    }

    #[test]
    fn unknown_ids_are_shown_by_number() {
        let mut r = Resolver::new(Hierarchies::default());
        assert_eq!(r.column(12345), "id:12345");
        let json = serde_json::to_string(&r.json(V1_TAG | 77)).unwrap();
        assert_eq!(json, r#"{"coretrace.cgroup.id":77}"#);
    }

    #[test]
    fn a_process_cgroup_is_chosen_as_the_kernel_chooses() {
        // This test's own process: whatever this host's layout, the path shown must be the
        // line of /proc/self/cgroup for the hierarchy the id was taken from.
        let hierarchies = Hierarchies::find();
        let mut r = Resolver::new(hierarchies.clone());
        let id = r.pid_cgroup(std::process::id());
        if hierarchies.require().is_err() {
            assert_eq!(id, None, "no cgroup file system mounted: nothing to map");
            return;
        }
        let id = id.expect("this process's cgroup directory");
        let fields = serde_json::to_value(r.json(id)).unwrap();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let shown = fields["process.linux.cgroup"].as_str().unwrap().to_string();
        let (_, path) = shown.split_once(':').unwrap();
        assert!(
            own.lines()
                .any(|l| l.split_once(':').map(|(_, rest)| rest) == Some(path)),
            "{shown} not in {own}"
        );
        assert!(r.pid_cgroup(u32::MAX - 1).is_none());
    }

    /// A directory tree standing in for a cgroup v2 mount (ids are inode numbers either way).
    fn fake_hierarchy(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("coretrace-cgroups-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn ino(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().ino()
    }

    #[test]
    fn ids_resolve_once_new_cgroups_are_found_and_gone_ones_stay_unknown() {
        let root = fake_hierarchy("resolve");
        let scope = root.join(format!("system.slice/docker-{ID}.scope"));
        std::fs::create_dir_all(&scope).unwrap();
        let mut r = Resolver::new(Hierarchies {
            v2: Some(root.clone()),
            v1_memory: None,
        });
        assert_eq!(r.column(ino(&scope)), &ID[..12]);
        let json = serde_json::to_value(r.json(ino(&scope))).unwrap();
        assert_eq!(json["container.id"], ID);
        assert_eq!(json["container.runtime"], "docker");
        assert_eq!(
            json["process.linux.cgroup"],
            format!("0::/system.slice/docker-{ID}.scope")
        );
        // Made after the first walk: found by the next one.
        let plain = root.join("system.slice/cron.service");
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(r.column(ino(&plain)), "/system.slice/cron.service");
        // Gone: the scope's attribution stays (ids are never reused); one never seen before
        // it went is unknown, by number.
        let brief = root.join("brief.scope");
        std::fs::create_dir(&brief).unwrap();
        let (brief_id, scope_id) = (ino(&brief), ino(&scope));
        std::fs::remove_dir(&brief).unwrap();
        std::fs::remove_dir(&scope).unwrap();
        assert_eq!(r.column(scope_id), &ID[..12]);
        assert_eq!(r.column(brief_id), &format!("id:{brief_id}"));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn prefixes_are_hex() {
        assert_eq!(parse_prefix("3F2A").unwrap(), "3f2a");
        assert!(parse_prefix("").is_err());
        assert!(parse_prefix("xyz").unwrap_err().contains("docker ps"));
        assert!(parse_prefix(&"a".repeat(65)).is_err());
    }
}
