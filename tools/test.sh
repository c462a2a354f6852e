#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, lints, unit and integration tests (which load
# real BPF programs and watch real processes: run as root), the Debian package installed and
# run beside libbpf-tools (tests/install/run.sh), the reproducible-build check
# (tools/repro.sh, which reuses the package's build), the minimum Rust version check
# (tools/check-msrv.sh), the Debian source package built as Debian builds it, amd64 and arm64,
# with lintian and the install test on it (tools/distro-build.sh), then the kernel matrix (the
# same release binaries on Debian's 6.1 and 6.12 kernels under QEMU). Stages print
# `stage NAME: Ns`.
#
# usage: sudo CORETRACE_REQUIRE_BPF=1 tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# stage NAME COMMAND...: runs it and prints how long it took.
stage() {
    local name=$1 t0=$SECONDS
    shift
    "$@"
    echo "stage $name: $((SECONDS - t0))s"
}

tools/setup-debian.sh
stage msrv tools/check-msrv.sh
cargo fmt --check
# src/'s module import graph, failing on a cycle (ARCHITECTURE.md's floors).
t0=$SECONDS
tools/import-graph.sh
echo "stage import-graph: $((SECONDS - t0)) s" >&2
# --features gen: coretrace-gen (man pages, completions) and its test too.
cargo clippy --release --all-targets --features gen --quiet -- -D warnings
cargo test --release --features gen -- --include-ignored
tests/install/run.sh
tools/repro.sh
stage distro tools/distro-build.sh --arch amd64,arm64
if [ -x tests/kernel-matrix/run.sh ]; then
    tests/kernel-matrix/run.sh
fi
