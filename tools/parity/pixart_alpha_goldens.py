#!/usr/bin/env python3
"""Goldens for PixArt-alpha XL-2-1024-MS and PixArt-Sigma XL-2-512-MS (tests/backbones/test_pixart_variants.cpp).

    .venv/bin/python tools/parity/pixart_alpha_goldens.py

Writes tests/backbones/goldens/dit/pixart_alpha/:
  transformer/{config.json, diffusion_pytorch_model.safetensors}  tiny PixArtTransformer2DModel with
      use_additional_conditions (the micro-conditions of the 1024-MS checkpoint: resolution and aspect ratio)
  golden.safetensors   inputs (incl. resolution [B, 2] and aspect_ratio [B, 1] as PixArtAlphaPipeline builds them
      for a square image), output, and every capture the paper's AttnStoreProcessor records (dit_goldens.py)
and tests/backbones/goldens/dit/pixart_full_size.json: key/shape hashes and parameter totals of the full-size
PixArt-alpha XL-2-1024-MS and PixArt-Sigma XL-2-512-MS transformers, built by diffusers 0.32.2 on the meta device.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_goldens as dit  # noqa: E402  (helpers only)
import sd_goldens as sd  # noqa: E402  (graph_signature)

import diffusers  # noqa: E402
from diffusers import PixArtTransformer2DModel  # noqa: E402

assert diffusers.__version__ == "0.32.2", diffusers.__version__
torch.set_grad_enabled(False)


def make_alpha():
    model = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=8, num_layers=2,
        cross_attention_dim=24, attention_bias=True, sample_size=8, patch_size=2,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, upcast_attention=False,
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=2,
        use_additional_conditions=True, caption_channels=32)
    dit.randomize(model, 11)
    model.eval()
    folder = os.path.join(dit.ROOT, "pixart_alpha")
    dit.write_folder(folder, "transformer", model, "diffusion_pytorch_model.safetensors")

    g = torch.Generator().manual_seed(12)
    B, T = 2, 5
    latents = torch.randn(B, 4, 8, 8, generator=g)
    ehs = torch.randn(B, T, 32, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.int64)
    timestep = torch.tensor([100, 100], dtype=torch.int64)
    # PixArtAlphaPipeline 6.1 for a 64 x 64 image: resolution (height, width), aspect ratio height / width.
    resolution = torch.tensor([64.0, 64.0]).repeat(B, 1)
    aspect_ratio = torch.tensor([1.0]).repeat(B, 1)
    kwargs = dict(encoder_hidden_states=ehs, encoder_attention_mask=mask, timestep=timestep,
                  added_cond_kwargs={"resolution": resolution, "aspect_ratio": aspect_ratio}, return_dict=False)
    stock = model(latents, **kwargs)[0]
    # Another resolution changes the output (the micro-conditions are live). Run before the recording processors
    # are installed: a recorded run would overwrite the captures of the golden's own inputs.
    kw2 = dict(kwargs, added_cond_kwargs={"resolution": resolution * 2, "aspect_ratio": aspect_ratio})
    out2 = model(latents, **kw2)[0]
    store = {}
    for i, blk in enumerate(model.transformer_blocks):
        blk.attn1.set_processor(dit.PaperAttnStore(store, f"vit-block{i}-self"))
        blk.attn2.set_processor(dit.PaperAttnStore(store, f"vit-block{i}-cross"))
    out = model(latents, **kwargs)[0]
    assert dit.rel(out, stock) < 1e-5, dit.rel(out, stock)
    assert dit.rel(out2, out) > 1e-3
    tensors = {"input.latents": latents, "input.encoder_hidden_states": ehs, "input.encoder_attention_mask": mask,
               "input.timestep": timestep, "input.resolution": resolution, "input.aspect_ratio": aspect_ratio,
               "output": out, "output.resolution128": out2}
    for k, v in store.items():
        tensors["capture." + k] = v
    dit.save_golden(os.path.join(folder, "golden.safetensors"), tensors,
                    "PixArtTransformer2DModel tiny config with use_additional_conditions (micro-conditions), paper "
                    "AttnStoreProcessor captures (batch first; special-value as [B,H,T,d])")
    print("pixart_alpha", len(tensors), "tensors")


def full_size():
    common = dict(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
                  cross_attention_dim=1152, caption_channels=4096, norm_type="ada_norm_single",
                  norm_elementwise_affine=False, norm_eps=1e-6, activation_fn="gelu-approximate",
                  attention_bias=True, num_embeds_ada_norm=1000, patch_size=2)
    with torch.device("meta"):
        models = {"pixart_alpha_xl_2_1024_ms": PixArtTransformer2DModel(**common, sample_size=128),
                  "pixart_sigma_xl_2_512_ms": PixArtTransformer2DModel(**common, sample_size=64,
                                                                       interpolation_scale=1,
                                                                       use_additional_conditions=False)}
    assert models["pixart_alpha_xl_2_1024_ms"].use_additional_conditions
    sd.write_graph_signatures(models, os.path.join(dit.ROOT, "pixart_full_size.json"))


if __name__ == "__main__":
    full_size()
    make_alpha()
