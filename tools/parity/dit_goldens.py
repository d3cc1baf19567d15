#!/usr/bin/env python3
"""Parity goldens for the DiT-family backbones (PixArt-Sigma, Flux.1-dev, their T5 and the Flux VAE).

Run (the pinned stack of requirements/python-tools.txt):

    /work/main/.venv/bin/python tools/parity/dit_goldens.py [--out DIR]

--out writes under DIR instead of the committed folder (compare_goldens.py checks a rerun against it).

Writes tests/backbones/goldens/dit/ :
  pixart/transformer/{config.json,diffusion_pytorch_model.safetensors}   tiny PixArtTransformer2DModel
  pixart/golden.safetensors     inputs, output, every capture the paper's AttnStoreProcessor records,
                                and the DPM-Solver++ noising coefficients at t = 100 (real PixArt-Sigma config)
  flux/transformer/...          tiny FluxTransformer2DModel (2 double + 2 single blocks)
  flux/golden.safetensors       inputs, output, the paper's FluxAttnStoreProcessor captures, flow-match schedule
  flux_vae/vae/...              tiny 16-channel AutoencoderKL (no quant_conv, shift/scale factors)
  flux_vae/golden.safetensors   image, encoder moments, a posterior sample for a given eps, shifted/scaled latent
  t5/text_encoder/{config.json,model.safetensors}   tiny T5 v1.1 encoder, transformers key layout
  t5/golden.safetensors         ids, masks, last_hidden_state with and without mask, bucket table of the real config

The weights are fixed random numbers (seeded). diffusers models are the numerical reference; T5 is transformers'
T5EncoderModel.

The capture processors below re-implement the paper's processors (Darkbblue/goca install/components/attention.py:
AttnStoreProcessor and FluxAttnStoreProcessor with my_scaled_dot_product_attention) as recorders; each model's
output is also checked against the stock diffusers processor.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

from diffusers import AutoencoderKL, FluxTransformer2DModel, PixArtTransformer2DModel
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.schedulers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler
from safetensors.torch import save_file
from transformers import T5Config, T5EncoderModel
from transformers.models.t5.modeling_t5 import T5Attention

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "backbones", "goldens", "dit")


def randomize(module, seed):
    """Default init for matrices; 1-D parameters (biases, norm weights, tables) get visible random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2 and not name.endswith("scale_shift_table"):
                bound = 1.0 / math.sqrt(p[0].numel())
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound * 1.5)
            elif name.endswith("norm_q.weight") or name.endswith("norm_k.weight") or "norm_added" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def write_folder(folder, sub, model, weights_name):
    os.makedirs(os.path.join(folder, sub), exist_ok=True)
    cfg = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    cfg["_class_name"] = type(model).__name__
    cfg["_diffusers_version"] = "0.32.2"
    with open(os.path.join(folder, sub, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(folder, sub, weights_name))


def save_golden(path, tensors, notes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = {k: v.detach().contiguous().clone() for k, v in tensors.items()}  # no shared storage
    save_file(out, path, metadata={"notes": notes, "diffusers": "0.32.2", "torch": torch.__version__})


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


# ---------------------------------------------------------------------------------------------------------------
# PixArt-Sigma
# ---------------------------------------------------------------------------------------------------------------
class PaperAttnStore:
    """The paper's AttnStoreProcessor: explicit baddbmm softmax, per-id recording (P-attn, P-fe naming)."""

    def __init__(self, store, block_id):
        self.store, self.block_id = store, block_id

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        B, N, _ = hidden_states.shape
        is_cross = encoder_hidden_states is not None
        ctx = encoder_hidden_states if is_cross else hidden_states
        mask = attn.prepare_attention_mask(attention_mask, ctx.shape[1], B)
        q = attn.to_q(hidden_states)
        k = attn.to_k(ctx)
        v = attn.to_v(ctx)
        H = attn.heads
        C = q.shape[-1]
        r = int(math.isqrt(N))
        # `-q`: 3-D and not "special" -> the store reshapes 'b (h w) c -> b c h w'
        if r * r == N:  # the non-square check pass records nothing
            self.store[self.block_id + "-q"] = q.reshape(B, r, r, C).permute(0, 3, 1, 2)
        qh, kh, vh = attn.head_to_batch_dim(q), attn.head_to_batch_dim(k), attn.head_to_batch_dim(v)
        self.store[self.block_id + "-special-value"] = vh.reshape(B, H, vh.shape[1], vh.shape[2])
        probs = attn.get_attention_scores(qh, kh, mask)
        self.store[self.block_id + "-map"] = probs.reshape(B, H, N, probs.shape[-1])
        out = attn.batch_to_head_dim(torch.bmm(probs, vh))
        self.store[self.block_id + "-special-post-value"] = out
        self.store[self.block_id + "-special-weight"] = attn.to_out[0].weight.detach().clone()
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def make_pixart():
    torch.manual_seed(0)
    model = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
        cross_attention_dim=16, attention_bias=True, sample_size=8, patch_size=2,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, upcast_attention=False,
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=2,
        use_additional_conditions=False, caption_channels=32)
    randomize(model, 1)
    model.eval()
    folder = os.path.join(ROOT, "pixart")
    write_folder(folder, "transformer", model, "diffusion_pytorch_model.safetensors")

    g = torch.Generator().manual_seed(2)
    B, T = 2, 6
    latents = torch.randn(B, 4, 8, 8, generator=g)
    ehs = torch.randn(B, T, 32, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.int64)
    timestep = torch.tensor([100, 100], dtype=torch.int64)
    kwargs = dict(encoder_hidden_states=ehs, encoder_attention_mask=mask, timestep=timestep,
                  added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)
    with torch.no_grad():
        stock = model(latents, **kwargs)[0]
        store = {}
        for i, blk in enumerate(model.transformer_blocks):
            blk.attn1.set_processor(PaperAttnStore(store, f"vit-block{i}-self"))
            blk.attn2.set_processor(PaperAttnStore(store, f"vit-block{i}-cross"))
        out = model(latents, **kwargs)[0]
        assert rel(out, stock) < 1e-5, rel(out, stock)
        # Non-square latent of another size: the sin-cos table is rebuilt for the runtime grid.
        store_main = dict(store)
        latents_big = torch.randn(1, 4, 12, 8, generator=g)
        kw1 = dict(kwargs, encoder_hidden_states=ehs[:1], encoder_attention_mask=mask[:1], timestep=timestep[:1])
        out_big = model(latents_big, **kw1)[0]
        store = store_main

    # Noising at t = 100 with the real PixArt-Sigma scheduler config (HPS scheduler_config.json).
    sched = DPMSolverMultistepScheduler(
        beta_start=0.0001, beta_end=0.02, beta_schedule="linear", num_train_timesteps=1000,
        timestep_spacing="linspace", steps_offset=0, algorithm_type="dpmsolver++", solver_order=2,
        prediction_type="epsilon", lower_order_final=True, thresholding=False, use_karras_sigmas=False)
    sched.set_timesteps(1000)
    t_start = 1000 - min(int(1000 * 0.1), 1000)
    t100 = sched.timesteps[t_start:][:1]
    sched.set_begin_index(t_start)
    z0 = torch.randn(1, 4, 8, 8, generator=g)
    eps = torch.randn(1, 4, 8, 8, generator=g)
    noisy = sched.add_noise(z0, eps, t100)
    sigma = sched.sigmas[t_start]
    alpha_t = 1 / (sigma ** 2 + 1) ** 0.5

    tensors = {"input.latents": latents, "input.encoder_hidden_states": ehs, "input.encoder_attention_mask": mask,
               "input.timestep": timestep, "output": out, "big.latents": latents_big, "big.output": out_big,
               "sched.timestep": t100.to(torch.int64), "sched.alpha_t": alpha_t.reshape(1).float(),
               "sched.sigma_t": (sigma * alpha_t).reshape(1).float(), "sched.z0": z0, "sched.eps": eps,
               "sched.noisy": noisy}
    for k, v in store.items():
        tensors["capture." + k] = v
    save_golden(os.path.join(folder, "golden.safetensors"), tensors,
                "PixArtTransformer2DModel tiny config, paper AttnStoreProcessor captures (batch first; special-value "
                "as [B,H,T,d]); sched.* from DPMSolverMultistepScheduler with the PixArt-Sigma config at t=100")
    print("pixart", {k: tuple(v.shape) for k, v in tensors.items() if k.startswith("capture.vit-block0")})


# ---------------------------------------------------------------------------------------------------------------
# Flux
# ---------------------------------------------------------------------------------------------------------------
class PaperFluxStore:
    """The paper's FluxAttnStoreProcessor: explicit softmax over the joint [text | image] sequence; records the
    image-query x text-key and image x image slices (not renormalised), attn-out, and the double-block specials."""

    def __init__(self, store, block_id, text_len):
        self.store, self.block_id, self.text_len = store, block_id, text_len

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        B = hidden_states.shape[0]
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        hd = k.shape[-1] // attn.heads
        q = q.view(B, -1, attn.heads, hd).transpose(1, 2)
        k = k.view(B, -1, attn.heads, hd).transpose(1, 2)
        v = v.view(B, -1, attn.heads, hd).transpose(1, 2)
        if encoder_hidden_states is not None:
            self.store[self.block_id + "-cross-special-value"] = v.clone()
        q, k = attn.norm_q(q), attn.norm_k(k)
        if encoder_hidden_states is not None:
            eq = attn.add_q_proj(encoder_hidden_states).view(B, -1, attn.heads, hd).transpose(1, 2)
            ek = attn.add_k_proj(encoder_hidden_states).view(B, -1, attn.heads, hd).transpose(1, 2)
            ev = attn.add_v_proj(encoder_hidden_states).view(B, -1, attn.heads, hd).transpose(1, 2)
            eq, ek = attn.norm_added_q(eq), attn.norm_added_k(ek)
            q, k, v = torch.cat([eq, q], 2), torch.cat([ek, k], 2), torch.cat([ev, v], 2)
        T = self.text_len
        q = apply_rotary_emb(q, image_rotary_emb)
        k = apply_rotary_emb(k, image_rotary_emb)
        probs = torch.softmax(q @ k.transpose(-2, -1) * (1 / math.sqrt(hd)), dim=-1)
        out = probs @ v
        self.store[self.block_id + "-cross-map"] = probs[:, :, T:, :T]
        self.store[self.block_id + "-self-map"] = probs[:, :, T:, T:]
        out = out.transpose(1, 2).reshape(B, -1, attn.heads * hd)
        N = out.shape[1] - T
        r = int(math.isqrt(N))
        if encoder_hidden_states is not None:
            self.store[self.block_id + "-cross-special-post-value"] = out[:, T:]
            ctx, img = out[:, :T], out[:, T:]
            img = attn.to_out[0](img)
            self.store[self.block_id + "-cross-special-weight"] = attn.to_out[0].weight.detach().clone()
            img = attn.to_out[1](img)
            ctx = attn.to_add_out(ctx)
            self.store[self.block_id + "-attn-out"] = img.reshape(B, r, r, -1).permute(0, 3, 1, 2)
            return img, ctx
        self.store[self.block_id + "-attn-out"] = out[:, T:].reshape(B, r, r, -1).permute(0, 3, 1, 2)
        return out


def flux_schedule():
    """The real FLUX.1-dev scheduler config (HFX) at strength 0.15 over 28 steps, 1024^2 (4096 image tokens)."""
    sched = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096)
    steps = 28
    sigmas = torch.linspace(1.0, 1 / steps, steps).double().numpy()
    import numpy as np
    sigmas = np.linspace(1.0, 1 / steps, steps)
    seq = 4096
    m = (1.15 - 0.5) / (4096 - 256)
    mu = seq * m + (0.5 - m * 256)
    sched.set_timesteps(sigmas=sigmas, mu=mu)
    init = min(steps * 0.15, steps)
    t_start = int(max(steps - init, 0))
    ts = sched.timesteps[t_start:]
    sched.set_begin_index(t_start)
    return sched, ts[:1], t_start


