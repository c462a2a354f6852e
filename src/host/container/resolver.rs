//! The resolver: an event's cgroup id turned into what the table column and the JSON fields
//! show (container, runtime, pod, cgroup path), looked up once per cgroup and forgotten once
//! the cgroup is gone.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::hierarchies::Hierarchies;
use super::names::{drain_names, keep, take_name, FORGET_INTERVAL};
use super::pattern::{parse_path, Runtime};
use super::V1_TAG;
use crate::render::column::Column;

/// Cgroups every [`Resolver`] of this process holds now.
static RESOLVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many cgroups user space remembers now (resolved, or named and waiting): it follows the
/// cgroups that exist, as those gone are forgotten (see [`FORGET_INTERVAL`]). The exposition's
/// `coretrace_cgroups_tracked` gauge.
pub fn cgroups_tracked() -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    RESOLVED.load(Relaxed) + super::names::waiting() as u64
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const ID: &str = "3f2a1b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

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
}
