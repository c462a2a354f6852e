#!/bin/sh
# Regenerate src/bpf/<ARCH>/vmlinux.h, the kernel type definitions every BPF program here
# includes. CO-RE relocates field accesses at load time against the running kernel's BTF, so one
# header (from any recent kernel) serves every kernel of an architecture; but pt_regs, the
# syscall wrappers and some types differ between architectures, so there is one header per
# architecture (as libbpf-tools keeps them). build.rs picks the target's with -I and
# -D__TARGET_ARCH_<ARCH>. They are committed so that building needs no BTF.
#
# usage: tools/gen_vmlinux.sh [ARCH] [BTF-FILE]
#   ARCH      x86, arm64, powerpc, riscv or s390: libbpf's __TARGET_ARCH_ names
#             (default: this machine's)
#   BTF-FILE  raw BTF (/sys/kernel/btf/vmlinux, the default), a vmlinux ELF with .BTF, or an
#             uncompressed kernel Image (arm64's vmlinuz-*) whose BTF is found by its header
#
# Where the committed headers come from:
#   x86    /sys/kernel/btf/vmlinux of one of the project's x86-64 machines
#   arm64  Debian trixie's linux-image-6.12.117+deb13-cloud-arm64 (boot/vmlinuz-*, a raw Image),
#          the kernel the arm64 guest of tests/kernel-matrix boots
#   powerpc  trixie's linux-image-6.12.107+deb13-powerpc64le (boot/vmlinux-*, an ELF with .BTF)
#   riscv    trixie's linux-image-6.12.117+deb13-riscv64 (boot/vmlinux-*, a raw Image)
#   s390     trixie's linux-image-6.12.107+deb13-s390x (boot/vmlinuz-*: big-endian BTF in a
#            zstd stream)
set -eu
case ${1:-} in
    x86|arm64|powerpc|riscv|s390) arch=$1; shift ;;
    "") case $(uname -m) in aarch64) arch=arm64 ;; *) arch=x86 ;; esac ;;
    /*|./*|../*) case $(uname -m) in aarch64) arch=arm64 ;; *) arch=x86 ;; esac ;;
    *) echo "gen_vmlinux.sh: unknown arch '$1': give x86, arm64, powerpc, riscv or s390" >&2; exit 1 ;;
esac
btf=${1:-/sys/kernel/btf/vmlinux}
out=$(dirname "$0")/../src/bpf/$arch/vmlinux.h
command -v bpftool >/dev/null 2>&1 || { echo "gen_vmlinux.sh: bpftool not found: install it with 'apt-get install bpftool'" >&2; exit 1; }
[ -r "$btf" ] || { echo "gen_vmlinux.sh: cannot read BTF from $btf: give a BTF file (or a vmlinux with .BTF) as the argument" >&2; exit 1; }
tmp=$(mktemp)
raw=$(mktemp)
trap 'rm -f "$tmp" "$raw"' EXIT
if ! bpftool btf dump file "$btf" format c >"$tmp" 2>/dev/null; then
    # A kernel Image: the BTF blob is in it as the kernel links it (magic 0xeB9F in the
    # kernel's byte order, version 1, a 24-byte header whose string section follows the type
    # section); in a compressed image (s390's vmlinuz), inside the largest stream that
    # zstd, gzip or xz unpacks.
    command -v python3 >/dev/null 2>&1 || { echo "gen_vmlinux.sh: $btf is no BTF file; python3 is needed to find the BTF in a kernel Image" >&2; exit 1; }
    python3 - "$btf" "$raw" <<'EOF'
import struct, subprocess, sys

def find_btf(data):
    for order, magic in (("<", b"\x9f\xeb\x01\x00\x18\x00\x00\x00"), (">", b"\xeb\x9f\x01\x00\x00\x00\x00\x18")):
        at = data.find(magic)
        while at != -1:
            _, _, _, hdr, type_off, type_len, str_off, str_len = struct.unpack_from(order + "HBBIIIII", data, at)
            size = hdr + str_off + str_len
            if type_off == 0 and str_off == type_len and at + size <= len(data):
                return data[at:at + size]
            at = data.find(magic, at + 1)
    return None

def unpacked(data):
    """The largest stream a decompressor makes of data, from one of its magics on."""
    best = b""
    for magic, cmd in ((b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]), (b"\x1f\x8b\x08", ["gzip", "-dcq"]),
                       (b"\xfd7zXZ\x00", ["xz", "-dcq"])):
        at = data.find(magic)
        while at != -1:
            try:
                out = subprocess.run(cmd, input=data[at:], capture_output=True).stdout
            except FileNotFoundError:
                break
            best = max(best, out, key=len)
            at = data.find(magic, at + 1)
    return best

data = open(sys.argv[1], "rb").read()
blob = find_btf(data) or find_btf(unpacked(data))
if blob is None:
    sys.exit("gen_vmlinux.sh: no BTF found in " + sys.argv[1] + ": give /sys/kernel/btf/vmlinux of that kernel, or its vmlinux")
open(sys.argv[2], "wb").write(blob)
EOF
    bpftool btf dump file "$raw" format c >"$tmp"
fi
chmod 644 "$tmp"
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
trap - EXIT
rm -f "$raw"
echo "wrote $out from $btf ($(wc -l < "$out") lines)"
