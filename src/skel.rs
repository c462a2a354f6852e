//! The skeletons libbpf-cargo generated from `src/bpf/*.bpf.c` (see build.rs), one module a tool.
#![allow(
    clippy::all,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]

macro_rules! skeleton {
    ($name:ident, $file:literal) => {
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        }
    };
}

skeleton!(execsnoop, "execsnoop.skel.rs");
skeleton!(exitsnoop, "exitsnoop.skel.rs");
skeleton!(kmemleak_lite, "kmemleak_lite.skel.rs");
skeleton!(unlinksnoop, "unlinksnoop.skel.rs");
skeleton!(uprobe_lat, "uprobe_lat.skel.rs");
