//! The pattern table: what a cgroup path (relative to its hierarchy's root) says about its
//! tasks: the container (Docker, containerd, CRI-O, Podman, by each runtime's naming under the
//! systemd and cgroupfs drivers) and the Kubernetes pod. Pure string work, no I/O, so that the
//! table is tested on its own (docs/containers.md shows it).

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
pub(super) fn pod_in(name: &str, under_kubepods: bool) -> Option<String> {
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
}
