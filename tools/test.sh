#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, lints, unit and integration tests (which load
# real BPF programs and watch real processes: run as root), the Debian package installed and
# run beside libbpf-tools (tests/install/run.sh), the reproducible-build check
# (tools/repro.sh, which reuses the package's build), the minimum Rust version check
# (tools/check-msrv.sh), src/'s import graph and length limits, the Debian source package built in an unstable
# chroot for amd64 and arm64 (tools/distro-build.sh), then the kernel matrix (the same release
# binaries on Debian's 5.10, 6.1 and 6.12 kernels, the arm64 package's on 6.12 arm64, under
# QEMU). Stages print `stage NAME: Ns`.
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
# src/'s module import graph, failing on a cycle (ARCHITECTURE.md's floors); then its length
# limits (files <= 600 lines, functions <= 80), failing on one over that is not explained.
stage import-graph tools/import-graph.sh
stage lengths python3 tools/lengths.py
# --features gen: coretrace-gen (man pages, completions) and its test too.
stage clippy cargo clippy --release --all-targets --features gen --quiet -- -D warnings
stage tests cargo test --release --features gen -- --include-ignored
stage install tests/install/run.sh
stage repro tools/repro.sh
# The Debian source package as Debian builds it (docs/packaging.md): amd64 and arm64 (cross) in
# an unstable chroot with the network cut and Debian's crates, lintian, the install test on the
# amd64 .deb; it leaves the arm64 package's binary and guest files for the kernel matrix.
stage distro tools/distro-build.sh --arch amd64,arm64
# 5.10, 6.1, 6.12 (x86-64, the release binaries above) and arm64 (the package's binary), two
# guests at a time.
stage kernel-matrix tests/kernel-matrix/run.sh
echo "total: ${SECONDS}s"
