#!/usr/bin/env python3
"""Compares a rerun of a golden script (written with its --out DIR) against the committed goldens.

    /work/main/.venv/bin/python tools/parity/compare_goldens.py NEW_DIR COMMITTED_DIR [--tol 1e-6]

Every file under COMMITTED_DIR must exist under NEW_DIR. safetensors: same keys, shapes and dtypes; per tensor the
max absolute difference and the max relative difference max|new - old| / max|old| (integers must be equal);
.json: equal after parsing; anything else: equal bytes. Prints one line per file (worst tensor; with --groups also
per key prefix) and exits 1 when a tensor's relative difference exceeds --tol (default 1e-5: fp32 rounding of a
different torch build or kernel) or anything else differs.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file


def compare_tensors(new, old):
    if new.shape != old.shape or new.dtype != old.dtype:
        return None
    if not old.is_floating_point():
        return (0.0, 0.0) if torch.equal(new, old) else (float("inf"), float("inf"))
    a, b = new.double(), old.double()
    if a.numel() == 0:
        return 0.0, 0.0
    nan_a, nan_b = a.isnan(), b.isnan()
    if not torch.equal(nan_a, nan_b):
        return float("inf"), float("inf")
    a, b = a[~nan_a], b[~nan_b]  # NaN where the committed value is NaN counts as equal
    if a.numel() == 0:
        return 0.0, 0.0
    if not torch.equal(a.isinf(), b.isinf()) or not torch.equal(a[a.isinf()], b[b.isinf()]):
        return float("inf"), float("inf")
    a, b = a[~a.isinf()], b[~b.isinf()]
    if a.numel() == 0:
        return 0.0, 0.0
    diff = (a - b).abs().max().item()
    return diff, diff / max(b.abs().max().item(), 1e-30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("new")
    ap.add_argument("old")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--groups", action="store_true", help="also the worst tensor per key prefix (text before '.')")
    args = ap.parse_args()
    ok, worst_rel = True, 0.0
    for dp, _, files in sorted(os.walk(args.old)):
        for f in sorted(files):
            old_path = os.path.join(dp, f)
            rel_path = os.path.relpath(old_path, args.old)
            new_path = os.path.join(args.new, rel_path)
            if not os.path.exists(new_path):
                print(f"{rel_path}: MISSING in the rerun")
                ok = False
                continue
            if f.endswith(".safetensors"):
                new, old = load_file(new_path), load_file(old_path)
                if set(new) != set(old):
                    print(f"{rel_path}: keys differ: only new {sorted(set(new) - set(old))[:5]}, "
                          f"only old {sorted(set(old) - set(new))[:5]}")
                    ok = False
                    continue
                rows = []
                for k in sorted(old):
                    r = compare_tensors(new[k], old[k])
                    if r is None:
                        print(f"{rel_path}: {k}: shape/dtype {tuple(new[k].shape)} {new[k].dtype} vs "
                              f"{tuple(old[k].shape)} {old[k].dtype}")
                        ok = False
                        continue
                    rows.append((r[1], r[0], k))
                if rows:
                    rel, ab, k = max(rows)
                    worst_rel = max(worst_rel, rel)
                    exact = sum(1 for r in rows if r[0] == 0.0)
                    flag = "" if rel <= args.tol else "  EXCEEDS --tol"
                    print(f"{rel_path}: {len(rows)} tensors, {exact} identical; worst {k}: max abs {ab:.3g}, "
                          f"max rel {rel:.3g}{flag}")
                    if args.groups and f not in ("model.safetensors", "diffusion_pytorch_model.safetensors"):
                        groups = {}
                        for r in rows:
                            g = r[2].split(".")[0]
                            groups[g] = max(groups.get(g, r), r)
                        for g, (grel, gab, gk) in sorted(groups.items()):
                            n = sum(1 for r in rows if r[2].split(".")[0] == g)
                            print(f"    {g}: {n} tensors, worst {gk}: max abs {gab:.3g}, max rel {grel:.3g}")
                    ok = ok and rel <= args.tol
            elif f.endswith(".json"):
                same = json.load(open(new_path)) == json.load(open(old_path))
                print(f"{rel_path}: {'equal' if same else 'DIFFERS'}")
                ok = ok and same
            else:
                same = open(new_path, "rb").read() == open(old_path, "rb").read()
                print(f"{rel_path}: {'identical bytes' if same else 'DIFFERENT BYTES'}")
                ok = ok and same
    print(f"worst relative difference {worst_rel:.3g}: {'OK' if ok else 'DIFFERS'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