def make_flux():
    torch.manual_seed(0)
    model = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=24, pooled_projection_dim=12, guidance_embeds=True,
        axes_dims_rope=(4, 6, 6))
    randomize(model, 3)
    model.eval()
    folder = os.path.join(ROOT, "flux")
    write_folder(folder, "transformer", model, "diffusion_pytorch_model.safetensors")

    g = torch.Generator().manual_seed(4)
    B, T, h, w = 2, 5, 4, 4
    latents = torch.randn(B, h * w, 64, generator=g)
    ehs = torch.randn(B, T, 24, generator=g)
    pooled = torch.randn(B, 12, generator=g)
    sched, t_first, t_start = flux_schedule()
    timestep = t_first.expand(B).to(torch.float32) / 1000
    guidance = torch.full([B], 1.0)
    img_ids = torch.zeros(h, w, 3)
    img_ids[..., 1] += torch.arange(h)[:, None]
    img_ids[..., 2] += torch.arange(w)[None, :]
    img_ids = img_ids.reshape(h * w, 3)
    txt_ids = torch.zeros(T, 3)
    kwargs = dict(encoder_hidden_states=ehs, pooled_projections=pooled, timestep=timestep, img_ids=img_ids,
                  txt_ids=txt_ids, guidance=guidance, return_dict=False)
    with torch.no_grad():
        stock = model(latents, **kwargs)[0]
        store = {}
        for i, blk in enumerate(model.transformer_blocks):
            blk.attn.set_processor(PaperFluxStore(store, f"vit-block{i}", T))
        for j, blk in enumerate(model.single_transformer_blocks):
            blk.attn.set_processor(PaperFluxStore(store, f"vit-block{len(model.transformer_blocks) + j}", T))
        out = model(latents, **kwargs)[0]
        assert rel(out, stock) < 1e-5, rel(out, stock)

    # scale_noise at the first remaining step, and the 2x2 packing of a 16-channel latent.
    z = torch.randn(1, 16, 2 * h, 2 * w, generator=g)
    eps = torch.randn(1, 16, 2 * h, 2 * w, generator=g)
    noisy = sched.scale_noise(z, t_first, eps)
    packed = noisy.view(1, 16, h, 2, w, 2).permute(0, 2, 4, 1, 3, 5).reshape(1, h * w, 64)

    tensors = {"input.latents": latents, "input.encoder_hidden_states": ehs, "input.pooled_projections": pooled,
               "input.timestep": timestep, "input.guidance": guidance, "input.img_ids": img_ids,
               "input.txt_ids": txt_ids, "output": out,
               "sched.sigmas": sched.sigmas.float(), "sched.timesteps": sched.timesteps.float(),
               "sched.t_start": torch.tensor([t_start], dtype=torch.int64), "sched.timestep": t_first.float(),
               "sched.z": z, "sched.eps": eps, "sched.noisy": noisy, "sched.packed": packed}
    for k, v in store.items():
        tensors["capture." + k] = v
    save_golden(os.path.join(folder, "golden.safetensors"), tensors,
                "FluxTransformer2DModel tiny config (2 double + 2 single blocks, axes (4,6,6)), paper "
                "FluxAttnStoreProcessor captures (batch first); sched.* from FlowMatchEulerDiscreteScheduler with "
                "the FLUX.1-dev config, mu for 4096 tokens, strength 0.15 over 28 steps")
    print("flux", {k: tuple(v.shape) for k, v in tensors.items() if k.startswith("capture.vit-block")})
    print("flux sigma'", float(sched.sigmas[t_start]), "timestep", float(t_first))


