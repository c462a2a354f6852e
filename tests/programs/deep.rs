// The Rust variant of issue 24's program, built as cargo's release profile builds it (opt-level 3,
// no frame pointers): each request leaks a String through main -> serve -> handle_request ->
// store -> the global allocator (malloc). #[inline(never)] and work after each call keep every
// frame. Run: deep_rs [requests]
use std::hint::black_box;

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
}
