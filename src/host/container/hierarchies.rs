//! The cgroup file systems of this host: found in /proc/self/mounts (v2, and v1's memory
//! hierarchy on a hybrid host), walked to map cgroup ids (directory inode numbers) back to
//! paths, and asked whether a cgroup is still there.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::V1_TAG;

/// Directory levels walked below a hierarchy's root (a guard against a pathological tree).
const MAX_SCAN_DEPTH: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