# ---------------------------------------------------------------------------------------------------------------
# Flux VAE encoder
# ---------------------------------------------------------------------------------------------------------------
def make_flux_vae():
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
        latent_channels=16, norm_num_groups=4, sample_size=16, scaling_factor=0.3611, shift_factor=0.1159,
        use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True, force_upcast=True)
    randomize(vae, 5)
    vae.eval()
    folder = os.path.join(ROOT, "flux_vae")
    write_folder(folder, "vae", vae, "diffusion_pytorch_model.safetensors")
    g = torch.Generator().manual_seed(6)
    image = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    with torch.no_grad():
        dist = vae.encode(image).latent_dist
        eps = torch.randn(dist.mean.shape, generator=g)
        z = dist.mean + dist.std * eps
        latent = (z - vae.config.shift_factor) * vae.config.scaling_factor
    save_golden(os.path.join(folder, "golden.safetensors"),
                {"image": image, "mean": dist.mean, "logvar": dist.logvar, "eps": eps, "sample": z, "latent": latent},
                "AutoencoderKL tiny 16-channel config without quant_conv; latent = (mean + std*eps - shift) * scale")


# ---------------------------------------------------------------------------------------------------------------
# T5 v1.1 encoder (plain-torch reference of transformers' T5EncoderModel)
# ---------------------------------------------------------------------------------------------------------------
def t5_encoder(cfg, sd):
    """transformers 4.47.1's T5EncoderModel on the given fp32 weights (strict load; the tied
    encoder.embed_tokens.weight copy is what the model itself holds)."""
    model = T5EncoderModel(T5Config(**{k: v for k, v in cfg.items() if k != "architectures"})).eval()
    model.load_state_dict(sd, strict=True)
    return model


