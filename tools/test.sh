#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, lints, unit and integration tests (which load
# real BPF programs and watch real processes: run as root), then the kernel matrix (the same
# release binaries on Debian's 6.1 and 6.12 kernels under QEMU).
#
# usage: sudo CORETRACE_REQUIRE_BPF=1 tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

tools/setup-debian.sh
cargo fmt --check
cargo clippy --release --all-targets --quiet -- -D warnings
cargo test --release -- --include-ignored
if [ -x tests/kernel-matrix/run.sh ]; then
    tests/kernel-matrix/run.sh
fi
