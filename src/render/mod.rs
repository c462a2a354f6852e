//! Rendering event fields for people, shared by every tool's table and JSON output: untrusted
//! text made safe for a terminal ([`escape`]), kernel timestamps as wall-clock or relative time
//! ([`clock`]), errno names ([`errno`]) and how a process ended ([`exit_status`]).

pub mod clock;
pub mod errno;
pub mod escape;
pub mod exit_status;
