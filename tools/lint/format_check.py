#!/usr/bin/env python3
"""The tree's C++ formatting (.clang-format): checks every C++/CUDA file of the tree, or rewrites them with --fix.

    python3 tools/lint/format_check.py [--root DIR] [--clang-format PATH] [--fix]

Run by CTest (`lint_format`, registered when clang-format-14 is found) and by `make format` (--fix). The files are
the *.cpp, *.h, *.cu, *.cuh below the root that git tracks or would add (not ignored; every such file when the root
is not a git checkout); hand-laid data tables keep their layout between `// clang-format off` and `// clang-format on`.
"""
import argparse
import os
import shutil
import subprocess
import sys

EXTENSIONS = (".cpp", ".h", ".cu", ".cuh")


def source_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True).stdout
        files = [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs]
    return sorted(f for f in files if f.endswith(EXTENSIONS) and os.path.isfile(os.path.join(root, f)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--clang-format", default=shutil.which("clang-format-14") or "clang-format-14")
    ap.add_argument("--fix", action="store_true", help="rewrite the files in place")
    args = ap.parse_args()
    files = source_files(args.root)
    if not files:
        print(f"format_check: no C++ files below {args.root}", file=sys.stderr)
        return 2
    mode = ["-i"] if args.fix else ["--dry-run", "-Werror"]
    bad = set()
    for i in range(0, len(files), 64):
        chunk = files[i:i + 64]
        r = subprocess.run([args.clang_format, "--style=file", *mode, *chunk], cwd=args.root, capture_output=True,
                           text=True)
        if r.returncode != 0:
            if args.fix:
                sys.stderr.write(r.stderr)
                return 2
            for line in r.stderr.splitlines():
                if ": error:" in line:
                    bad.add(line.split(":", 1)[0])
            if not bad:
                sys.stderr.write(r.stderr)
                return 2
    if args.fix:
        print(f"format_check: formatted {len(files)} files")
        return 0
    if bad:
        print(f"format_check: {len(bad)} of {len(files)} files are not formatted (fix: make format):")
        for f in sorted(bad):
            print(f"  {f}")
        return 1
    print(f"format_check: all {len(files)} files formatted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
