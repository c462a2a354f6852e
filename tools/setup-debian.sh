#!/usr/bin/env bash
# Installs what a fresh Debian 12 (bookworm) machine lacks to build and test coretrace.
# Idempotent and quick when everything is there. Run as root.
set -euo pipefail

packages=(
    clang llvm libelf-dev zlib1g-dev pkg-config make gcc  # build: BPF C, libbpf (vendored)
    bpftool                                              # tools/gen_vmlinux.sh
    libbpf-tools bpftrace                                # the references the benchmarks compare against
    qemu-system-x86 busybox-static cpio                  # tests/kernel-matrix: other kernels under QEMU
    qemu-system-arm qemu-user-static debootstrap         # tests/kernel-matrix: the arm64 build and guest
    util-linux procps                                    # setpriv, ps
    libcap2-bin                                          # capsh, setcap: tests/requirements.rs
    prometheus                                           # promtool check metrics: tests/metrics.rs
    dpkg-dev lintian groff man-db git                    # tools/build-deb.sh, tests/install, man page checks
    debootstrap jq                                       # tools/distro-build.sh, tools/check-msrv.sh
    musl-tools musl-dev g++                              # tests/kmemleak_lite.rs: a static musl program, a C++ one
    python3 python3-venv                                 # tests/otlp.rs: the receiver (PyPI's opentelemetry-proto, below)
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests/otlp.rs decodes OTLP with the official protobuf definitions: PyPI's opentelemetry-proto
# (Debian 12 does not package it), in a venv of its own (Debian's Python refuses pip installs).
venv=/opt/coretrace-test-venv
if ! "$venv/bin/python3" -c 'import opentelemetry.proto.collector.logs.v1' 2>/dev/null; then
    echo "setup: installing opentelemetry-proto into $venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'opentelemetry-proto==1.45.2'
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
        echo "setup: installing the Rust toolchain with rustup"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates >/dev/null
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    }
    echo "setup: add \$HOME/.cargo/bin to PATH (source \$HOME/.cargo/env)"
fi
