#!/usr/bin/env bash
# Prints the import graph of src/'s top-level modules (the floors of ARCHITECTURE.md) and fails
# on a cycle. A module is a folder or file directly under src/ (src/bin counts as one, `bin`);
# an edge A -> B means a file of A names `crate::B` (or, in src/bin, `coretrace::B`), in a `use`
# or in a path. Comments count too: a doc link to a floor above is a dependency on it for the
# reader. Run it from anywhere; CI runs it from tools/test.sh.
#
# usage: tools/import-graph.sh        (exit 0: no cycle; 1: a cycle, printed by tsort)
set -euo pipefail
cd "$(dirname "$0")/../src"

modules=$(sed -n 's/^pub mod \([a-z_]*\);$/\1/p' lib.rs)
[ -n "$modules" ] || { echo "import-graph: no 'pub mod' lines in src/lib.rs" >&2; exit 1; }
alternation=$(echo "$modules" | paste -sd'|')

# The module a file belongs to: its first path component, without .rs.
edges=$(
    find . -name '*.rs' ! -path './bpf/*' | sort | while read -r file; do
        from=${file#./}
        from=${from%%/*}
        from=${from%.rs}
        [ "$from" = lib ] && continue
        grep -oE "(crate|coretrace)::($alternation)\b" "$file" |
            sed -E 's/^(crate|coretrace):://' |
            grep -vx "$from" |
            sed "s/^/$from /" || true
    done | sort -u
)

echo "src/ module imports (A -> B: A uses B):"
for m in $modules bin; do
    uses=$(echo "$edges" | awk -v m="$m" '$1 == m { print $2 }' | paste -sd' ')
    printf '  %-9s -> %s\n' "$m" "${uses:--}"
done

# tsort prints the floors in order, top first; on a cycle it names the loop on stderr and fails.
loops=$(mktemp)
trap 'rm -f "$loops"' EXIT
if ! order=$(echo "$edges" | tsort 2>"$loops") || [ -s "$loops" ]; then
    cat "$loops" >&2
    echo "import-graph: src/ has an import cycle (above): move the shared type to the floor below its users (ARCHITECTURE.md)" >&2
    exit 1
fi
echo "floors, top first: $(echo "$order" | paste -sd' ')"
