"""Times the paper's own GoCA post-processing on random SD1.5/SDXL/Flux-sized captures (CPU, float32).

The same shapes, distributions and sharing as tests/bench/bench_goca.cpp: `goca_cross_run` (head + layer
aggregation, tokens, rescaling, background merge) + `self_attn_run` + `affinity_propagate` (order 2),
imported read-only from Darkbblue/goca. Prints ms/image.

    .venv/bin/python tools/parity/goca_paper_timing.py [sd15 sdxl flux] [--iters N]

Shims of paper_goca.py (an empty `einops`, `.to('cuda')` -> CPU) and a fake extractor returning the capture.
Tensors of the same shape are shared across layers (the values do not change the work; keeps Flux at ~0.5 GB).
Self maps are head means [1, P, P] on both sides (what the harness captures); the code's `.mean(dim=0)` on
them is then a no-op copy.
"""
import argparse
import math
import os
import sys
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument('which', nargs='*', default=['sd15', 'sdxl', 'flux'])
ap.add_argument('--iters', type=int, default=2)
ap.add_argument('--ref', default='/work/ref/goca')
args = ap.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_goca  # noqa: E402

cad, sad, ppd = paper_goca.load(args.ref)


def sd15_layers():
    l = []
    for r in (0, 1):
        l.append((f'down-level0-repeat{r}-vit-block0', 64, 8, 320))
    for r in (0, 1):
        l.append((f'down-level1-repeat{r}-vit-block0', 32, 8, 640))
    for r in (0, 1):
        l.append((f'down-level2-repeat{r}-vit-block0', 16, 8, 1280))
    l.append(('mid-vit-block0', 8, 8, 1280))
    for r in (0, 1, 2):
        l.append((f'up-level1-repeat{r}-vit-block0', 16, 8, 1280))
    for r in (0, 1, 2):
        l.append((f'up-level2-repeat{r}-vit-block0', 32, 8, 640))
    for r in (0, 1, 2):
        l.append((f'up-level3-repeat{r}-vit-block0', 64, 8, 320))
    return l


def sdxl_layers():
    l = []

    def add(p, blocks, s, h, c):
        for b in range(blocks):
            l.append((f'{p}-vit-block{b}', s, h, c))
    for r in (0, 1):
        add(f'down-level1-repeat{r}', 2, 64, 10, 640)
    for r in (0, 1):
        add(f'down-level2-repeat{r}', 10, 32, 20, 1280)
    add('mid', 10, 32, 20, 1280)
    for r in (0, 1, 2):
        add(f'up-level0-repeat{r}', 10, 32, 20, 1280)
    for r in (0, 1, 2):
        add(f'up-level1-repeat{r}', 2, 64, 10, 640)
    return l


def flux_layers():
    return [(f'vit-block{b}', 64, 24, 3072) for b in range(57)]


SETUPS = {
    'sd15': (sd15_layers, 77, 'up-level2-repeat1-vit-block0-cross-q', 640, 32,
             ['up-level3-repeat0-vit-block0-self-map', 'up-level3-repeat1-vit-block0-self-map',
              'down-level0-repeat1-vit-block0-self-map'], 'dot-product w/o clamp'),
    'sdxl': (sdxl_layers, 77, 'up-level1-repeat0-vit-block0-cross-q', 640, 64,
             ['up-level1-repeat0-vit-block0-self-map', 'up-level1-repeat0-vit-block1-self-map',
              'up-level1-repeat1-vit-block0-self-map', 'up-level1-repeat1-vit-block1-self-map',
              'up-level1-repeat2-vit-block0-self-map', 'down-level1-repeat0-vit-block0-self-map',
              'down-level1-repeat0-vit-block1-self-map'], 'dot-product w/o clamp'),
    'flux': (flux_layers, 512, 'vit-block27-attn-out', 3072, 64, ['vit-block12-self-map', 'vit-block18-self-map'],
             'average'),
}


def make(which):
    layers_fn, T, ref_key, ref_c, ref_r, self_layers, head = SETUPS[which]
    torch.manual_seed(0)
    feats, cache, self_cache, cross = {}, {}, {}, []
    for name, side, heads, ch in layers_fn():
        P, d = side * side, ch // heads
        key = (side, heads, ch)
        if key not in cache:
            logits = torch.randn(heads, P, T) * 1.5
            logits[:, :, 0] += 4.0
            A = torch.softmax(logits, -1)
            t = [A]
            if head != 'average':
                V = torch.randn(heads, T, d)
                Z = torch.bmm(A, V).permute(1, 0, 2).reshape(P, heads * d).contiguous()
                W = torch.randn(ch, ch) / math.sqrt(ch)
                t += [V, Z, W]
            cache[key] = t
        if side not in self_cache:
            self_cache[side] = torch.softmax(torch.randn(1, P, P) * 3, -1)
        t = cache[key]
        feats[name + '-cross-map'] = t[0].unsqueeze(0)
        if len(t) > 1:
            feats[name + '-cross-special-value'] = t[1]
            feats[name + '-cross-special-post-value'] = t[2].unsqueeze(0)
            feats[name + '-cross-special-weight'] = t[3]
        feats[name + '-self-map'] = self_cache[side].unsqueeze(0)
        cross.append(name + '-cross-map')
    feats[ref_key] = torch.randn(1, ref_c, ref_r, ref_r)
    return feats, ref_key, self_layers, head


FakeExtractor = paper_goca.FakeExtractor


def run_once(feats, ref_key, self_layers, head):
    maps, features = cad.goca_cross_run(
        FakeExtractor(feats), None, None, [3, 4, 6, 9, 11, 12], [[9], [11, 12]], {15: [3, 4], 7: [6]}, 64, 100,
        head, 'dot-product similarity', 'sum-1 rescaling + per-token renorm+', ref_key, None)
    space = sad.self_attn_run(features, 64, self_layers)
    return ppd.affinity_propagate(maps, space, 2)


print(f'torch {torch.__version__}, threads {torch.get_num_threads()}')
for which in args.which:
    feats, ref_key, self_layers, head = make(which)
    with torch.no_grad():
        times, cpu = [], []
        for _ in range(args.iters):
            t0, c0 = time.perf_counter(), time.process_time()
            scores = run_once(feats, ref_key, self_layers, head)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    first = next(k for k in feats if k.endswith('-cross-map'))
    in_sum = feats[first].double().sum().item() + feats[ref_key].double().sum().item()
    print(f'{which}: in_sum {in_sum:.6g} out_sum {torch.nansum(scores.double()).item():.6g}')
    print(f'{which}: paper code {1000 * min(times):.0f} ms/image wall (min of {args.iters}), '
          f'{1000 * min(cpu):.0f} ms/image CPU')
