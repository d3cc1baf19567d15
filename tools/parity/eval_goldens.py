#!/usr/bin/env python3
"""Goldens for harness/eval: runs the paper's own `quantitative_evaluation`
(/work/ref/goca/src-main/components/downstream_dispatch.py, imported, not copied) on small synthetic inputs
and records its integer I/U counts and printed mIoU per background threshold.

Inputs cover: labels with 255, negative and other out-of-range values, class 0 among the present objects,
a NaN channel, exact ties, a zero support map with negative offsets, all five background methods, a
non-monotonic threshold list (the cumulative `max` quirk), several images accumulated, and C = 151 (numpy's
pairwise mean over more than 128 classes).

    .venv/bin/python tools/parity/eval_goldens.py [--goca /work/ref/goca/src-main] > tests/eval/golden/paper_eval.json
"""
import argparse
import contextlib
import io
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch


def load_paper(goca):
    sys.path.insert(0, goca)
    cwd = os.getcwd()
    os.chdir(goca)
    try:
        import components.downstream_dispatch as dd  # noqa: E402
    finally:
        os.chdir(cwd)
    return dd


def fnum(x):
    x = float(x)
    return None if math.isnan(x) else x


def run_case(dd, case):
    dd.unions = None
    dd.intersections = None
    C = case["num_classes"]
    tmp = tempfile.mkdtemp()
    for img in case["images"]:
        maps = torch.tensor(np.array(img["maps"], dtype=np.float32))
        label = np.array(img["label"], dtype=np.int64)
        dd.quantitative_evaluation(maps, label, tmp, img["present"], C, False, case["method"], case["thresholds"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        dd.quantitative_evaluation(None, None, tmp, None, C, True, case["method"], case["thresholds"])
    mious = {}
    for line in out.getvalue().splitlines():
        # "mIoU: <value> at background_threshold <t>"
        parts = line.split()
        mious[float(parts[-1])] = float(parts[1])
    expected = []
    for t in case["thresholds"]:
        expected.append({
            "threshold": t,
            "intersection": [int(dd.intersections[t][c]) for c in range(C)],
            "union": [int(dd.unions[t][c]) for c in range(C)],
            "miou": mious[t],
        })
    return expected


def make_cases():
    rng = np.random.default_rng(20260603)
    offsets = [-0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4]
    cases = []

    def rand_maps(k, s, quant=None, nan_channel=None, zero_support=False):
        m = rng.random((k + 1, s, s)).astype(np.float32)
        if quant:
            m = (np.round(m * quant) / quant).astype(np.float32)
        if nan_channel is not None:
            m[nan_channel, 1:3, 0:2] = np.nan
        if zero_support:
            m[-1] = 0
        return m

    def rand_label(h, w, C, extra=()):
        lab = rng.integers(0, C, size=(h, w))
        for v in extra:
            mask = rng.random((h, w)) < 0.08
            lab[mask] = v
        return lab

    def enc(m):
        return [[[fnum(v) for v in row] for row in ch] for ch in m]

    for method in ["vanilla", "max", "exact", "avg", "offset"]:
        for thresholds in (offsets, [0.3, -0.1, 0.5, 0.2]):
            C = 7
            images = []
            for i in range(3):
                present = [[2, 5, 0], [3, 1], [6, 4, 1, 2]][i]
                images.append({
                    "maps": enc(rand_maps(len(present), 5, quant=4 if i == 1 else None)),
                    "present": present,
                    "label": rand_label(9, 11, C, extra=(255, -1, 9)).tolist(),
                })
            cases.append({"name": f"{method}_{len(thresholds)}", "num_classes": C, "method": method,
                          "thresholds": thresholds, "images": images})
    # NaN channel (a class with no tokens) and a zero support map with negative offsets
    C = 6
    cases.append({"name": "nan_and_zero_support", "num_classes": C, "method": "offset", "thresholds": offsets,
                  "images": [
                      {"maps": enc(rand_maps(2, 4, nan_channel=1, zero_support=True)), "present": [4, 2],
                       "label": rand_label(7, 6, C, extra=(255,)).tolist()},
                      {"maps": enc(rand_maps(0, 4)), "present": [], "label": rand_label(5, 8, C).tolist()},
                  ]})
    # ties everywhere: all-zero maps
    cases.append({"name": "ties", "num_classes": 5, "method": "offset", "thresholds": offsets,
                  "images": [{"maps": enc(np.zeros((3, 4, 4), np.float32)), "present": [3, 1],
                              "label": rand_label(6, 6, 5, extra=(255,)).tolist()}]})
    # many classes (numpy pairwise mean over > 128 entries)
    C = 151
    images = []
    for i in range(2):
        present = sorted(rng.choice(np.arange(1, C), size=6, replace=False).tolist())
        images.append({"maps": enc(rand_maps(len(present), 6)), "present": present,
                       "label": rng.choice([0] + present + [200, 255], size=(13, 10)).tolist()})
    cases.append({"name": "ade_sized", "num_classes": C, "method": "offset", "thresholds": offsets, "images": images})
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--goca", default="/work/ref/goca/src-main")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dd = load_paper(args.goca)
    cases = make_cases()
    for case in cases:
        case["expected"] = run_case(dd, case)
    json.dump({"source": "goca src-main/components/downstream_dispatch.py quantitative_evaluation",
               "torch": torch.__version__, "cases": cases}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
