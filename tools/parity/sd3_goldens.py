#!/usr/bin/env python3
"""Goldens for the SD3.5 transformer (tests/backbones/test_sd3_transformer.cpp).

    .venv/bin/python tools/parity/sd3_goldens.py

Writes tests/backbones/goldens/dit/sd3/:
  transformer/{config.json, diffusion_pytorch_model.safetensors}  tiny SD3Transformer2DModel in the SD3.5-Medium
      layout: qk_norm rms_norm, dual attention in layer 0, the last layer context_pre_only, a stored position table
      larger than the grid (cropped to the centre)
  golden.safetensors  inputs, output, and the captures as the paper's Flux processor slices a joint softmax
      (applied to SD3's [image | text] order): cross-map P[:, :, :N, N:], self-map P[:, :, :N, :N], attn-out
      (to_out.0 image rows as a grid), cross-special-value/-post-value/-weight
  sched.*  FlowMatchEulerDiscreteScheduler (shift 3, SD3.5's scheduler_config.json) as StableDiffusion3Img2ImgPipeline
      uses it at strength t/1000: set_timesteps(50), get_timesteps, scale_noise
and tests/backbones/goldens/dit/sd3_full_size.json: key/shape hashes and parameter totals of the full-size
SD3.5 Medium and Large transformers (diffusers 0.32.2 on the meta device).
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_goldens as dit  # noqa: E402
import sd_goldens as sd  # noqa: E402

import diffusers  # noqa: E402
from diffusers import SD3Transformer2DModel  # noqa: E402
from diffusers.schedulers import FlowMatchEulerDiscreteScheduler  # noqa: E402

assert diffusers.__version__ == "0.32.2", diffusers.__version__
torch.set_grad_enabled(False)


class Sd3Store:
    """JointAttnProcessor2_0 with an explicit softmax, recording Flux-style slices (image rows first)."""

    def __init__(self, store, block_id):
        self.store, self.block_id = store, block_id

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        B, N, _ = hidden_states.shape
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        hd = k.shape[-1] // attn.heads
        q = q.view(B, -1, attn.heads, hd).transpose(1, 2)
        k = k.view(B, -1, attn.heads, hd).transpose(1, 2)
        v = v.view(B, -1, attn.heads, hd).transpose(1, 2)
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        joint = encoder_hidden_states is not None
        if joint:
            self.store[self.block_id + "-cross-special-value"] = v.clone()
            eq = attn.add_q_proj(encoder_hidden_states).view(B, -1, attn.heads, hd).transpose(1, 2)
            ek = attn.add_k_proj(encoder_hidden_states).view(B, -1, attn.heads, hd).transpose(1, 2)
            ev = attn.add_v_proj(encoder_hidden_states).view(B, -1, attn.heads, hd).transpose(1, 2)
            if attn.norm_added_q is not None:
                eq = attn.norm_added_q(eq)
            if attn.norm_added_k is not None:
                ek = attn.norm_added_k(ek)
            q, k, v = torch.cat([q, eq], 2), torch.cat([k, ek], 2), torch.cat([v, ev], 2)
        probs = torch.softmax(q @ k.transpose(-2, -1) * (1 / math.sqrt(hd)), dim=-1)
        out = (probs @ v).transpose(1, 2).reshape(B, -1, attn.heads * hd)
        if not joint:  # SD3.5's dual (image-only) attention: not captured
            return attn.to_out[1](attn.to_out[0](out))
        self.store[self.block_id + "-cross-map"] = probs[:, :, :N, N:]
        self.store[self.block_id + "-self-map"] = probs[:, :, :N, :N]
        img, ctx = out[:, :N], out[:, N:]
        self.store[self.block_id + "-cross-special-post-value"] = img
        self.store[self.block_id + "-cross-special-weight"] = attn.to_out[0].weight.detach().clone()
        img = attn.to_out[1](attn.to_out[0](img))
        r = int(math.isqrt(N))
        self.store[self.block_id + "-attn-out"] = img.reshape(B, r, r, -1).permute(0, 3, 1, 2)
        if not attn.context_pre_only:
            ctx = attn.to_add_out(ctx)
        return img, ctx


def make_tiny():
    model = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_layers=3, attention_head_dim=8,
                                  num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16,
                                  pooled_projection_dim=24, out_channels=4, pos_embed_max_size=8,
                                  dual_attention_layers=(0,), qk_norm="rms_norm")
    dit.randomize(model, 41)
    g0 = torch.Generator().manual_seed(40)
    model.pos_embed.pos_embed.copy_(torch.randn(model.pos_embed.pos_embed.shape, generator=g0) * 0.3)
    model.eval()
    folder = os.path.join(dit.ROOT, "sd3")
    dit.write_folder(folder, "transformer", model, "diffusion_pytorch_model.safetensors")

    g = torch.Generator().manual_seed(42)
    B, T = 2, 7
    latents = torch.randn(B, 4, 8, 8, generator=g)
    ehs = torch.randn(B, T, 32, generator=g)
    pooled = torch.randn(B, 24, generator=g)
    timestep = torch.tensor([363.6, 363.6])
    kwargs = dict(encoder_hidden_states=ehs, pooled_projections=pooled, timestep=timestep, return_dict=False)
    stock = model(latents, **kwargs)[0]
    store = {}
    for i, blk in enumerate(model.transformer_blocks):
        blk.attn.set_processor(Sd3Store(store, f"vit-block{i}"))
        if blk.attn2 is not None:
            blk.attn2.set_processor(Sd3Store(store, f"vit-block{i}-dual"))
    out = model(latents, **kwargs)[0]
    assert dit.rel(out, stock) < 1e-5, dit.rel(out, stock)

    # FlowMatchEulerDiscreteScheduler with SD3.5's config, as StableDiffusion3Img2ImgPipeline (50 steps, t = 150).
    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    tensors = {"input.latents": latents, "input.encoder_hidden_states": ehs, "input.pooled_projections": pooled,
               "input.timestep": timestep, "output": out}
    for steps, paper_t in ((50, 150), (28, 150), (50, 100)):
        sched.set_timesteps(steps)
        init = min(steps * paper_t / 1000, steps)
        t_start = int(max(steps - init, 0))
        ts = sched.timesteps[t_start * sched.order:]
        sched.set_begin_index(t_start * sched.order)
        z0 = torch.randn(1, 4, 8, 8, generator=g)
        eps = torch.randn(1, 4, 8, 8, generator=g)
        noisy = sched.scale_noise(z0, ts[:1], eps)
        tag = f"sched.{steps}_{paper_t}."
        tensors.update({tag + "timestep": ts[:1].clone(), tag + "sigma": sched.sigmas[t_start].reshape(1).clone(),
                        tag + "t_start": torch.tensor([t_start]), tag + "z0": z0, tag + "eps": eps,
                        tag + "noisy": noisy})
    for k, v in store.items():
        tensors["capture." + k] = v
    dit.save_golden(os.path.join(folder, "golden.safetensors"), tensors,
                    "SD3Transformer2DModel tiny SD3.5-Medium-like config; Flux-style joint-softmax captures on "
                    "[image | text]; FlowMatchEulerDiscreteScheduler shift 3 via the SD3 img2img get_timesteps")
    with open(os.path.join(folder, "scheduler_config.json"), "w") as f:
        json.dump({k: v for k, v in dict(sched.config).items() if not k.startswith("_")}, f, indent=2, sort_keys=True)
    print("sd3", len(tensors), "tensors; t(50,150) =", float(tensors["sched.50_150.timestep"][0]))


def full_size():
    common = dict(sample_size=128, patch_size=2, in_channels=16, attention_head_dim=64, joint_attention_dim=4096,
                  pooled_projection_dim=2048, out_channels=16, qk_norm="rms_norm")
    with torch.device("meta"):
        models = {"sd35_medium": SD3Transformer2DModel(**common, num_layers=24, num_attention_heads=24,
                                                       caption_projection_dim=1536, pos_embed_max_size=384,
                                                       dual_attention_layers=tuple(range(13))),
                  "sd35_large": SD3Transformer2DModel(**common, num_layers=38, num_attention_heads=38,
                                                      caption_projection_dim=2432, pos_embed_max_size=192)}
    sd.write_graph_signatures(models, os.path.join(dit.ROOT, "sd3_full_size.json"))


if __name__ == "__main__":
    full_size()
    make_tiny()
