#!/usr/bin/env python3
"""Full-size parity (`make parity-full`, not in CI): goca-bench against diffusers 0.32.2 / transformers 4.47.1 on
random weights at the published config sizes (published_configs.py), fp32 on the CPU.

Per backbone:
  1. builds the models with their library's default random init, saves them in diffusers layout to a temp folder
     (model_index.json, unet|transformer, vae, text_encoder, tokenizer, scheduler);
  2. writes a synthetic RGB image and runs `goca-bench capture --weights DIR --image IMG --prompt P --method M.yaml
     --dtype fp32 --device cpu --out CAP` (the paper's GoCA capture set of that backbone: cross maps with every
     head, self maps as head means, values, post-values, out weights, the reference query);
  3. runs the reference pipeline on the same weights, image, prompt and seed as GDF does (tokenizer, text encoder,
     Pillow resize + VaeImageProcessor, VAE posterior sample with the same noise draws: a CPU torch.Generator seeded
     with goca-bench's noise_seed(seed, image id), VAE ε then diffusion ε; the scheduler's noising at t = 100), then
     the denoiser with the paper's capture processors (sd_goldens.AttnStoreProcessor / dit_goldens.PaperAttnStore),
     comparing every tensor goca-bench wrote (the input.* tensors and every capture; a self map stored as a head mean
     [1, N, N] is compared with the mean over heads) as it is produced;
  4. prints per tensor the max abs and max relative error (max |a - b| / max |b|) and fails above --tol (1e-4).

    .venv/bin/python tools/parity/parity_full.py --goca-bench build/bin/goca-bench [--only sd15|pixart-sigma]
        [--workdir DIR] [--keep] [--reuse-capture] [--t5-layers N] [--threads N] [--tol 1e-4]

SD1.5 at 512²: the whole model at its published sizes (UNet 859.5 M, CLIP-L 123.1 M, VAE 83.7 M).
PixArt-Sigma at 1024²: transformer (610.9 M) and VAE at their published sizes; T5 v1.1 XXL at its published width
(d_model 4096, 64 heads, d_ff 10240, vocab 32128) but --t5-layers deep (default 2 of 24): the 24-layer encoder is
19 GB in fp32, more than this machine's memory holds next to everything else (its keys, shapes and parameter
count are checked at full size on the meta device by tests/backbones/test_sd_parity.cpp FullSizeGraphs, and its
numerics by the tiny T5 goldens). Its tokenizer is tests/text/golden/tiny_spiece.model (the real one is not
available offline). SDXL at 1024² is not run: its UNet alone is 10.3 GB in fp32, held twice (reference and
goca-bench) it does not fit this machine's 24 GB beside the other work; docs/parity.md says what covers it.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_tokenizers as hft  # noqa: E402
import published_configs as P  # noqa: E402
from dit_goldens import PaperAttnStore  # noqa: E402
from sd_goldens import AttnStoreProcessor, install_processors  # noqa: E402

from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, PixArtTransformer2DModel,  # noqa: E402
                       PNDMScheduler, UNet2DConditionModel)
from diffusers.image_processor import VaeImageProcessor  # noqa: E402
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel,  # noqa: E402
                          T5Tokenizer)

PAPER_T = 100
SEED = 0
PROMPT = "a photo of a cat, dog, (person, clothes), grass, sky, background"
M64 = (1 << 64) - 1


def noise_seed(seed, image_id):
    """goca-bench's per-image noise seed (harness/backbones/image_preprocess.cpp): FNV-1a over the id, splitmix64."""
    h = 1469598103934665603
    for c in image_id.encode("utf-8"):
        h = ((h ^ c) * 1099511628211) & M64
    z = (seed + 0x9E3779B97F4A7C15 * (h | 1)) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def noises(image_id, vae_channels, channels, latent):
    g = torch.Generator().manual_seed(noise_seed(SEED, image_id))
    eps_vae = torch.randn(vae_channels, latent, latent, generator=g)
    eps = torch.randn(channels, latent, latent, generator=g)
    return eps_vae[None], eps[None]


