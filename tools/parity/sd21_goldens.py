#!/usr/bin/env python3
"""Goldens for the native SD 2.1 backbones (768-v `sd21` and `sd21-base`; tests/backbones/test_sd21_parity.cpp).

Runs diffusers v0.32.2 (UNet2DConditionModel with linear projections and upcast_attention, AutoencoderKL,
EulerDiscreteScheduler built from the folder's DDIM/PNDM config as GDF's version '2-1' does, VaeImageProcessor)
and transformers 4.47.1 (CLIPTextModel, the layout SD 2.x ships OpenCLIP-H in) on tiny configs with fixed random
weights, and writes per kind a diffusers-layout folder (configs + the SAME weights as F16-representable values)
and `golden.safetensors` with inputs and outputs: CLIP last_hidden_state (what StableDiffusionImg2ImgPipeline
conditions on), VAE moments and latents, the noised UNet input, the UNet output and every captured tensor as the
paper's AttnStoreProcessor computes them (shared with tools/parity/sd_goldens.py).

The scheduler configs are written the way the published checkpoints have them (no timestep_spacing key, DDIM for
2.1 and PNDM for 2.1-base), so the loader must fall back to EulerDiscreteScheduler's defaults (linspace) as
diffusers does.

Usage: .venv/bin/python tools/parity/sd21_goldens.py
"""
import os
import sys

import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_goldens as base  # noqa: E402  (helpers only; its main does not run on import)

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel  # noqa: E402
from diffusers.image_processor import VaeImageProcessor  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

assert diffusers.__version__ == "0.32.2", diffusers.__version__
assert transformers.__version__ == "4.47.1", transformers.__version__
torch.set_grad_enabled(False)

OUT = base.OUT
UNET = dict(base.UNET_COMMON, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=(2, 4), cross_attention_dim=24,
            use_linear_projection=True)
# OpenCLIP-H layout in miniature: gelu, 3 layers (the checkpoint's 23), projection_dim present but unused.
CLIP_H = dict(vocab_size=1000, hidden_size=24, intermediate_size=48, num_hidden_layers=3, num_attention_heads=3,
              max_position_embeddings=12, hidden_act="gelu", layer_norm_eps=1e-5, eos_token_id=2, bos_token_id=0,
              pad_token_id=1, projection_dim=16)
# As in stabilityai/stable-diffusion-2-1{,-base}/scheduler/scheduler_config.json.
SCHED_COMMON = dict(_diffusers_version="0.8.0", beta_end=0.012, beta_schedule="scaled_linear", beta_start=0.00085,
                    clip_sample=False, num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True,
                    steps_offset=1, trained_betas=None)
SCHED = {"sd21": dict(SCHED_COMMON, _class_name="DDIMScheduler", prediction_type="v_prediction"),
         "sd21-base": dict(SCHED_COMMON, _class_name="PNDMScheduler", prediction_type="epsilon")}


