// The Rust variant of issue 24's program, built as cargo's release profile builds it (opt-level 3,
// no frame pointers): each request leaks a String through main -> serve -> handle_request ->
// store -> the global allocator (malloc). #[inline(never)] and work after each call keep every
// frame.
// Build: rustc --crate-name deep --edition 2021 -C opt-level=3 -C strip=debuginfo -o deep_rs deep_rs.rs
// Run: deep_rs [requests [marker]]: with a marker, it says "deep: leaked" on stdout once
// it has leaked, then stays until the file MARKER exists (at most 60 s), so that a test can let
// the tool read its maps while it is there.
use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

#[inline(never)]
fn store(kept: &mut Vec<String>, i: usize) {
    kept.push("x".repeat(40 + i % 8));
    black_box(&kept);
}

#[inline(never)]
fn handle_request(kept: &mut Vec<String>, i: usize) {
    store(kept, i);
    black_box(i);
}

#[inline(never)]
fn serve(kept: &mut Vec<String>, requests: usize) {
    for i in 0..requests {
        handle_request(kept, black_box(i));
    }
    black_box(&kept);
}

fn main() {
    let requests = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut kept = Vec::with_capacity(requests);
    serve(&mut kept, requests);
    std::mem::forget(black_box(kept));
    if let Some(marker) = std::env::args().nth(2) {
        println!("deep: leaked");
        std::io::stdout().flush().unwrap();
        for _ in 0..6000 {
            if std::path::Path::new(&marker).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
