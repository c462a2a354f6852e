#!/usr/bin/env python3
"""Lists what is longer than the project's limits under src/: files over 600 lines, functions
over 80 (from the `fn` line to the brace that closes it). A file whose first lines say why its
length helps the reader ("length:" in a comment) is listed as explained. Exit status 1 when
anything unexplained is listed (`--warn`: always 0)."""
import os
import re
import sys

FILE_MAX, FN_MAX = 600, 80
FN = re.compile(r"^(\s*)(pub(\([a-z:]+\))? )?(const )?(unsafe )?(async )?fn (\w+)")


def functions(lines):
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        close = m.group(1) + "}"
        for j in range(i, len(lines)):
            if lines[j].rstrip() == close or (j == i and line.rstrip().endswith("}")):
                yield m.group(7), i + 1, j - i + 1
                break


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(root)
    unexplained = 0
    for dirpath, _, names in sorted(os.walk("src")):
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            explained = any("length:" in l for l in lines[:15] if l.lstrip().startswith("//"))
            tag = " (explained at the top)" if explained else ""
            if len(lines) > FILE_MAX:
                print(f"file {path}: {len(lines)} lines{tag}")
                unexplained += not explained
            for fn, at, n in functions(lines):
                if n > FN_MAX:
                    print(f"fn   {path}:{at} {fn}: {n} lines{tag}")
                    unexplained += not explained
    return 1 if unexplained and "--warn" not in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
