//! When a run ends: Ctrl-C, SIGTERM, SIGHUP, or the `--timeout` deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::Result;

static SIGNALLED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

#[derive(Debug, Clone)]
pub struct Stop {
    deadline: Option<Instant>,
}

impl Stop {
    /// Installs the signal handler (once per process) and starts the clock for `timeout`.
    pub fn install(timeout: Option<Duration>) -> Result<Stop> {
        let mut result = Ok(());
        INSTALL.call_once(|| {
            result = ctrlc::set_handler(|| SIGNALLED.store(true, Ordering::SeqCst));
        });
        result.map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
        Ok(Stop {
            deadline: timeout.map(|t| Instant::now() + t),
        })
    }

    /// The same stop with its clock started now: a tool's `--timeout` (uprobe-lat's `-d`)
    /// counts from when tracing has started, not from before a slow load or attach.
    pub fn timed(&self, timeout: Option<Duration>) -> Stop {
        Stop {
            deadline: timeout.map(|t| Instant::now() + t),
        }
    }

    /// Ends the run from inside the tool, as Ctrl-C would (e.g. the traced command exited).
    pub fn request(&self) {
        SIGNALLED.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        SIGNALLED.load(Ordering::SeqCst) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}
