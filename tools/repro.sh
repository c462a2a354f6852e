#!/usr/bin/env bash
# Reproducibility check, as a distribution builds: after `cargo fetch`, the shipped binary
# builds offline (`cargo build --profile dist --locked --offline`, libbpf and its C code from the
# vendored crates), and two builds of the same commit in different directories, with different
# target directories, give the same bytes. Build A is this tree's own target/dist/coretrace
# (the one tools/build-deb.sh packages, so CI builds it once); build B is `git archive HEAD`
# unpacked elsewhere, as from a release tarball (CORETRACE_COMMIT names the commit there).
#
# usage: tools/repro.sh        (a clean checkout: build A must be of HEAD)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
fail() { printf 'repro: FAIL: %s\n' "$*" >&2; exit 1; }

[ -z "$(git status --porcelain --untracked-files=no)" ] ||
    fail "the checkout has uncommitted changes: build A would not be of HEAD (commit or stash them)"
export CORETRACE_COMMIT=$(git rev-parse --short=12 HEAD)
cargo fetch --locked --quiet

(. tools/dist-env.sh && cargo build --profile dist --locked --offline --quiet --bin coretrace)
a=${CARGO_TARGET_DIR:-target}/dist/coretrace

other=$(mktemp -d /tmp/coretrace-repro.XXXXXX)
# Kept when the builds differ, to compare them.
trap 'if [ "${same:-}" = 1 ]; then rm -rf "$other"; else echo "repro: build B kept in $other" >&2; fi' EXIT
git archive --format=tar HEAD | tar -x -C "$other"
(
    cd "$other"
    unset CARGO_TARGET_DIR
    . tools/dist-env.sh
    cargo build --profile dist --locked --offline --quiet --bin coretrace
)
b=$other/target/dist/coretrace

sum_a=$(sha256sum <"$a" | cut -d' ' -f1)
sum_b=$(sha256sum <"$b" | cut -d' ' -f1)
echo "repro: $a $sum_a"
echo "repro: $b $sum_b"
[ "$sum_a" = "$sum_b" ] && same=1 || fail "the two builds differ (compare them with diffoscope)"
"$b" --version | grep -qF "commit $CORETRACE_COMMIT" || fail "build B does not name commit $CORETRACE_COMMIT"
echo "repro: identical ($(stat -c %s "$a") bytes)"
