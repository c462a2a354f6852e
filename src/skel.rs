//! The skeletons libbpf-cargo generated from `src/bpf/*.bpf.c` (see build.rs), one module a tool.
#![allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unused_parens
)]

macro_rules! skeleton {
    ($name:ident, $file:literal, $defs:literal) => {
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));

            /// The numeric `#define`s of `src/bpf/<tool>.h`, as Rust constants (build.rs: u32, u64
            /// with C's L suffixes, i64 when negative).
            pub mod defs {
                include!(concat!(env!("OUT_DIR"), "/", $defs));
            }
        }
    };
}

// One `skeleton!` line for each src/bpf/<tool>.bpf.c (build.rs, `skeleton_lines`).
include!(concat!(env!("OUT_DIR"), "/skeletons.rs"));

/// The numeric `#define`s of `src/bpf/common.bpf.h` (loss slots), as u32 constants (build.rs).
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.defs.rs"));
}

/// The numeric `#define`s of `src/bpf/user_stack.bpf.h` (the copy of a user stack that
/// kmemleak-lite and uprobe-lat send), as Rust constants (build.rs).
pub mod user_stack {
    include!(concat!(env!("OUT_DIR"), "/user_stack.defs.rs"));
}
