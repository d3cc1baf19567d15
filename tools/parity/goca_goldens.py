"""Goldens for goca/ (tests/goca/test_goldens.cpp), made by the paper's OWN functions.

Runs `goca_cross_run`, `self_attn_run` and `affinity_propagate` from Darkbblue/goca
(src-main/components/*_dispatch.py, imported read-only from /work/ref/goca at generation time) on CPU in
float32 over small synthetic captures, and writes inputs and outputs to
tests/goca/goldens/goca_goldens.safetensors.

Run (the pinned stack of requirements/python-tools.txt, torchvision included):
    .venv/bin/python tools/parity/goca_goldens.py [--ref /work/ref/goca]

Shims (monkeypatches in this process only, the paper's files are not edited or copied):
  * `einops` is imported but unused by these functions: an empty module stands in;
  * `.to('cuda')` (the average head weights) is redirected to the CPU;
  * a fake feature extractor returns the synthetic capture from `extract` (version 'flux' skips the text
    encoder, exactly as the code does for Flux);
  * the per-layer head weights and the normalised layer weights are read from the function's frame with
    sys.settrace (they are locals of goca_cross_run; nothing in its computation is changed);
  * `ref_mode: full` feeds the reference feature with one more leading dimension, so that the code's
    double indexing yields all channels (C x r x r) instead of channel 0.

Inputs (shared by every case): 8 heads, T = 24 tokens (SOS-dominant softmax cross maps), head dim 8,
Dout 48, cross layers at 16/8/8/4 (the second 8 layer has no special tensors: forced average), self maps
(locality-biased softmax; 16: head mean [1,P,P], 8 and 4: 3 heads), references [6,8,8] and [6,16,16].
Everything is rounded to fp16-representable values and stored as F16; both sides compute in float32.
"""
import argparse
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

ap = argparse.ArgumentParser()
ap.add_argument('--ref', default='/work/ref/goca')
ap.add_argument('--out', default=os.path.join(REPO, 'tests/goca/goldens/goca_goldens.safetensors'))
args = ap.parse_args()

sys.path.insert(0, HERE)
import paper_goca  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

cad, sad, ppd = paper_goca.load(args.ref)
torch.manual_seed(1234)

H, T, D, DOUT = 8, 24, 8, 48
F16 = lambda t: t.to(torch.float16).to(torch.float32)  # noqa: E731


LAYERS = [  # (cross block, side, has special tensors)
    ('down-level1-repeat0', 16, True),
    ('down-level2-repeat0', 8, True),
    ('down-level2-repeat1', 8, False),
    ('mid', 4, True),
]
REF8 = 'up-level2-repeat1-vit-block0-cross-q'
REF16 = 'up-level1-repeat0-vit-block0-cross-q'


def self_map(side, heads):
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing='ij')
    pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], 1).float()
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    out = []
    for h in range(heads):
        logits = -d2 / (2.0 * (1.0 + h)) + 0.5 * torch.randn(side * side, side * side)
        out.append(torch.softmax(logits, -1))
    return F16(torch.stack(out))


inputs = {}
for name, side, special in LAYERS:
    P = side * side
    logits = 1.5 * torch.randn(H, P, T)
    logits[:, :, 0] += 4.0  # SOS dominates
    A = F16(torch.softmax(logits, -1))
    inputs[name + '-vit-block0-cross-map'] = A
    if special:
        V = F16(torch.randn(H, T, D))
        Z = F16(torch.cat([A[h] @ V[h] for h in range(H)], 1))  # concat_h A_h V_h, [P, H*D]
        W = F16(torch.randn(DOUT, H * D) / math.sqrt(H * D))
        inputs[name + '-vit-block0-cross-special-value'] = V
        inputs[name + '-vit-block0-cross-special-post-value'] = Z
        inputs[name + '-vit-block0-cross-special-weight'] = W
    inputs[name + '-vit-block0-self-map'] = self_map(side, 1 if side == 16 else 3)
inputs[REF8] = F16(torch.randn(6, 8, 8))
inputs[REF16] = F16(torch.randn(6, 16, 16))
CROSS = [n + '-vit-block0-cross-map' for n, _, _ in LAYERS]
SELF16 = 'down-level1-repeat0-vit-block0-self-map'
SELF8 = 'down-level2-repeat0-vit-block0-self-map'
SELF4 = 'mid-vit-block0-self-map'

# degenerate post-values for layer 1 (8 x 8): zero rows (o = 0), a NaN in one head, a huge value
Zd = inputs['down-level2-repeat0-vit-block0-cross-special-post-value'].clone()
Zd[3] = 0.0
Zd[10] = 0.0
Zd[20, 5] = float('nan')
Zd[30, 9] = 3.0e38
inputs['degenerate-post-value'] = Zd

