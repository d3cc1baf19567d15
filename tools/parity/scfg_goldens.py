"""Goldens for harness/generation/scfg.* (tests/generation/test_scfg.cpp), made by the paper's OWN code.

S-CFG as the paper ran it lives in Darkbblue/goca's src-additional/generation-experiment:
  * utils_15.get_mask / utils_sigma.get_mask (GoCA on both CFG halves -> the token mask and the foreground mask),
  * the rate-map block inlined in MySDPipeline.__call__ of generate_for_fid_15.py / generate_for_fid_sigma.py
    (mask-region means of |eps_c - eps_u|, clamps, gaussian_smoothing.GaussianSmoothing(3, 0.5), the combine),
  * configs/config_model_{15,sigma}.py (the generation presets).
This script imports get_mask and GaussianSmoothing read-only from a checkout given on the command line, and runs
the rate block by reading its lines out of generate_for_fid_*.py (the file cannot be imported: it imports a
`utils_ours` module that is not in the repository) and exec'ing them unchanged. Nothing of the paper is copied
into this repository.

Run (the project's venv: torch 2.11, diffusers 0.32.2, torchvision 0.26.0 and einops 0.8.2, see
requirements/python-tools.txt):
    /work/main/.venv/bin/python tools/parity/scfg_goldens.py --ref <checkout of github:Darkbblue/goca>

Shims (this process only): a fake feature extractor whose feature_store.stored_feats is the synthetic CFG
capture (batch 2 = [uncond, cond], the paper's stored layout) and whose pipe.tokenizer returns a fixed token list.

Inputs are rounded to fp16-representable values and stored as F16 (eps as F32); both sides compute in float32.
Cases (CPU):
  sd:     SD-like UNet keys, CLIP-like tokens (<|startoftext|>, 6 words, <|endoftext|> padding), cross layers at
          8/4/8/8, S = 16, order 2, latents 32 x 32 (masks nearest-upsampled), 4 latent channels, G = 2.
  pixart: DiT-like keys, T5-like tokens (a stand-alone '▁' inside the prompt, '</s>', '<pad>'), cross maps masked
          as PixArt's attention mask does (cond: keys after '</s>' get 0; uncond: only key 0), S = 16,
          order 5, latents 16 x 16, 8 channels (learned sigma), G = 7.5 (so the 15/G clamp bites).
Writes tests/generation/goldens/scfg_goldens.safetensors and scfg_paper_configs.json.
"""
import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

ap = argparse.ArgumentParser()
ap.add_argument('--ref', required=True, help='checkout (work tree) of github:Darkbblue/goca')
ap.add_argument('--out', default=os.path.join(REPO, 'tests/generation/goldens'))
args = ap.parse_args()

GEN = os.path.join(args.ref, 'src-additional', 'generation-experiment')
sys.path.insert(0, GEN)
import utils_15  # noqa: E402
import utils_sigma  # noqa: E402
from gaussian_smoothing import GaussianSmoothing  # noqa: E402


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rate_block(script):
    """The lines of the paper's rate computation and combine, unchanged, from `script`."""
    lines = open(os.path.join(GEN, script)).read().split('\n')
    first = next(i for i, l in enumerate(lines) if "mask_t  =F.interpolate(ca_mask, R, mode = 'nearest')" in l)
    last = next(i for i, l in enumerate(lines) if 'rate = rate.to(noise_pred_text.dtype)' in l)
    combine = next(i for i, l in enumerate(lines)
                   if 'noise_pred = noise_pred_uncond + guidance_scale *rate* (noise_pred_text - noise_pred_uncond)' in l)
    assert first < last < combine
    body = textwrap.dedent('\n'.join(lines[first:last + 1]))
    return body + '\n' + lines[combine].strip() + '\n'


class FakeTokenizer:
    def __init__(self, tokens):
        self.tokens = tokens
        self.model_max_length = len(tokens)
        self.vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}

    def __call__(self, s, padding, max_length, truncation):
        assert padding == 'max_length' and max_length == len(self.tokens) and truncation
        return {'input_ids': [self.vocab[t] for t in self.tokens]}

    def get_vocab(self):
        return dict(self.vocab)


class Obj:
    pass


def fake_extractor(feats, tokens):
    fe = Obj()
    fe.feature_store = Obj()
    fe.feature_store.stored_feats = {k: v.clone() for k, v in feats.items()}
    fe.pipe = Obj()
    fe.pipe.tokenizer = FakeTokenizer(tokens)
    return fe


