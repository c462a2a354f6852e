#!/bin/sh
# Regenerate src/bpf/vmlinux.h, the kernel type definitions every BPF program here includes.
# CO-RE relocates field accesses at load time against the running kernel's BTF, so one header
# (from any recent kernel) serves every kernel; it is committed so that building needs no BTF.
#
# usage: tools/gen_vmlinux.sh [BTF-FILE]     (default: /sys/kernel/btf/vmlinux)
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
out=$(dirname "$0")/../src/bpf/vmlinux.h
command -v bpftool >/dev/null 2>&1 || { echo "gen_vmlinux.sh: bpftool not found: install it with 'apt-get install bpftool'" >&2; exit 1; }
[ -r "$btf" ] || { echo "gen_vmlinux.sh: cannot read BTF from $btf: give a BTF file (or a vmlinux with .BTF) as the argument" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bpftool btf dump file "$btf" format c > "$tmp"
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out from $btf ($(wc -l < "$out") lines)"