def write_image(path, w=640, h=480):
    """A deterministic synthetic photo-like RGB image: gradients, a few shapes, mild noise."""
    rng = np.random.RandomState(7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([120 + 80 * np.sin(xx / 53.0), 90 + 60 * np.cos(yy / 37.0), 140 + 50 * np.sin((xx + yy) / 71.0)], -1)
    img[(xx - 220) ** 2 + (yy - 240) ** 2 < 90 ** 2] = (200, 60, 40)
    img[(yy > 300) & (xx > 380) & (xx < 600)] = (40, 150, 60)
    img += rng.randn(h, w, 3) * 6
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)


def save_diffusers(model, folder):
    model.save_pretrained(folder, safe_serialization=True)


class Comparison:
    """goca-bench's capture file, compared tensor by tensor as the reference produces them."""

    def __init__(self, path, tol):
        self.f = safe_open(path, "pt")
        self.keys = set(self.f.keys())
        self.tol = tol
        self.rows = []

    def check(self, key, ref):
        if key not in self.keys:
            return
        got = self.f.get_tensor(key).double()
        ref = ref.detach().double()
        if key.endswith("-map") and got.dim() == ref.dim() > 0 and got.shape[0] == 1 and ref.shape[0] > 1:
            ref = ref.mean(0, keepdim=True)  # a map stored as its head mean
        if got.shape != ref.shape:
            self.rows.append((key, tuple(got.shape), float("inf"), float("inf"), "shape " + str(tuple(ref.shape))))
            return
        diff = (got - ref).abs().max().item() if got.numel() else 0.0
        rel = diff / max(ref.abs().max().item(), 1e-30) if got.numel() else 0.0
        self.rows.append((key, tuple(got.shape), diff, rel, ""))

    def report(self, name):
        seen = {r[0] for r in self.rows}
        missing = sorted(self.keys - seen)
        worst = max(self.rows, key=lambda r: r[3]) if self.rows else None
        bad = [r for r in self.rows if not r[3] <= self.tol]
        for key, shape, diff, rel, note in sorted(self.rows):
            flag = "  FAIL" if not rel <= self.tol else ""
            print(f"  {key:58s} {str(list(shape)):22s} max abs {diff:.3g}  max rel {rel:.3g}{flag} {note}")
        print(f"{name}: {len(self.rows)} tensors compared, {len(bad)} above {self.tol:g}, {len(missing)} not compared"
              + (f" ({missing[:6]})" if missing else "") +
              (f"; worst {worst[0]} max rel {worst[3]:.3g} (max abs {worst[2]:.3g})" if worst else ""))
        return not bad and not missing and self.rows


class SdStore:
    """Target of sd_goldens.AttnStoreProcessor (`store.t[key] = tensor`, batch first, special-weight expanded)."""

    def __init__(self, cmp):
        self.cmp, self.t = cmp, self

    def __setitem__(self, key, value):
        self.cmp.check(key, value[0])


class DitStore:
    """Target of dit_goldens.PaperAttnStore (`store[key] = tensor`, batch first except special-weight)."""

    def __init__(self, cmp):
        self.cmp = cmp

    def __setitem__(self, key, value):
        self.cmp.check(key, value if key.endswith("special-weight") else value[0])


def run_capture(args, folder, image, method, out, extra=()):
    cmd = [args.goca_bench, "capture", "--weights", folder, "--image", image, "--prompt", PROMPT, "--method", method,
           "--dtype", "fp32", "--device", "cpu", "--seed", str(SEED), "--out", out] + list(extra)
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    return time.time() - t0


def timed(label, fn):
    t0 = time.time()
    out = fn()
    print(f"  [{label}: {time.time() - t0:.1f} s]", flush=True)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Stable Diffusion v1.5 at 512²
# ---------------------------------------------------------------------------------------------------------------
def build_sd15(folder):
    torch.manual_seed(0)
    write_json(os.path.join(folder, "model_index.json"),
               {"_class_name": "StableDiffusionImg2ImgPipeline", "_diffusers_version": "0.32.2"})
    unet = UNet2DConditionModel(**P.kwargs(P.SD15_UNET)).eval()
    save_diffusers(unet, os.path.join(folder, "unet"))
    vae = AutoencoderKL(**P.kwargs(P.SD15_VAE)).eval()
    save_diffusers(vae, os.path.join(folder, "vae"))
    text = CLIPTextModel(CLIPTextConfig(**P.kwargs(P.SD15_TEXT_ENCODER))).eval()
    text.save_pretrained(os.path.join(folder, "text_encoder"), safe_serialization=True)
    tok = hft.clip_tokenizer(os.path.join(folder, "tokenizer"))
    tok.save_pretrained(os.path.join(folder, "tokenizer"))
    write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), P.SD15_SCHEDULER)
    return unet, vae, text