def model_config(version, layers, self_layers, ref, order, S):
    c = Obj()
    c.version = version
    c.feat_size = S
    c.cross_attn_setting = {'head_method': 'dot-product w/o clamp', 'layer_method': 'dot-product similarity',
                            'rescale_method': 'sum-1 rescaling + per-token renorm+', 'ref_layer': ref,
                            'layer': list(layers)}
    c.space_attn_setting = {'layer': list(self_layers)}
    c.postprocess_setting = [{'task': 'affinity', 'order': order}]
    return c


torch.manual_seed(20260514)
H, D, T, C_REF = 4, 8, 16, 6
HD = H * D
DOUT = HD  # never 2: get_mask splits every tensor whose first dimension is 2 into the CFG halves


def self_map(side, heads):
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing='ij')
    pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], 1).float()
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    return torch.stack([torch.softmax(-d2 / (2.0 * (1.0 + h)) + 0.5 * torch.randn(side ** 2, side ** 2), -1)
                        for h in range(heads)])


def cross_half(side, valid, start_bias):
    """[H, P, T] softmax maps over the first `valid` keys (the rest masked out, as PixArt's attention mask)."""
    P = side * side
    logits = 1.5 * torch.randn(H, P, T)
    logits[:, :, 0] += start_bias
    # a smooth spatial layout per token, so that the masks have regions
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing='ij')
    for t in range(1, T):
        cy, cx = torch.rand(2) * 2 - 1
        logits[:, :, t] += 3.0 * torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 0.3).reshape(1, P)
    logits[:, :, valid:] = -10000.0
    return torch.softmax(logits, -1)


def capture(blocks, ref_block, valid_cond, valid_uncond):
    """The paper's stored_feats for a CFG batch [uncond, cond], rounded to fp16-representable values."""
    feats = {}
    for i, (name, side) in enumerate(blocks):
        P = side * side
        A = torch.stack([cross_half(side, valid_uncond, 4.0), cross_half(side, valid_cond, 2.0)])  # [2, H, P, T]
        V = torch.randn(2, H, T, D)
        Z = torch.stack([torch.cat([A[b, h] @ V[b, h] for h in range(H)], 1) for b in range(2)])  # [2, P, HD]
        W = torch.randn(DOUT, HD) / math.sqrt(HD)
        feats[name + '-cross-map'] = A
        feats[name + '-cross-special-value'] = V
        feats[name + '-cross-special-post-value'] = Z
        feats[name + '-cross-special-weight'] = W
        heads = 2 if i == 0 else 1  # per-head self maps once, head means (what the harness stores) elsewhere
        feats[name + '-self-map'] = torch.stack([self_map(side, heads), self_map(side, heads)])  # [2, h, P, P]
    side = dict(blocks)[ref_block]
    feats[ref_block + '-cross-q'] = torch.randn(2, C_REF, side, side)
    return {k: v.half().float() for k, v in feats.items()}


CASES = {
    'sd': dict(
        module=utils_15, script='generate_for_fid_15.py', version='1-5',
        blocks=[('down-level1-repeat0-vit-block0', 8), ('down-level2-repeat0-vit-block0', 4),
                ('up-level1-repeat0-vit-block0', 8), ('up-level2-repeat1-vit-block0', 8)],
        ref='up-level2-repeat1-vit-block0',
        self_layers=['up-level1-repeat0-vit-block0-self-map', 'down-level2-repeat0-vit-block0-self-map'],
        tokens=['<|startoftext|>', 'a</w>', 'red</w>', 'cat</w>', 'on</w>', 'a</w>', 'mat</w>'] +
               ['<|endoftext|>'] * (T - 7),
        valid_cond=T, valid_uncond=T, order=2, S=16, R=32, channels=4, G=2.0),
    'pixart': dict(
        module=utils_sigma, script='generate_for_fid_sigma.py', version='pixart-sigma-512',
        blocks=[('vit-block1', 8), ('vit-block2', 8), ('vit-block3', 8)],
        ref='vit-block2',
        self_layers=['vit-block2-self-map', 'vit-block3-self-map'],
        tokens=['▁a', '▁red', '▁', 'c', 'at', '▁on', '▁mat', '</s>'] + ['<pad>'] * (T - 8),
        valid_cond=8, valid_uncond=1, order=5, S=16, R=16, channels=8, G=7.5),
}

