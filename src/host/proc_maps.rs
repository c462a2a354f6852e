//! /proc/PID/maps, read in one place for every tool: which files a process maps, and where.
//!
//! A line is `start-end perms offset dev inode`, padding, then the path, which runs to the end
//! of the line and may contain spaces. The kernel appends " (deleted)" when the file has been
//! removed since it was mapped, and writes a newline inside a path as `\012`.

use std::path::PathBuf;

/// One file-backed mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// Offset in the file of `start`.
    pub offset: u64,
    /// `r-xp` and the like.
    pub perms: String,
    /// The path as the process saw it when it mapped the file (without " (deleted)").
    pub path: PathBuf,
    /// The file was removed (or replaced) since: `path` no longer names it.
    pub deleted: bool,
}

impl Mapping {
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
}

/// Parses maps text, keeping the file-backed mappings (paths that start with '/'); anonymous
/// memory, `[heap]`, `[stack]`, `[vdso]` and malformed lines are left out.
pub fn parse(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start_matches(' ');
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (word, after) = trimmed.split_at(end);
        rest = after;
        Some(word).filter(|w| !w.is_empty())
    };
    let range = field()?;
    let perms = field()?;
    let offset = field()?;
    let _dev = field()?;
    let _inode = field()?;
    // The path is everything after the padding, spaces included.
    let path = rest.trim_start_matches(' ');
    if !path.starts_with('/') {
        return None;
    }
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        perms: perms.to_string(),
        path: PathBuf::from(path.replace("\\012", "\n")),
        deleted,
    })
}

/// The file-backed mappings of process `pid` (an error if it has gone or cannot be read).
pub fn read(pid: u32) -> std::io::Result<Vec<Mapping>> {
    Ok(parse(&std::fs::read_to_string(format!(
        "/proc/{pid}/maps"
    ))?))
}

/// Each file `maps` names, once, in order of first appearance; deleted files are left out (their
/// path names nothing, or another file).
pub fn files(maps: &[Mapping]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for m in maps.iter().filter(|m| !m.deleted) {
        if !out.contains(&m.path) {
            out.push(m.path.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TEXT: &str =
        "5581c000-5581d000 r-xp 00001000 08:01 123                        /usr/bin/leaky\n\
                        7f00-8f00 rw-p 00000000 00:00 0 \n\
                        7ffd-7ffe rw-p 00000000 00:00 0                          [stack]\n\
                        9000-a000 r-xp 00002000 08:01 9 /tmp/gone (deleted)\n\
                        b000-c000 r-xp 00000000 08:01 9    /lib/with  two spaces.so\n\
                        c000-d000 r--p 00000000 08:01 9 /tmp/new\\012line\n\
                        garbage line\n\
                        e000-f000 r--p 0000zz00 08:01 9 /bad/offset\n\
                        5581d000-5581e000 r--p 00002000 08:01 123 /usr/bin/leaky\n";

    #[test]
    fn fields_of_a_file_backed_mapping() {
        let maps = parse(TEXT);
        assert_eq!(
            maps[0],
            Mapping {
                start: 0x5581c000,
                end: 0x5581d000,
                offset: 0x1000,
                perms: "r-xp".into(),
                path: PathBuf::from("/usr/bin/leaky"),
                deleted: false,
            }
        );
        assert!(maps[0].executable() && maps[0].contains(0x5581c000));
        assert!(!maps[0].contains(0x5581d000));
    }

    #[test]
    fn anonymous_special_and_malformed_lines_are_left_out() {
        let paths: Vec<_> = parse(TEXT).into_iter().map(|m| m.path).collect();
        assert_eq!(
            paths,
            [
                "/usr/bin/leaky",
                "/tmp/gone",
                "/lib/with  two spaces.so",
                "/tmp/new\nline",
                "/usr/bin/leaky"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn deleted_files_are_marked_and_not_listed_as_files() {
        let maps = parse(TEXT);
        assert!(maps[1].deleted && maps[1].path == Path::new("/tmp/gone"));
        assert!(!maps[2].deleted);
        assert_eq!(
            files(&maps),
            [
                "/usr/bin/leaky",
                "/lib/with  two spaces.so",
                "/tmp/new\nline"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn own_maps_name_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let maps = read(std::process::id()).unwrap();
        assert!(
            maps.iter().any(|m| m.path == exe && m.executable()),
            "{maps:?}"
        );
    }
}
