//! Rendering event fields for people, shared by every tool's table and JSON output: untrusted
//! text made safe for a terminal ([`escape`]), kernel timestamps as wall-clock or relative time
//! ([`clock`]), errno names ([`errno`]), how a process ended ([`exit_status`]), and the table
//! columns the cells line up in ([`column`]).

pub mod clock;
pub mod column;
pub mod errno;
pub mod escape;
pub mod exit_status;
