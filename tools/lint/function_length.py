#!/usr/bin/env python3
"""Fails when a C++ function in the source tree is longer than the limit (issue 12: no function over ~120 lines).

Length is lizard's (first to last line of the function, comments and blank lines included). Run by CTest
(`lint_function_length`, registered when lizard is importable in GB_PYTHON; requirements/python-tools.txt pins it):

    python tools/lint/function_length.py [--root DIR] [--limit 120]

A function listed in ALLOWED may exceed the limit up to its recorded length, for the reason given; the check also
fails when a listed function has grown past that length or no longer exceeds the limit (then drop its entry).
"""
import argparse
import os
import sys
import tempfile

import lizard

FOLDERS = ["harness", "baselines", "datasets", "reports", "goca"]
LIMIT = 120

# "path:function name as lizard prints it": (length allowed, why)
ALLOWED = {
    "baselines/permutohedral.cpp:gb::baselines::PermutohedralLattice::PermutohedralLattice": (
        150, "numeric kernel: the lattice construction of Adams et al. (scale, nearest remainder-0 point, rank, "
        "barycentric weights, vertex hash, blur neighbours) as one pass over the points in the paper's step order, "
        "where each step's exact rounding and accumulation order is a result (baselines/permutohedral.h)"),
}


def functions(root):
    for folder in FOLDERS:
        for base, _, files in os.walk(os.path.join(root, folder)):
            for name in sorted(files):
                if not name.endswith((".cpp", ".h", ".cu", ".cuh")):
                    continue
                path = os.path.join(base, name)
                rel = os.path.relpath(path, root)
                for f in lizard.analyze_file(path).function_list:
                    yield rel, f


def check(root, limit, allowed):
    problems = []
    seen = set()
    for rel, f in functions(root):
        key = f"{rel}:{f.name}"
        if key in allowed:
            seen.add(key)
            cap, _ = allowed[key]
            if f.length > cap:
                problems.append(f"{rel}:{f.start_line}: {f.name} has {f.length} lines, grew past its allowed {cap}")
            elif f.length <= limit:
                problems.append(f"{rel}:{f.start_line}: {f.name} is {f.length} lines now: drop it from ALLOWED")
        elif f.length > limit:
            problems.append(f"{rel}:{f.start_line}: {f.name} has {f.length} lines (limit {limit}): split it")
    for key in sorted(set(allowed) - seen):
        problems.append(f"{key}: listed in ALLOWED but not found")
    return problems


def self_test():
    """The check must catch a long function: one of limit+10 lines in a scratch tree."""
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "goca"))
        body = "".join(f"  x += {i};\n" for i in range(LIMIT + 10))
        with open(os.path.join(tmp, "goca", "long.cpp"), "w") as out:
            out.write("int short_one() { return 1; }\nint long_one(int x) {\n" + body + "  return x;\n}\n")
        problems = check(tmp, LIMIT, {})
        return len(problems) == 1 and "long_one" in problems[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--limit", type=int, default=LIMIT)
    args = ap.parse_args()
    if not self_test():
        print("function_length: the self-test did not catch a long function", file=sys.stderr)
        return 1
    problems = check(os.path.abspath(args.root), args.limit, ALLOWED)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"function_length: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"function_length: every function within {args.limit} lines ({len(ALLOWED)} allowed exception(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
