#!/usr/bin/env python3
"""Goldens for the native dense CRF and FTTM's dcrf post-processing (tests/baselines/data/crf_golden.json).

pydensecrf cannot be installed here (no Debian package; `apt-cache search densecrf` finds nothing, and its
pip build needs Cython and network access). Its Python layer is a thin Cython wrapper, so this script
compiles pydensecrf's C++ core (Krähenbühl's densecrf, vendored in lucasb-eyer/pydensecrf under
pydensecrf/densecrf) together with crf_pydensecrf_harness.cpp, which makes exactly the calls
pydensecrf.densecrf.DenseCRF2D forwards, and feeds it scenes built with numpy/torch the way the paper's
src-main/components/postprocess/dcrf.py builds them:

    pred  = F.interpolate(maps[None], (H, W), mode='bicubic').clamp(min=0)[0]; MinMax per map
    image = BGR float32 - (104.008, 116.669, 122.675), then .astype(np.uint8)
    U     = pydensecrf.utils.unary_from_softmax(pred)   # -log(clip(p, 1e-5, 1))

Nothing from pydensecrf is committed; only this script, the harness (our code) and the small golden.

    /usr/bin/python3 tools/parity/crf_golden.py --pydensecrf /path/to/pydensecrf-checkout
"""
import argparse
import json
import os
import struct
import subprocess
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

MEAN_BGR = (104.008, 116.669, 122.675)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'tests', 'baselines', 'data', 'crf_golden.json')


def build_harness(pydensecrf, workdir):
    d = os.path.join(pydensecrf, 'pydensecrf', 'densecrf')
    srcs = [os.path.join(d, 'src', f) for f in
            ('densecrf.cpp', 'unary.cpp', 'pairwise.cpp', 'permutohedral.cpp', 'labelcompatibility.cpp', 'util.cpp')]
    exe = os.path.join(workdir, 'harness')
    # distutils' default flags for an x86-64 CPython extension: -O2 -fwrapv, SSE2 only (no -march).
    subprocess.check_call(['g++', '-O2', '-fwrapv', '-DNDEBUG', '-w', '-I' + os.path.join(d, 'include'), '-o', exe,
                           os.path.join(HERE, 'crf_pydensecrf_harness.cpp')] + srcs)
    return exe


def run_crf(exe, unary, image, iters, sg, cg, sb, sr, cb):
    k, n = unary.shape
    h, w, _ = image.shape
    assert n == h * w
    blob = struct.pack('<4i', w, h, k, iters) + struct.pack('<5f', sg, cg, sb, sr, cb)
    blob += np.ascontiguousarray(unary, dtype=np.float32).tobytes() + np.ascontiguousarray(image, np.uint8).tobytes()
    out = subprocess.run([exe], input=blob, stdout=subprocess.PIPE, check=True).stdout
    return np.frombuffer(out, dtype=np.float32).reshape(k, h, w)


def unary_from_softmax(sm, clip=1e-5):  # pydensecrf.utils.unary_from_softmax with scale=None
    num_cls = sm.shape[0]
    sm = np.clip(sm, clip, 1.0)
    return -np.log(sm).reshape([num_cls, -1]).astype(np.float32)


def two_region_rgb(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    left = (xx + yy // 2) < (w // 2 + 1)
    rgb = np.where(left[..., None], np.array([40, 90, 160]), np.array([210, 120, 30]))
    rgb = rgb + rng.randint(-6, 7, size=(h, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8), left


def flat(a):
    # 9 significant digits round-trip float32 exactly.
    return [float('%.9g' % x) for x in np.asarray(a, dtype=np.float32).ravel()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pydensecrf', required=True, help='checkout of github.com/lucasb-eyer/pydensecrf')
    args = ap.parse_args()
    rng = np.random.RandomState(20240611)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_harness(args.pydensecrf, tmp)

        # 1. The whole FTTM dcrf step: affinity-propagated maps (3 x 8 x 8: two objects and a support map,
        #    slightly negative in places so the clamp matters) on a 20 x 24 image.
        h, w, s = 20, 24, 8
        rgb, _ = two_region_rgb(rng, h, w)
        yy, xx = np.mgrid[0:s, 0:s] / (s - 1.0)
        maps = np.stack([np.exp(-((xx - 0.2) ** 2 + (yy - 0.5) ** 2) / 0.08),
                         np.exp(-((xx - 0.8) ** 2 + (yy - 0.4) ** 2) / 0.05),
                         0.3 + 0.2 * yy]) + 0.05 * rng.randn(3, s, s) - 0.02
        maps = maps.astype(np.float32)
        pred = F.interpolate(torch.from_numpy(maps).unsqueeze(0), (h, w), mode='bicubic').clamp(min=0).squeeze(0)
        pmin = torch.amin(pred, dim=[1, 2], keepdim=True)
        pmax = torch.amax(pred, dim=[1, 2], keepdim=True)
        prob = ((pred - pmin) / (pmax - pmin)).numpy()
        image = rgb[..., ::-1].astype(np.float32)  # cv2.imread gives BGR
        image -= MEAN_BGR
        image = image.astype(np.uint8)
        unary = unary_from_softmax(prob)
        q = run_crf(exe, unary, image, 10, 1.0, 3.0, 67.0, 3.0, 4.0)
        cases.append({'name': 'fttm', 'height': h, 'width': w, 'labels': 3, 'map_size': s, 'iterations': 10,
                      'gaussian_sxy': 1.0, 'gaussian_compat': 3.0, 'bilateral_sxy': 67.0, 'bilateral_srgb': 3.0,
                      'bilateral_compat': 4.0, 'maps': flat(maps), 'rgb': [int(v) for v in rgb.ravel()],
                      'probabilities': flat(prob), 'crf_image': [int(v) for v in image.ravel()],
                      'unary': flat(unary), 'marginals': flat(q)})

        # 2. Two labels (densecrf filters <= 2 values per pixel on its scalar path) and 3. five labels with
        #    other kernel parameters, on noisy probabilities over a two-region image.
        for name, (h, w, k, par) in {'k2': (13, 16, 2, (1.0, 3.0, 67.0, 3.0, 4.0)),
                                     'k5': (15, 18, 5, (3.0, 2.0, 10.0, 13.0, 5.0))}.items():
            rgb, left = two_region_rgb(rng, h, w)
            prob = rng.rand(k, h, w).astype(np.float32) * 0.5
            prob[0] += 0.4 * left
            prob[1] += 0.4 * (~left)
            prob[:, 0, 0] = 0.0  # exercises the clip
            unary = unary_from_softmax(prob)
            q = run_crf(exe, unary, rgb, 10, *par)
            cases.append({'name': name, 'height': h, 'width': w, 'labels': k, 'iterations': 10,
                          'gaussian_sxy': par[0], 'gaussian_compat': par[1], 'bilateral_sxy': par[2],
                          'bilateral_srgb': par[3], 'bilateral_compat': par[4], 'rgb': [int(v) for v in rgb.ravel()],
                          'probabilities': flat(prob), 'unary': flat(unary), 'marginals': flat(q)})

    with open(OUT, 'w') as f:
        json.dump({'source': 'tools/parity/crf_golden.py (pydensecrf C++ core, numpy ' + np.__version__ +
                             ', torch ' + torch.__version__ + ')', 'cases': cases}, f, separators=(',', ':'))
    print('wrote', os.path.normpath(OUT), os.path.getsize(OUT), 'bytes')


if __name__ == '__main__':
    main()
