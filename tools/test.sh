#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, lints, unit and integration tests (which load
# real BPF programs and watch real processes: run as root), the Debian package installed and
# run beside libbpf-tools (tests/install/run.sh), the reproducible-build check
# (tools/repro.sh, which reuses the package's build), the minimum Rust version check
# (tools/check-msrv.sh), the Debian source package built as Debian builds it, amd64 and arm64,
# with lintian and the install test on it (tools/distro-build.sh), the arm64 build of the
# tools and their tests (Debian's own rustc, cross), then the kernel matrix (the same release
# binaries on Debian's 5.10, 6.1 and 6.12 kernels under QEMU, and the arm64 build on trixie's
# 6.12 arm64 kernel). Stages print `stage NAME: Ns`.
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

stage setup tools/setup-debian.sh
stage msrv tools/check-msrv.sh
stage fmt cargo fmt --check
# src/'s module import graph, failing on a cycle (ARCHITECTURE.md's floors).
stage import-graph tools/import-graph.sh
# --features gen: coretrace-gen (man pages, completions) and its test too.
stage clippy cargo clippy --release --all-targets --features gen --quiet -- -D warnings
stage tests cargo test --release --features gen -- --include-ignored
stage install tests/install/run.sh
stage repro tools/repro.sh
stage distro tools/distro-build.sh --arch amd64,arm64
# The arm64 build the matrix's arm64 guest boots (Debian unstable's rustc in a cached chroot,
# cross to aarch64); run.sh's own call of it is then a no-op.
stage arm64-build tests/kernel-matrix/build-arm64.sh
stage kernel-matrix tests/kernel-matrix/run.sh
