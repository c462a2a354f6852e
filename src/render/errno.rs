//! Errno names (`ENOENT`) for results the kernel reports as `-errno`: what users grep for and
//! what `strace` shows. The names and numbers are nix's `Errno` for the target.

use std::fmt::{self, Write};

use nix::errno::Errno;
use serde::{Serialize, Serializer};

/// The name of an errno, as `strace` prints it: shown with `{}`, serialized as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrnoName(Errno);

impl fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // nix names its variants after the C constants, so Debug is the name.
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for ErrnoName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `ENOENT` for 2; `None` for numbers Linux does not define.
pub fn name(errno: i32) -> Option<ErrnoName> {
    match Errno::from_raw(errno) {
        Errno::UnknownErrno => None,
        e => Some(ErrnoName(e)),
    }
}

/// A syscall-style result as users read it: `0`, `ENOENT`, or the number when it has no name.
pub fn result_text(ret: i32, out: &mut String) {
    let _ = match name(ret.saturating_neg()) {
        Some(n) if ret < 0 => write!(out, "{n}"),
        _ => write!(out, "{ret}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_libc() {
        let name = |e| name(e).map(|n| n.to_string());
        assert_eq!(name(libc::ENOENT).as_deref(), Some("ENOENT"));
        assert_eq!(name(libc::EISDIR).as_deref(), Some("EISDIR"));
        assert_eq!(name(libc::ENOTEMPTY).as_deref(), Some("ENOTEMPTY"));
        assert_eq!(name(libc::EROFS).as_deref(), Some("EROFS"));
        assert_eq!(name(libc::EOWNERDEAD).as_deref(), Some("EOWNERDEAD"));
        assert_eq!(name(libc::EHWPOISON).as_deref(), Some("EHWPOISON"));
        assert_eq!(name(0), None);
        assert_eq!(name(41), None);
        assert_eq!(name(500), None);
        assert_eq!(
            serde_json::to_string(&super::name(libc::EACCES)).unwrap(),
            "\"EACCES\""
        );
    }

    #[test]
    fn results_read_like_strace() {
        let mut s = String::new();
        result_text(-2, &mut s);
        s.push(' ');
        result_text(0, &mut s);
        s.push(' ');
        result_text(-512, &mut s);
        assert_eq!(s, "ENOENT 0 -512");
    }
}
