//! The skeletons libbpf-cargo generated from `src/bpf/*.bpf.c` (see build.rs), one module a tool.
#![allow(
    clippy::all,
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

skeleton!(execsnoop, "execsnoop.skel.rs", "execsnoop.defs.rs");
skeleton!(exitsnoop, "exitsnoop.skel.rs", "exitsnoop.defs.rs");
skeleton!(
    kmemleak_lite,
    "kmemleak_lite.skel.rs",
    "kmemleak_lite.defs.rs"
);
skeleton!(unlinksnoop, "unlinksnoop.skel.rs", "unlinksnoop.defs.rs");
skeleton!(uprobe_lat, "uprobe_lat.skel.rs", "uprobe_lat.defs.rs");

/// The numeric `#define`s of `src/bpf/common.bpf.h` (loss slots), as u32 constants (build.rs).
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.defs.rs"));
}
