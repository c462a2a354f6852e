# Sourced by the scripts that build what is shipped (tools/build-deb.sh, tools/repro.sh): the
# environment that makes `cargo build --profile dist` reproducible, the same bytes whatever the
# directory it is built in.
#   SOURCE_DATE_EPOCH  the commit's time (nothing in the binary reads the clock at build time;
#                      set for the C compilers and archive tools that honour it)
#   RUSTFLAGS          build paths remapped: the source tree, the target directory and
#                      $CARGO_HOME (crates.io sources) appear as fixed names in panic locations
#   CORETRACE_COMMIT   the commit `coretrace --version` names (also from a tarball: set it)
_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
_target=$(cd "$_src" && mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd -P)
_cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$_src" log -1 --format=%ct 2>/dev/null || echo 0)}
if [ -z "${CORETRACE_COMMIT:-}" ] && [ -e "$_src/.git" ]; then
    CORETRACE_COMMIT=$(git -C "$_src" rev-parse --short=12 HEAD)
fi
export CORETRACE_COMMIT=${CORETRACE_COMMIT:-unknown}
# The target directory last: it may lie inside the source tree, and the last match wins.
export RUSTFLAGS="--remap-path-prefix=$_cargo_home=/cargo --remap-path-prefix=$_src=/build/coretrace --remap-path-prefix=$_target=/build/target"
export CFLAGS="-ffile-prefix-map=$_cargo_home=/cargo -ffile-prefix-map=$_src=/build/coretrace -ffile-prefix-map=$_target=/build/target"
unset _src _target _cargo_home
