#!/usr/bin/env python3
"""Goldens for the native dense CRF and FTTM's dcrf post-processing (tests/baselines/data/crf_golden.json).

Runs pydensecrf itself (pydensecrf2==1.1 from PyPI, lucasb-eyer/pydensecrf's maintained fork, built from source
with Cython; requirements/python-tools.txt) on scenes built with numpy/torch the way the paper's
src-main/components/postprocess/dcrf.py builds them and calls it:

    pred  = F.interpolate(maps[None], (H, W), mode='bicubic').clamp(min=0)[0]; MinMax per map
    image = BGR float32 - (104.008, 116.669, 122.675), then .astype(np.uint8)
    U     = pydensecrf.utils.unary_from_softmax(pred)   # -log(clip(p, 1e-5, 1))

    d = dcrf.DenseCRF2D(W, H, K); d.setUnaryEnergy(U)
    d.addPairwiseGaussian(sxy=1, compat=3); d.addPairwiseBilateral(sxy=67, srgb=3, rgbim=image, compat=4)
    Q = np.array(d.inference(10)).reshape(K, H, W)

    /work/main/.venv/bin/python tools/parity/crf_golden.py [--out FILE]
"""
import argparse
from importlib.metadata import version
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax

MEAN_BGR = (104.008, 116.669, 122.675)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'tests', 'baselines', 'data', 'crf_golden.json')


def run_crf(unary, image, iters, sg, cg, sb, sr, cb):
    k, n = unary.shape
    h, w, _ = image.shape
    assert n == h * w
    d = dcrf.DenseCRF2D(w, h, k)
    d.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    d.addPairwiseGaussian(sxy=sg, compat=cg)
    d.addPairwiseBilateral(sxy=sb, srgb=sr, rgbim=np.ascontiguousarray(image, dtype=np.uint8), compat=cb)
    return np.array(d.inference(iters), dtype=np.float32).reshape(k, h, w)


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
    ap.add_argument('--out', default=OUT)
    args = ap.parse_args()
    rng = np.random.RandomState(20240611)
    cases = []
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
    q = run_crf(unary, image, 10, 1.0, 3.0, 67.0, 3.0, 4.0)
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
        q = run_crf(unary, rgb, 10, *par)
        cases.append({'name': name, 'height': h, 'width': w, 'labels': k, 'iterations': 10,
                      'gaussian_sxy': par[0], 'gaussian_compat': par[1], 'bilateral_sxy': par[2],
                      'bilateral_srgb': par[3], 'bilateral_compat': par[4], 'rgb': [int(v) for v in rgb.ravel()],
                      'probabilities': flat(prob), 'unary': flat(unary), 'marginals': flat(q)})

    with open(args.out, 'w') as f:
        json.dump({'source': 'tools/parity/crf_golden.py (pydensecrf2 ' + version('pydensecrf2') + ', numpy ' +
                             np.__version__ + ', torch ' + torch.__version__ + ')', 'cases': cases}, f,
                  separators=(',', ':'))
    print('wrote', os.path.normpath(args.out), os.path.getsize(args.out), 'bytes')


if __name__ == '__main__':
    main()
