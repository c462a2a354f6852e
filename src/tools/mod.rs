//! One module per tool: its options, its skeleton set-up, and how it renders its events.

pub mod execsnoop;
pub mod exitsnoop;