def make_t5():
    cfg = {"architectures": ["T5EncoderModel"], "model_type": "t5", "d_model": 16, "d_kv": 4, "num_heads": 3,
           "d_ff": 24, "num_layers": 2, "vocab_size": 40, "relative_attention_num_buckets": 8,
           "relative_attention_max_distance": 16, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "gated-gelu",
           "dense_act_fn": "gelu_new", "is_gated_act": True, "pad_token_id": 0, "eos_token_id": 1,
           "tie_word_embeddings": False, "torch_dtype": "float32"}
    g = torch.Generator().manual_seed(7)
    d, inner, ff = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"], cfg["d_ff"]

    def mat(o, i, s=1.0):
        return (torch.rand(o, i, generator=g) * 2 - 1) * s / math.sqrt(i) * 1.7

    sd = {"shared.weight": torch.randn(cfg["vocab_size"], d, generator=g)}
    for i in range(cfg["num_layers"]):
        p = f"encoder.block.{i}.layer."
        sd[p + "0.layer_norm.weight"] = 1 + 0.3 * torch.randn(d, generator=g)
        for n in "qkv":
            sd[p + f"0.SelfAttention.{n}.weight"] = mat(inner, d)
        sd[p + "0.SelfAttention.o.weight"] = mat(d, inner)
        if i == 0:
            sd[p + "0.SelfAttention.relative_attention_bias.weight"] = torch.randn(
                cfg["relative_attention_num_buckets"], cfg["num_heads"], generator=g)
        sd[p + "1.layer_norm.weight"] = 1 + 0.3 * torch.randn(d, generator=g)
        sd[p + "1.DenseReluDense.wi_0.weight"] = mat(ff, d)
        sd[p + "1.DenseReluDense.wi_1.weight"] = mat(ff, d)
        sd[p + "1.DenseReluDense.wo.weight"] = mat(d, ff)
    sd["encoder.final_layer_norm.weight"] = 1 + 0.3 * torch.randn(d, generator=g)
    sd["encoder.embed_tokens.weight"] = sd["shared.weight"].clone()  # tied copy, present in some files
    folder = os.path.join(ROOT, "t5", "text_encoder")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(folder, "model.safetensors"))

    L = 20  # > max_distance so the log branch and the clamp are both exercised
    ids = torch.randint(2, cfg["vocab_size"], (2, L), generator=g)
    mask = torch.ones(2, L, dtype=torch.int64)
    ids[0, 14] = 1
    ids[0, 15:] = 0
    mask[0, 15:] = 0
    ids[1, 9] = 1
    ids[1, 10:] = 0
    mask[1, 10:] = 0
    model = t5_encoder(cfg, sd)
    with torch.no_grad():
        masked = model(input_ids=ids, attention_mask=mask).last_hidden_state
        unmasked = model(input_ids=ids).last_hidden_state
    rel_pos = torch.arange(-511, 512)
    table = T5Attention._relative_position_bucket(rel_pos, bidirectional=True, num_buckets=32, max_distance=128)
    save_golden(os.path.join(ROOT, "t5", "golden.safetensors"),
                {"ids": ids, "mask": mask, "masked": masked, "unmasked": unmasked, "bucket_rel": rel_pos,
                 "bucket_32_128": table},
                "transformers 4.47.1 T5EncoderModel; bucket_32_128 = transformers' "
                "T5Attention._relative_position_bucket (bidirectional) with the T5 v1.1 XXL config")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        ROOT = sys.argv[2]
    torch.set_num_threads(1)
    make_pixart()
    make_flux()
    make_flux_vae()
    make_t5()
    total = 0
    for dp, _, fs in os.walk(ROOT):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    print("total bytes", total)
