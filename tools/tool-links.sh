#!/usr/bin/env bash
# Makes a link named after each tool next to the multicall binary DIR/coretrace (as the tests
# do), so that DIR/execsnoop runs execsnoop: `cargo build --release && tools/tool-links.sh`.
#
# usage: tools/tool-links.sh [DIR]      (default: target/release)
set -euo pipefail
dir=${1:-${CARGO_TARGET_DIR:-target}/release}
[ -x "$dir/coretrace" ] || { echo "tool-links: no $dir/coretrace: cargo build --release first" >&2; exit 1; }
for tool in $("$dir/coretrace" --list-tools); do
    ln -sfn coretrace "$dir/$tool"
done