def make(kind):
    v = kind == "sd21"
    root = os.path.join(OUT, kind.replace("-", "_") + "_tiny")
    base.dump_json(os.path.join(root, "model_index.json"),
                   {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.32.2"})
    unet = UNet2DConditionModel(**dict(UNET, upcast_attention=v)).eval()
    base.dump_json(os.path.join(root, "unet", "config.json"), dict(unet.config))
    save_file(base.randomize(unet, 21 if v else 31), os.path.join(root, "unet", "diffusion_pytorch_model.safetensors"))
    vae = AutoencoderKL(**dict(base.VAE, scaling_factor=0.18215)).eval()
    base.dump_json(os.path.join(root, "vae", "config.json"), dict(vae.config))
    vsd = base.randomize(vae, 22 if v else 32)
    vsd = {k: t for k, t in vsd.items() if not k.startswith("decoder.") and not k.startswith("post_quant_conv.")}
    save_file(vsd, os.path.join(root, "vae", "diffusion_pytorch_model.safetensors"))
    te = CLIPTextModel(CLIPTextConfig(**CLIP_H)).eval()
    tcfg = te.config.to_diff_dict()
    tcfg["architectures"] = ["CLIPTextModel"]
    tcfg.pop("transformers_version", None)
    tcfg.pop("_attn_implementation_autoset", None)
    base.dump_json(os.path.join(root, "text_encoder", "config.json"), tcfg)
    tsd = base.randomize(te, 23 if v else 33)
    tsd = {k: t for k, t in tsd.items() if k != "text_model.embeddings.position_ids"}
    save_file(tsd, os.path.join(root, "text_encoder", "model.safetensors"))
    base.dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), SCHED[kind])
    sched = EulerDiscreteScheduler.from_pretrained(root, subfolder="scheduler")
    assert sched.config.timestep_spacing == "linspace"

    # ---- inputs ----
    g = torch.Generator().manual_seed(200 + v)
    B = 2
    S = base.IMAGE_SIZE
    images = [torch.randint(0, 256, (19 + 4 * i, 23, 3), generator=g, dtype=torch.uint8) for i in range(B)]
    ids = torch.full((B, 12), 0, dtype=torch.long)  # SD 2.x's tokenizer pads with "!" (0)
    ids[:, 0] = 998
    ids[0, 1:5] = torch.tensor([5, 17, 300, 999])
    ids[1, 1:3] = torch.tensor([42, 999])
    eps_vae = torch.randn(B, 4, S // 2, S // 2, generator=g)
    eps = torch.randn(B, 4, S // 2, S // 2, generator=g)
    gold = {"ids": ids, "noise_vae": eps_vae, "noise": eps}
    for i, im in enumerate(images):
        gold[f"image{i}"] = im

    # ---- text: StableDiffusionImg2ImgPipeline.encode_prompt (clip_skip None): text_encoder(ids)[0] ----
    out = te(ids, output_hidden_states=True)
    gold["text_encoder.last_hidden_state"] = out.last_hidden_state
    gold["text_encoder.penultimate"] = out.hidden_states[-2]
    gold["text_encoder.pooled"] = out.pooler_output
    ehs = out.last_hidden_state

    proc = VaeImageProcessor(vae_scale_factor=2)
    pil = [Image.fromarray(im.numpy()).resize((S, S)).convert("RGB") for im in images]
    x = proc.preprocess(pil, height=S, width=S)
    gold["pixels"] = x
    h = vae.encode(x).latent_dist
    gold["vae.moments"] = h.parameters
    z = vae.config.scaling_factor * (h.mean + h.std * eps_vae)
    gold["vae.latents"] = z

    t, lat = base.paper_noising(sched, z, eps, B)
    gold["input.latents"] = lat
    gold["input.timestep"] = t.repeat(B)
    gold["input.encoder_hidden_states"] = ehs
    store = base.Store()
    base.install_processors(unet, store)
    gold["unet.out"] = unet(lat, t, encoder_hidden_states=ehs).sample
    for k, val in store.t.items():
        if not k.endswith("special-weight"):
            gold["capture." + k] = val
    gold = {k: val.contiguous().clone() for k, val in gold.items()}
    save_file(gold, os.path.join(root, "golden.safetensors"),
              metadata={"notes": "diffusers 0.32.2 UNet/VAE/EulerDiscreteScheduler, transformers 4.47.1 "
                                  "CLIPTextModel; see sd21_goldens.py", "timestep": str(float(t[0]))})
    print(kind, "t =", float(t[0]), "keys", len(gold))


def full_size():
    """Parameter totals and key hashes of the full-size SD 2.1 UNet (as sd_goldens.make_full_size_keys) and of
    OpenCLIP-H's text tower in the CLIPTextModel layout, built on the meta device."""
    import json
    with torch.device("meta"):
        unet = UNet2DConditionModel(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=1024,
                                    attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
                                    upcast_attention=True, sample_size=96)
        te = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=1024, intermediate_size=4096,
                                          num_hidden_layers=23, num_attention_heads=16, hidden_act="gelu",
                                          projection_dim=512))
    out = {}
    for name, m in {"sd21_unet": unet, "openclip_h_text": te}.items():
        items = {k: t for k, t in m.state_dict().items() if k != "text_model.embeddings.position_ids"}
        out[name] = base.graph_signature(items)
        print(name, out[name])
    path = os.path.join(OUT, "full_size_keys_sd21.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    full_size()
    make("sd21")
    make("sd21-base")
