"""Size measures of the code base, for the architecture notes: the longest functions, the number of `pub` items and
modules, and the README's length.

Run: python3 tools/code_stats.py [--top N] [--over LINES]   (from the repository root; reads src/ and README.md)

A function's length is counted from its `fn` line to the line of its closing brace, found by counting braces outside
strings, chars and comments (good enough for this code base: it has no braces in raw strings that matter here).
"""
import argparse
import os
import re
import sys

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+([A-Za-z0-9_]+)")
PUB = re.compile(r"^\s*pub (fn|struct|enum|trait|const|static|type|mod|use)\b")


def strip(line, state):
    """The line with strings, chars and comments blanked; `state` carries an open block comment."""
    out, i = [], 0
    while i < len(line):
        if state["block"]:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out)
            state["block"], i = False, end + 2
            continue
        two = line[i:i + 2]
        if two == "//":
            break
        if two == "/*":
            state["block"], i = True, i + 2
            continue
        c = line[i]
        if c == '"':
            j = i + 1
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            i = j + 1
            continue
        if c == "'" and re.match(r"'(\\.|[^\\'])'", line[i:]):
            i += len(re.match(r"'(\\.|[^\\'])'", line[i:]).group(0))
            continue
        out.append(c)
        i += 1
    return "".join(out)


def functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    state, found = {"block": False}, []
    code = [strip(l, state) for l in lines]
    for start, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for end in range(start, len(lines)):
            for ch in code[end]:
                if ch == "{":
                    depth, opened = depth + 1, True
                elif ch == "}":
                    depth -= 1
            if opened and depth == 0:
                found.append((end - start + 1, path, start + 1, m.group(6)))
                break
            if not opened and code[end].rstrip().endswith(";"):
                break  # a declaration without a body
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--over", type=int, default=120)
    args = ap.parse_args()
    fns, pubs, pub_mods = [], 0, 0
    for root, _, files in os.walk("src"):
        for f in sorted(files):
            if f.endswith(".rs"):
                p = os.path.join(root, f)
                fns += functions(p)
                for line in open(p, encoding="utf-8"):
                    if PUB.match(line):
                        pubs += 1
                        pub_mods += line.lstrip().startswith("pub mod")
    fns.sort(reverse=True)
    print(f"functions: {len(fns)}; over {args.over} lines: {sum(1 for f in fns if f[0] > args.over)}")
    for n, p, line, name in fns[:args.top]:
        print(f"  {n:5d}  {p}:{line}  {name}")
    print(f"pub items: {pubs} (pub mod: {pub_mods})")
    print(f"README.md: {sum(1 for _ in open('README.md', encoding='utf-8'))} lines")


if __name__ == "__main__":
    sys.exit(main())