def reference_sd15(folder, models, image_path, cmp):
    unet, vae, text = models
    size = 512
    tok = CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
    ids = tok(PROMPT, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    ehs = text(ids).last_hidden_state
    cmp.check("input.encoder_hidden_states", ehs[0])
    pil = Image.open(image_path).resize((size, size)).convert("RGB")
    x = VaeImageProcessor(vae_scale_factor=8).preprocess(pil, height=size, width=size)
    dist = vae.encode(x).latent_dist
    eps_vae, eps = noises(os.path.splitext(os.path.basename(image_path))[0], 4, 4, size // 8)
    z = (dist.mean + dist.std * eps_vae) * vae.config.scaling_factor
    sched = PNDMScheduler.from_config(P.SD15_SCHEDULER)
    sched.set_timesteps(1000)
    t_start = max(1000 - min(int(1000 * PAPER_T / 1000), 1000), 0)
    t = sched.timesteps[t_start * sched.order:][:1]
    lat = sched.scale_model_input(sched.add_noise(z, eps, t), t)
    cmp.check("input.latents", lat[0])
    cmp.check("input.timestep", t[0])
    install_processors(unet, SdStore(cmp))
    timed("diffusers UNet forward", lambda: unet(lat, t, encoder_hidden_states=ehs))


# ---------------------------------------------------------------------------------------------------------------
# PixArt-Sigma at 1024²
# ---------------------------------------------------------------------------------------------------------------
def build_pixart(folder, t5_layers):
    torch.manual_seed(0)
    write_json(os.path.join(folder, "model_index.json"),
               {"_class_name": "PixArtSigmaPipeline", "_diffusers_version": "0.32.2"})
    tr = PixArtTransformer2DModel(**P.kwargs(P.PIXART_TRANSFORMER)).eval()
    save_diffusers(tr, os.path.join(folder, "transformer"))
    vae = AutoencoderKL(**P.kwargs(P.PIXART_VAE)).eval()
    save_diffusers(vae, os.path.join(folder, "vae"))
    cfg = dict(P.kwargs(P.T5_XXL), num_layers=t5_layers, num_decoder_layers=t5_layers)
    t5 = T5EncoderModel(T5Config(**cfg)).eval()
    t5.save_pretrained(os.path.join(folder, "text_encoder"), safe_serialization=True)
    os.makedirs(os.path.join(folder, "tokenizer"), exist_ok=True)
    shutil.copyfile(hft.TINY_SPIECE, os.path.join(folder, "tokenizer", "spiece.model"))
    T5Tokenizer(vocab_file=hft.TINY_SPIECE, legacy=True, model_max_length=300).save_pretrained(
        os.path.join(folder, "tokenizer"))
    write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), P.PIXART_SCHEDULER)
    return tr, vae, t5


