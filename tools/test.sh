#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, lints, unit and integration tests (which load
# real BPF programs and watch real processes: run as root), the Debian package installed and
# run beside libbpf-tools (tests/install/run.sh), the reproducible-build check
# (tools/repro.sh, which reuses the package's build), the arm64 build (Debian's own rustc,
# cross), then the kernel matrix (the same release binaries on Debian's 5.10, 6.1 and 6.12
# kernels under QEMU, and the arm64 build on trixie's 6.12 arm64 kernel).
#
# usage: sudo CORETRACE_REQUIRE_BPF=1 tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

tools/setup-debian.sh
cargo fmt --check
# --features gen: coretrace-gen (man pages, completions) and its test too.
cargo clippy --release --all-targets --features gen --quiet -- -D warnings
cargo test --release --features gen -- --include-ignored
tests/install/run.sh
tools/repro.sh
# The arm64 build the matrix's arm64 guest boots (Debian unstable's rustc in a cached chroot,
# cross to aarch64): a stage of its own, timed; run.sh is told not to run it again.
if [ -x tests/kernel-matrix/build-arm64.sh ]; then
    arm64_t0=$SECONDS
    tests/kernel-matrix/build-arm64.sh
    echo "stage arm64 build: $((SECONDS - arm64_t0))s"
fi
if [ -x tests/kernel-matrix/run.sh ]; then
    CORETRACE_ARM64_BUILT=1 tests/kernel-matrix/run.sh
fi
