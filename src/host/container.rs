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
    /// Every id seen, resolved, and where in `known` it is.
    known: Vec<Attribution>,
    index: HashMap<u64, usize>,
    /// The last id asked for and its index: a storm from one cgroup needs no hashing at all.
    last: Option<(u64, usize)>,
    /// The last walk's directories, by id (ids the kernel never reuses, so they stay valid).
    paths: HashMap<u64, String>,
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
            known: Vec::new(),
            index: HashMap::new(),
            last: None,
            paths: HashMap::new(),
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

    fn get(&mut self, id: u64) -> &Attribution {
        if let Some((last, i)) = self.last {
            if last == id {
                return &self.known[i];
            }
        }
        let i = match self.index.get(&id) {
            Some(&i) => i,
            None => {
                if !self.paths.contains_key(&id) {
                    // New since the last walk (or gone: then it stays unknown, and is not
                    // looked for again).
                    self.paths = self.hierarchies.scan().into_iter().collect();
                }
                let a = self.attribute(id);
                self.known.push(a);
                self.index.insert(id, self.known.len() - 1);
                self.known.len() - 1
            }
        };
        self.last = Some((id, i));
        &self.known[i]
    }

    fn attribute(&self, id: u64) -> Attribution {
        let bare = id & !V1_TAG;
        let Some(path) = self.paths.get(&id) else {
            return Attribution {
                id: bare,
                cgroup: None,
                container: None,
                pod_uid: None,
                cell: format!("id:{bare}"),
            };
        };
        let info = parse_path(path);
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
        }
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

/// The kernel-side filters `-c` and `--container` ask for, ready to load.
#[derive(Debug, Default)]
pub struct CgroupFilter {
    /// `-c`: the open cgroup v2 directory.
    pub dir: Option<std::fs::File>,
    /// `--container`: the container's cgroup ids (tagged).
    pub container: Vec<u64>,
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
