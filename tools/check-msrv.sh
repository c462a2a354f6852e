#!/usr/bin/env bash
# Checks that Cargo.toml's rust-version is true: no crate the shipped binary is built from (its
# normal and build dependencies, transitively, for Linux targets, as Cargo.lock resolves them;
# not the test-only dev-dependencies) declares a rust-version above ours. Prints the highest
# one found and the crates that declare it.
#
# usage: tools/check-msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
fail() { printf 'check-msrv: FAIL: %s\n' "$*" >&2; exit 1; }
command -v jq >/dev/null || fail "jq is not installed (tools/setup-debian.sh installs it)"

# The targets the package is built for (docs/packaging.md): their platform-specific crates count.
platforms=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
filters=()
for p in "${platforms[@]}"; do filters+=(--filter-platform "$p"); done
meta=$(cargo metadata --format-version 1 --locked "${filters[@]}") ||
    fail "cargo metadata failed (is Cargo.lock up to date?)"

# "name version rust-version" for every package reachable from ours without a dev edge.
reachable=$(jq -r '
    . as $m | .resolve as $r
    | ($r.nodes | map({key: .id, value: .}) | from_entries) as $nodes
    | def walk_deps($seen):
        if length == 0 then $seen
        else
          (map($nodes[.].deps[]
                | select(any(.dep_kinds[]; .kind != "dev"))
                | .pkg) | unique) - $seen
          | . as $new | walk_deps($seen + $new)
        end;
      ([$r.root] | walk_deps([$r.root]) - [$r.root]) as $ids
    | $m.packages[] | select(.id as $id | $ids | index($id))
    | "\(.name) \(.version) \(.rust_version // "-")"' <<<"$meta")

ours=$(jq -r --arg root "$(jq -r .resolve.root <<<"$meta")" \
    '.packages[] | select(.id == $root) | .rust_version // empty' <<<"$meta")
[ -n "$ours" ] || fail "Cargo.toml declares no rust-version"

# Versions compared numerically field by field: 1.88 < 1.100.
vkey() { awk -F. '{ printf "%05d%05d%05d\n", $1, $2, $3 }' <<<"$1"; }
highest=0 who=
while read -r name version rv; do
    [ "$rv" = - ] && continue
    if [ "$(vkey "$rv")" \> "$(vkey "$highest")" ]; then
        highest=$rv who="$name $version"
    elif [ "$(vkey "$rv")" = "$(vkey "$highest")" ]; then
        who="$who, $name $version"
    fi
done <<<"$reachable"
count=$(grep -c . <<<"$reachable")
if [ "$(vkey "$highest")" \> "$(vkey "$ours")" ]; then
    fail "rust-version is $ours, but $who declare $highest: raise rust-version in Cargo.toml to $highest"
fi
echo "check-msrv: ok: rust-version $ours; the highest any of the $count crates of the shipped binary declares is $highest ($who)"