gold = {}
meta = {'cases': {}}
for name, c in CASES.items():
    feats = capture(c['blocks'], c['ref'], c['valid_cond'], c['valid_uncond'])
    layers = [b + '-cross-map' for b, _ in c['blocks']]
    cfg = model_config(c['version'], layers, c['self_layers'], c['ref'] + '-cross-q', c['order'], c['S'])
    ca_mask, fore_mask = c['module'].get_mask(fake_extractor(feats, c['tokens']), cfg, ['a prompt'], r=c['R'])

    R = c['R']
    noise_pred_uncond = torch.randn(1, c['channels'], R, R)
    noise_pred_text = noise_pred_uncond + 0.5 * torch.randn(1, c['channels'], R, R)
    ns = {'torch': torch, 'F': F, 'GaussianSmoothing': GaussianSmoothing, 'ca_mask': ca_mask, 'fore_mask': fore_mask,
          'R': R, 'guidance_scale': c['G'], 'noise_pred_uncond': noise_pred_uncond,
          'noise_pred_text': noise_pred_text}
    exec(rate_block(c['script']), ns)

    for k, v in feats.items():
        gold[f'{name}.in.{k}'] = v.half().contiguous()  # exact: the values are fp16-representable
    gold[f'{name}.in.eps_uncond'] = noise_pred_uncond
    gold[f'{name}.in.eps_cond'] = noise_pred_text
    gold[f'{name}.out.token_mask'] = ca_mask.contiguous()
    gold[f'{name}.out.foreground'] = fore_mask.contiguous()
    gold[f'{name}.out.rate'] = ns['rate'].contiguous()
    gold[f'{name}.out.eps'] = ns['noise_pred'].contiguous()
    meta['cases'][name] = {'version': c['version'], 'layers': layers, 'self_layers': c['self_layers'],
                           'ref_layer': c['ref'] + '-cross-q', 'propagation_order': c['order'],
                           'output_size': c['S'], 'guidance_scale': c['G'], 'tokens': c['tokens']}
    mt = ca_mask[0]
    print(f'{name}: token mask {tuple(mt.shape)}, tokens used {sorted(set(mt.argmax(0).flatten().tolist()))}, '
          f'ties {(mt.sum(0) > 1).sum().item()}, empty {(mt.sum(0) == 0).sum().item()}, '
          f'foreground {fore_mask.mean().item():.3f}, rate [{ns["rate"].min().item():.3f}, '
          f'{ns["rate"].max().item():.3f}]')

# The generation presets: configs/config_model_{15,sigma}.py of the generation experiment.
configs = {}
for key, fname in (('sd15', 'config_model_15.py'), ('pixart-sigma', 'config_model_sigma.py')):
    m = load_module(os.path.join(GEN, 'configs', fname), 'gen_config_' + key).ModelConfig()
    configs[key] = {'file': 'src-additional/generation-experiment/configs/' + fname, 'version': m.version,
                    'img_size': m.img_size, 'feat_size': m.feat_size, 't': m.t,
                    'head_method': m.cross_attn_setting['head_method'],
                    'layer_method': m.cross_attn_setting['layer_method'],
                    'rescale_method': m.cross_attn_setting['rescale_method'],
                    'ref_layer': m.cross_attn_setting['ref_layer'], 'layer': m.cross_attn_setting['layer'],
                    'self_layer': m.space_attn_setting['layer'],
                    'postprocess': [p['task'] for p in m.postprocess_setting],
                    'affinity_order': [p['order'] for p in m.postprocess_setting if p['task'] == 'affinity']}

rev = subprocess.run(['git', '-C', args.ref, 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
os.makedirs(args.out, exist_ok=True)
save_file(gold, os.path.join(args.out, 'scfg_goldens.safetensors'),
          metadata={'generator': 'tools/parity/scfg_goldens.py', 'paper_commit': rev or 'unknown',
                    'torch': torch.__version__})
with open(os.path.join(args.out, 'scfg_paper_configs.json'), 'w') as f:
    json.dump({'generator': 'tools/parity/scfg_goldens.py', 'paper_commit': rev or 'unknown', 'configs': configs,
               'cases': meta['cases']}, f, indent=1, ensure_ascii=False)
    f.write('\n')
print('wrote', args.out)