HEADS = ['average', 'l2-norm', 'cosine', 'dot-product', 'dot-product w/o clamp', 'cosine + VW', 'dot-product + VW']
LAYER_M = ['vanilla', 'dot-product similarity', 'mse', 'iou-like']
RESCALE = ['raw', 'per-token renorm', 'per-token renorm+', 'sum-1 rescaling', 'sum-1 rescaling + per-token renorm',
           'sum-1 rescaling + per-token renorm+', 'sum-1 rescaling + per-token renorm x raw',
           'sum-1 rescaling + per-token renorm+ x raw', 'sum-1 rescaling + per-token renorm+ x raw + renorm']


FakeExtractor = paper_goca.FakeExtractor


# the line of goca_cross_run right after the head weights are computed
_src, _start = __import__('inspect').getsourcelines(cad.goca_cross_run)
_AGG_LINE = _start + next(i for i, l in enumerate(_src) if 'natural_aggregation = torch.zeros' in l)


def run_paper(layers, ref_key, objects, background, rescaling, S, head, layer, rescale, keep_all=None,
              ref_full=False, multi='mean', post_value_override=None):
    feats = {}
    for k in layers:  # insertion order = forward order
        feats[k] = inputs[k].unsqueeze(0)
        for s in ('special-value', 'special-post-value', 'special-weight'):
            kk = k.replace('map', s)
            if kk in inputs:
                v = inputs[kk]
                if s == 'special-post-value':
                    if post_value_override is not None and k in post_value_override:
                        v = post_value_override[k]
                    v = v.unsqueeze(0)
                feats[kk] = v
        feats[k.replace('cross', 'self')] = inputs[k.replace('cross', 'self')].unsqueeze(0)
    ref = inputs[ref_key].unsqueeze(0)
    feats[ref_key] = ref.unsqueeze(0) if ref_full else ref
    head_w, rec = {}, {}

    def tracer(frame, event, arg):
        if frame.f_code is not cad.goca_cross_run.__code__:
            return None
        if event == 'line' and frame.f_lineno == _AGG_LINE:
            head_w[frame.f_locals['k']] = frame.f_locals['natural_weight'].clone()
        if event == 'return':
            rec['layer_weights'] = frame.f_locals['weights'].clone()
            rec['aggregated'] = frame.f_locals['aggregated_attn'].clone()
        return tracer

    cad.multi_token_method = multi
    sys.settrace(tracer)
    try:
        out, features = cad.goca_cross_run(FakeExtractor(feats), None, None, list(rescaling), [list(b) for b in background],
                                           {c: list(t) for c, t in objects}, S, 100, head, layer, rescale, ref_key,
                                           keep_all)
    finally:
        sys.settrace(None)
        cad.multi_token_method = 'mean'
    return out, features, head_w, rec


def propagate_paper(features, maps, self_layers, S, order):
    space = sad.self_attn_run(features, S, self_layers)
    return ppd.affinity_propagate(maps.clone(), space, order)


gold = {}
canon_head = {'average': 'average', 'l2-norm': 'l2_norm', 'cosine': 'cosine', 'dot-product': 'dot_product',
              'dot-product w/o clamp': 'dot_product_no_clamp', 'cosine + VW': 'cosine_vw',
              'dot-product + VW': 'dot_product_vw'}
canon_layer = {'vanilla': 'vanilla', 'dot-product similarity': 'dot_product_similarity', 'mse': 'mse',
               'iou-like': 'iou_like'}
canon_rescale = dict(zip(RESCALE, ['raw', 'per_token_renorm', 'per_token_renorm_plus', 'sum1', 'sum1_renorm',
                                   'sum1_renorm_plus', 'sum1_renorm_x_raw', 'sum1_renorm_plus_x_raw',
                                   'sum1_renorm_plus_x_raw_renorm']))

# ----- case A: every head x layer x rescale combination (ref 8, S = 8, 2 objects, 2 background objects)
A_OBJ = [(15, [3, 4]), (7, [6])]
A_BG = [[9], [11, 12]]
A_RHO = [3, 4, 6, 9, 11, 12]
for head in HEADS:
    for layer in LAYER_M:
        for rescale in RESCALE:
            out, features, hw, rec = run_paper(CROSS, REF8, A_OBJ, A_BG, A_RHO, 8, head, layer, rescale)
            tag = f'A/{canon_head[head]}/{canon_layer[layer]}/{canon_rescale[rescale]}'
            gold[tag + '/pre'] = out
            if rescale == 'sum-1 rescaling + per-token renorm+':
                if layer == 'dot-product similarity' or head == 'dot-product w/o clamp':
                    gold[tag + '/aggregated'] = rec['aggregated']
                if layer == 'dot-product similarity':
                    for k, w in hw.items():
                        gold[f'A/{canon_head[head]}/head_weights/{k}'] = w
                if head == 'dot-product w/o clamp':
                    gold[f'A/{canon_layer[layer]}/layer_weights'] = rec['layer_weights']
                    gold[tag + '/scores'] = propagate_paper(features, out, [SELF16, SELF8], 8, 2)

