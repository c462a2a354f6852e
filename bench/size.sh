#!/usr/bin/env bash
# Installed size of the suite beside libbpf-tools': builds the Debian package
# (tools/build-deb.sh) and prints, in KiB, what it installs (the multicall binary and its links
# alone, and the whole package with man pages, completions and docs: its Installed-Size), then
# libbpf-tools' Installed-Size and tool count, as dpkg reports them. Goal (issue 13): the suite,
# binary and links, at most 3 MB (3,000,000 bytes); exits 1 over it.
#
# usage: bench/size.sh          (libbpf-tools installed, or apt able to show it)
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(tools/build-deb.sh)
root=$(dirname "$deb")/root
bin_bytes=$(find "$root/usr/sbin" "$root/usr/lib/coretrace" \( -type f -o -type l \) -printf '%s\n' |
    awk '{s += $1} END {print s}')
bin_kib=$(((bin_bytes + 1023) / 1024))
tools=$(find "$root/usr/sbin" -name '*-coretrace' | wc -l)
ours=$(dpkg-deb -f "$deb" Installed-Size)
if theirs=$(dpkg-query -W -f='${Installed-Size}' libbpf-tools 2>/dev/null) && [ -n "$theirs" ]; then
    their_tools=$(dpkg -L libbpf-tools | grep -c '^/usr/sbin/.')
else
    theirs=$(apt-cache show libbpf-tools | sed -n 's/^Installed-Size: //p' | head -n1)
    their_tools=?
fi
printf '%-38s %8s %8s\n' "what" "KiB" "commands"
printf '%-38s %8s %8s\n' "coretrace binary + links" "$bin_kib" "$tools"
printf '%-38s %8s %8s\n' "coretrace package (Installed-Size)" "$ours" "$tools"
printf '%-38s %8s %8s\n' "libbpf-tools package (Installed-Size)" "$theirs" "$their_tools"
echo "binary + links: $bin_bytes bytes"
[ "$bin_bytes" -le 3000000 ] || { echo "size: the binary and links are over 3 MB" >&2; exit 1; }