def reference_pixart(folder, models, image_path, cmp):
    tr, vae, t5 = models
    size = 1024
    tok = T5Tokenizer.from_pretrained(os.path.join(folder, "tokenizer"), legacy=True)
    enc = tok(PROMPT.lower().strip(), padding="max_length", max_length=300, truncation=True,
              add_special_tokens=True, return_tensors="pt")
    ids, mask = enc.input_ids, enc.attention_mask
    ehs = timed("transformers T5 forward", lambda: t5(ids, attention_mask=mask).last_hidden_state)
    cmp.check("input.encoder_hidden_states", ehs[0])
    cmp.check("input.encoder_attention_mask", mask[0])
    pil = Image.open(image_path).resize((size, size)).convert("RGB")
    x = VaeImageProcessor(vae_scale_factor=8).preprocess(pil, height=size, width=size)
    dist = timed("diffusers VAE encode", lambda: vae.encode(x).latent_dist)
    eps_vae, eps = noises(os.path.splitext(os.path.basename(image_path))[0], 4, 4, size // 8)
    z = (dist.mean + dist.std * eps_vae) * vae.config.scaling_factor
    sched = DPMSolverMultistepScheduler.from_config(P.PIXART_SCHEDULER)
    sched.set_timesteps(1000)
    t_start = 1000 - min(int(1000 * PAPER_T / 1000), 1000)
    t = sched.timesteps[t_start:][:1]
    sched.set_begin_index(t_start)
    lat = sched.add_noise(z, eps, t)
    cmp.check("input.latents", lat[0])
    cmp.check("input.timestep", t.to(torch.int64)[0])
    store = DitStore(cmp)
    for i, blk in enumerate(tr.transformer_blocks):
        blk.attn1.set_processor(PaperAttnStore(store, f"vit-block{i}-self"))
        blk.attn2.set_processor(PaperAttnStore(store, f"vit-block{i}-cross"))
    timed("diffusers PixArt forward", lambda: tr(lat, encoder_hidden_states=ehs, encoder_attention_mask=mask,
                                                 timestep=t.to(torch.int64),
                                                 added_cond_kwargs={"resolution": None, "aspect_ratio": None}))


def run_one(args, name, build, reference, method, extra=()):
    print(f"==== {name}", flush=True)
    folder = os.path.join(args.workdir, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    models = timed(f"build + save {name} at the published sizes", lambda: build(folder))
    n_params = {type(m).__name__: sum(p.numel() for p in m.parameters()) for m in models}
    print("  parameters:", n_params, flush=True)
    image = os.path.join(args.workdir, "parity_full.png")
    write_image(image)
    cap = os.path.join(args.workdir, f"{name}_capture.safetensors")
    if args.reuse_capture and os.path.exists(cap):
        print("  reusing", cap)
    else:
        secs = run_capture(args, folder, image, method, cap, extra)
        print(f"  [goca-bench capture: {secs:.1f} s]", flush=True)
    cmp = Comparison(cap, args.tol)
    with torch.no_grad():
        reference(folder, models, image, cmp)
    ok = cmp.report(name)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
        os.remove(cap)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--goca-bench", help="the goca-bench binary (required unless --build-only)")
    ap.add_argument("--build-only", choices=["sd15", "pixart-sigma"],
                    help="only write the full-size random-weight diffusers folder of this backbone to --out "
                         "(scripts/gpu/check.sh); nothing is compared")
    ap.add_argument("--out", help="with --build-only: the folder to write")
    ap.add_argument("--only", choices=["sd15", "pixart-sigma"])
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true", help="keep the weights and capture files")
    ap.add_argument("--reuse-capture", action="store_true",
                    help="with --keep --workdir: compare against a capture file already there (the weights are "
                         "rebuilt from the same seed)")
    ap.add_argument("--t5-layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.build_only:
        if not args.out:
            ap.error("--build-only needs --out DIR")
        os.makedirs(args.out, exist_ok=True)
        if args.build_only == "sd15":
            build_sd15(args.out)
        else:
            build_pixart(args.out, args.t5_layers)
        print(f"parity-full: wrote the full-size random {args.build_only} folder to {args.out}")
        return
    if not args.goca_bench:
        ap.error("--goca-bench is required (or --build-only)")
    args.goca_bench = os.path.abspath(args.goca_bench)
    tmp = None
    if not args.workdir:
        tmp = tempfile.mkdtemp(prefix="gb-parity-full-")
        args.workdir = tmp
    os.makedirs(args.workdir, exist_ok=True)
    methods = os.path.join(hft.REPO, "configs", "methods")
    results = {}
    try:
        if args.only in (None, "sd15"):
            results["sd15"] = run_one(args, "sd15", build_sd15, reference_sd15,
                                      os.path.join(methods, "sd15", "goca.yaml"))
        if args.only in (None, "pixart-sigma"):
            results["pixart-sigma"] = run_one(args, "pixart-sigma", lambda d: build_pixart(d, args.t5_layers),
                                              reference_pixart, os.path.join(methods, "pixart-sigma", "goca.yaml"))
    finally:
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("parity-full:", {k: ("OK" if v else "FAILED") for k, v in results.items()})
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
