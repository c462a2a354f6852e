//! How a process ended, from the kernel's `task_struct.exit_code` (a wait status):
//! `code N`, `signal N (NAME)`, `core dumped`. Shared by execsnoop -d and exitsnoop.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ExitStatus {
    /// The exit code, when the process exited (rather than being killed).
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    pub signal_name: Option<&'static str>,
    pub core_dumped: bool,
}

impl ExitStatus {
    pub fn from_wait_status(status: i32) -> Self {
        let sig = status & 0x7f;
        if sig == 0 {
            ExitStatus {
                exit_code: Some((status >> 8) & 0xff),
                signal: None,
                signal_name: None,
                core_dumped: false,
            }
        } else {
            ExitStatus {
                exit_code: None,
                signal: Some(sig),
                signal_name: signal_name(sig),
                core_dumped: status & 0x80 != 0,
            }
        }
    }

    /// Exited with a non-zero code, or by a signal.
    pub fn failed(&self) -> bool {
        self.exit_code != Some(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        match (self.exit_code, self.signal) {
            (Some(code), _) => s.push_str(&format!("code {code}")),
            (None, Some(sig)) => {
                s.push_str(&format!("signal {sig}"));
                if let Some(name) = self.signal_name {
                    s.push_str(&format!(" ({name})"));
                }
                if self.core_dumped {
                    s.push_str(", core dumped");
                }
            }
            (None, None) => s.push('?'),
        }
        f.pad(&s)
    }
}

/// `SIGKILL` for 9; `None` for numbers without a name (real-time signals, out of range).
pub fn signal_name(sig: i32) -> Option<&'static str> {
    nix::sys::signal::Signal::try_from(sig)
        .ok()
        .map(|s| s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code() {
        let s = ExitStatus::from_wait_status(7 << 8);
        assert_eq!(s.to_string(), "code 7");
        assert!(s.failed());
        assert!(!ExitStatus::from_wait_status(0).failed());
    }

    #[test]
    fn killed_by_signal() {
        assert_eq!(
            ExitStatus::from_wait_status(9).to_string(),
            "signal 9 (SIGKILL)"
        );
        assert_eq!(
            ExitStatus::from_wait_status(11 | 0x80).to_string(),
            "signal 11 (SIGSEGV), core dumped"
        );
        assert_eq!(signal_name(libc::SIGPWR), Some("SIGPWR"));
        assert_eq!(signal_name(libc::SIGRTMIN()), None);
        assert_eq!(signal_name(0), None);
    }
}