# ----- case A, variants on the GoCA default
G = ('dot-product w/o clamp', 'dot-product similarity', 'sum-1 rescaling + per-token renorm+')
for layer in LAYER_M[1:]:  # ref_mode full (all channels)
    out, features, hw, rec = run_paper(CROSS, REF8, A_OBJ, A_BG, A_RHO, 8, G[0], layer, G[2], ref_full=True)
    gold[f'A/full/{canon_layer[layer]}/layer_weights'] = rec['layer_weights']
    gold[f'A/full/{canon_layer[layer]}/pre'] = out
for rescale in RESCALE:  # multi-token sum
    out, _, _, _ = run_paper(CROSS, REF8, A_OBJ, A_BG, A_RHO, 8, G[0], G[1], rescale, multi='sum')
    gold[f'A/sum/{canon_rescale[rescale]}/pre'] = out
out, features, _, _ = run_paper(CROSS, REF8, A_OBJ, A_BG, A_RHO, 8, G[0], G[1], G[2], keep_all=True)
gold['A/keep_all/pre'] = out
gold['A/keep_all/scores'] = propagate_paper(features, out, [SELF16, SELF8], 8, 2)
# an object with no tokens (quirk Q4): NaN map, kept NaN by propagation
out, features, _, _ = run_paper(CROSS, REF8, [(15, [3, 4]), (5, [])], A_BG, A_RHO, 8, *G)
gold['A/empty/pre'] = out
gold['A/empty/scores'] = propagate_paper(features, out, [SELF16, SELF8], 8, 2)

# ----- case B: no background objects (zero support map), ref 16, S = 16, propagation orders
B_OBJ = [(3, [2]), (8, [5, 6, 7])]
B_RHO = [2, 5, 6, 7]
for layer in LAYER_M:
    for ref_full in (False, True):
        if layer == 'vanilla' and ref_full:
            continue
        out, features, hw, rec = run_paper(CROSS, REF16, B_OBJ, [], B_RHO, 16, G[0], layer, G[2], ref_full=ref_full)
        tag = f'B/{"full" if ref_full else "paper"}/{canon_layer[layer]}'
        gold[tag + '/layer_weights'] = rec['layer_weights']
        gold[tag + '/pre'] = out
        if layer == 'dot-product similarity' and not ref_full:
            for order in (0, 1, 2, 5):
                gold[f'B/order{order}/scores'] = propagate_paper(features, out, [SELF16, SELF8, SELF4], 16, order)
out, features, _, rec = run_paper(CROSS, REF16, B_OBJ, [], B_RHO, 16, 'average', 'vanilla', 'per-token renorm+')
gold['B/vanilla_preset/pre'] = out
gold['B/vanilla_preset/aggregated'] = rec['aggregated']
gold['B/vanilla_preset/layer_weights'] = rec['layer_weights']
gold['B/vanilla_preset/scores'] = propagate_paper(features, out, [SELF16, SELF8, SELF4], 16, 2)

# ----- case D: degenerate pixels in layer down-level2-repeat0 (8 x 8), every head method
DL = 'down-level2-repeat0-vit-block0-cross-map'
for head in HEADS:
    _, features, hw, _ = run_paper([DL], REF8, A_OBJ, A_BG, A_RHO, 8, head, 'vanilla', 'raw',
                                   post_value_override={DL: inputs['degenerate-post-value']})
    gold[f'D/{canon_head[head]}/head_weights'] = hw[DL]
    gold[f'D/{canon_head[head]}/head_map'] = features[DL]

tensors = {'in/' + k: (v if k.startswith('degenerate') else v.to(torch.float16)) for k, v in inputs.items()}
tensors.update({'out/' + k: v.to(torch.float32).contiguous() for k, v in gold.items()})
os.makedirs(os.path.dirname(args.out), exist_ok=True)
save_file(tensors, args.out, metadata={'generator': 'tools/parity/goca_goldens.py',
                                       'source': 'Darkbblue/goca src-main/components (CPU, float32)'})
print(f'wrote {len(tensors)} tensors, {os.path.getsize(args.out)} bytes to {args.out}')
