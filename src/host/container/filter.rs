//! The kernel-side filters: `-c` (a cgroup directory), `--container` and `--pod` (id
//! prefixes, matched against the cgroups found by walking the hierarchies), turned into the
//! ids and flags common.bpf.h's filter maps take; and the prefixes' parsers, with their
//! one-line errors.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::hierarchies::Hierarchies;
use super::pattern::{parse_path, pod_in};

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

    #[test]
    fn prefixes_are_hex() {
        assert_eq!(parse_prefix("3F2A").unwrap(), "3f2a");
        assert!(parse_prefix("").is_err());
        assert!(parse_prefix("xyz").unwrap_err().contains("docker ps"));
        assert!(parse_prefix(&"a".repeat(65)).is_err());
    }
}
