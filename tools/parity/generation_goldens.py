#!/usr/bin/env python3
"""Goldens for native sampling (tests/generation/): diffusers 0.32.2 schedulers and text-to-image pipelines.

1. schedulers/: for each case (a scheduler_config.json, an optional class override applied like
   `Other.from_config(PNDMScheduler.from_config(file).config)`, a step count, Flux's mu), the timesteps, sigmas,
   init_noise_sigma, and a full run of scale_model_input + step() on random model outputs (fp32 and one fp16 case).
2. <kind>_tiny/: tiny random-weight checkpoints (sd15, sdxl, pixart-sigma, flux) in the diffusers layout, with
   F16-representable weights stored as F16, and golden.safetensors: token ids of both CFG halves, initial latents,
   the pipelines' final latents (output_type="latent") and uint8 images (output_type="pil", i.e. VaeImageProcessor's
   denormalize, *255, round, uint8). The pipelines get prompt embeddings computed by the transformers text encoders
   from the stored ids exactly as their encode_prompt does (the tiny folders have no tokenizer files).

Usage: /work/main/.venv/bin/python tools/parity/generation_goldens.py
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

import diffusers
import transformers
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                       FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel, PixArtSigmaPipeline,
                       PixArtTransformer2DModel, PNDMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_goldens  # noqa: E402  (randomize)

assert diffusers.__version__ == "0.32.2", diffusers.__version__
assert transformers.__version__ == "4.47.1", transformers.__version__
torch.set_grad_enabled(False)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "generation", "golden")
CLASSES = {c.__name__: c for c in (PNDMScheduler, DDIMScheduler, EulerDiscreteScheduler, DPMSolverMultistepScheduler,
                                   FlowMatchEulerDiscreteScheduler)}

SD15_SCHED = {"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "clip_sample": False, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
              "steps_offset": 1, "trained_betas": None}
SDXL_SCHED = {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
              "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
              "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False}
PIXART_SCHED = {"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver++", "beta_end": 0.02,
                "beta_schedule": "linear", "beta_start": 0.0001, "dynamic_thresholding_ratio": 0.995,
                "euler_at_final": False, "lower_order_final": True, "num_train_timesteps": 1000,
                "prediction_type": "epsilon", "sample_max_value": 1.0, "solver_order": 2, "solver_type": "midpoint",
                "steps_offset": 0, "thresholding": False, "timestep_spacing": "linspace", "trained_betas": None,
                "use_karras_sigmas": False, "use_lu_lambdas": False, "variance_type": None}
FLUX_SCHED = {"_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5,
              "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0,
              "use_dynamic_shifting": True}


def dump_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)


def load_scheduler(cfg_path, override=None):
    cfg = json.load(open(cfg_path))
    base = CLASSES[cfg["_class_name"]].from_config(CLASSES[cfg["_class_name"]].load_config(cfg_path))
    if override:
        return CLASSES[override].from_config(base.config)
    return base


def calculate_shift(n, c):
    m = (c["max_shift"] - c["base_shift"]) / (c["max_image_seq_len"] - c["base_image_seq_len"])
    return n * m + c["base_shift"] - m * c["base_image_seq_len"]


def scheduler_goldens():
    root = os.path.join(OUT, "schedulers")
    configs = {"sd15": SD15_SCHED, "sdxl": SDXL_SCHED, "pixart": PIXART_SCHED, "flux": FLUX_SCHED}
    for name, c in configs.items():
        dump_json(os.path.join(root, f"{name}.json"), c)
    cases = [("pndm_sd15", "sd15", None, 10, None, torch.float32),
             ("pndm_sd15_3", "sd15", None, 3, None, torch.float32),
             ("ddim_sd15", "sd15", "DDIMScheduler", 10, None, torch.float32),
             ("euler_sdxl", "sdxl", None, 10, None, torch.float32),
             ("euler_sd15", "sd15", "EulerDiscreteScheduler", 7, None, torch.float32),
             ("dpm_pixart", "pixart", None, 20, None, torch.float32),
             ("dpm_pixart_5", "pixart", None, 5, None, torch.float32),
             ("dpm_pixart_fp16", "pixart", None, 6, None, torch.float16),
             ("dpm_sd15", "sd15", "DPMSolverMultistepScheduler", 8, None, torch.float32),
             ("euler_sdxl_fp16", "sdxl", None, 6, None, torch.float16),
             ("flow_flux", "flux", None, 6, 16, torch.float32),
             ("flow_flux_4096", "flux", None, 28, 4096, torch.float32),
             ("flow_flux_bf16", "flux", None, 5, 1024, torch.bfloat16)]
    gold, index = {}, []
    g = torch.Generator().manual_seed(1234)
    for case, cfg_name, override, steps, seq, dtype in cases:
        path = os.path.join(root, f"{cfg_name}.json")
        s = load_scheduler(path, override)
        kw = {}
        if seq is not None:
            mu = calculate_shift(seq, FLUX_SCHED)
            s.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
        else:
            mu = 0.0
            s.set_timesteps(steps)
        ts = s.timesteps
        x = torch.randn(2, 4, 4, 4, generator=g).to(dtype)
        if not isinstance(s, FlowMatchEulerDiscreteScheduler):
            x = x * s.init_noise_sigma
        xs, xins, outs = [x], [], []
        for t in ts:
            x_in = s.scale_model_input(x, t) if not isinstance(s, FlowMatchEulerDiscreteScheduler) else x
            out = torch.randn(2, 4, 4, 4, generator=g).to(dtype)
            x = s.step(out, t, x, return_dict=False)[0]
            xins.append(x_in)
            outs.append(out)
            xs.append(x)
        gold[f"{case}.timesteps"] = ts.to(torch.float64)
        if hasattr(s, "sigmas") and s.sigmas is not None and not isinstance(s, (PNDMScheduler, DDIMScheduler)):
            gold[f"{case}.sigmas"] = torch.as_tensor(s.sigmas).to(torch.float32)
        ins = getattr(s, "init_noise_sigma", 1.0)
        gold[f"{case}.init_noise_sigma"] = torch.as_tensor(float(ins), dtype=torch.float32).reshape(1)
        gold[f"{case}.x"] = torch.stack(xs)
        gold[f"{case}.x_in"] = torch.stack(xins)
        gold[f"{case}.model_out"] = torch.stack(outs)
        index.append({"case": case, "config": f"{cfg_name}.json", "class": override or "", "steps": steps,
                      "mu": mu, "dtype": str(dtype).replace("torch.", "")})
        print(case, [round(float(t), 3) for t in ts[:4]], "...", len(ts))
    dump_json(os.path.join(root, "index.json"), index)
    save_file({k: v.contiguous() for k, v in gold.items()}, os.path.join(root, "schedulers.safetensors"),
              metadata={"notes": "diffusers 0.32.2 set_timesteps/scale_model_input/step; see generation_goldens.py"})


# ---------------------------------------------------------------------------------------------------------------
def randomize(module, seed, std=0.1, tie=None):
    """sd_goldens.randomize, the tensors copied for save_file."""
    out = sd_goldens.randomize(module, seed, std, tie, strict=False)
    return {k: v.clone().contiguous() for k, v in out.items()}


def save_component(root, comp, cfg, weights, fname):
    dump_json(os.path.join(root, comp, "config.json"), cfg)
    save_file(weights, os.path.join(root, comp, fname))


def diffusers_cfg(m):
    c = dict(m.config)
    c.pop("_use_default_values", None)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()}


VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
           down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
           layers_per_block=1, norm_num_groups=4, act_fn="silu", force_upcast=True)
CLIP = dict(vocab_size=1000, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
            max_position_embeddings=12, hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=2,
            bos_token_id=0, pad_token_id=1)
T5 = dict(d_kv=4, num_heads=2, d_ff=24, num_layers=2, vocab_size=40, relative_attention_num_buckets=8,
          relative_attention_max_distance=16, layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu",
          dense_act_fn="gelu_new", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
IMAGE = 16
B = 2


def make_vae(root, seed, flux=False):
    cfg = dict(VAE, scaling_factor=0.18215)
    if flux:
        cfg.update(latent_channels=16, use_quant_conv=False, use_post_quant_conv=False, scaling_factor=0.3611,
                   shift_factor=0.1159)
    vae = AutoencoderKL(**cfg).eval()
    w = randomize(vae, seed)
    save_component(root, "vae", diffusers_cfg(vae), w, "diffusion_pytorch_model.safetensors")
    return vae


def make_clip(root, comp, seed, projection=False, hidden_act="quick_gelu"):
    cfg = CLIPTextConfig(**dict(CLIP, hidden_act=hidden_act, projection_dim=16))
    m = (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()
    w = randomize(m, seed)
    c = cfg.to_dict()
    c["architectures"] = ["CLIPTextModelWithProjection" if projection else "CLIPTextModel"]
    save_component(root, comp, c, w, "model.safetensors")
    return m


def make_t5(root, comp, d_model, seed):
    cfg = T5Config(d_model=d_model, **T5)
    m = T5EncoderModel(cfg).eval()
    w = randomize(m, seed, std=0.15, tie={"encoder.embed_tokens.weight": "shared.weight"})
    c = cfg.to_dict()
    c["architectures"] = ["T5EncoderModel"]
    save_component(root, comp, c, w, "model.safetensors")
    return m


def clip_ids(words_rows, length=12, bos=998, eos=999):
    rows = []
    for w in words_rows:
        r = [bos] + list(w) + [eos]
        rows.append(r + [eos] * (length - len(r)))
    return torch.tensor(rows, dtype=torch.long)


def t5_ids(words_rows, length):
    rows, masks = [], []
    for w in words_rows:
        r = list(w) + [1]
        rows.append(r + [0] * (length - len(r)))
        masks.append([1] * len(r) + [0] * (length - len(r)))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.long)


def pil_u8(images):
    return torch.from_numpy(np.stack([np.array(im) for im in images]))


def sd_pipeline_goldens(sdxl):
    kind = "sdxl" if sdxl else "sd15"
    root = os.path.join(OUT, f"{kind}_tiny")
    dump_json(os.path.join(root, "model_index.json"),
              {"_class_name": "StableDiffusionXLPipeline" if sdxl else "StableDiffusionPipeline",
               "_diffusers_version": "0.32.2"})
    common = dict(in_channels=4, out_channels=4, sample_size=8, flip_sin_to_cos=True, freq_shift=0,
                  layers_per_block=1, norm_num_groups=4, norm_eps=1e-5, act_fn="silu", downsample_padding=1,
                  block_out_channels=(8, 16))
    if sdxl:
        ucfg = dict(common, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                    transformer_layers_per_block=(1, 2), cross_attention_dim=32, use_linear_projection=True,
                    addition_embed_type="text_time", addition_time_embed_dim=8,
                    projection_class_embeddings_input_dim=16 + 6 * 8)
    else:
        ucfg = dict(common, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=2, cross_attention_dim=16,
                    use_linear_projection=False)
    unet = UNet2DConditionModel(**ucfg).eval()
    save_component(root, "unet", diffusers_cfg(unet), randomize(unet, 31 + sdxl),
                   "diffusion_pytorch_model.safetensors")
    vae = make_vae(root, 41 + sdxl)
    if sdxl:
        vae.register_to_config(scaling_factor=0.13025)
        cfg = json.load(open(os.path.join(root, "vae", "config.json")))
        cfg["scaling_factor"] = 0.13025
        dump_json(os.path.join(root, "vae", "config.json"), cfg)
    te = make_clip(root, "text_encoder", 51 + sdxl)
    te2 = make_clip(root, "text_encoder_2", 61, projection=True, hidden_act="gelu") if sdxl else None
    sched_cfg = SDXL_SCHED if sdxl else SD15_SCHED
    dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), sched_cfg)

    ids = clip_ids([[5, 17, 300], [42]])
    uncond = clip_ids([[], []])
    g = torch.Generator().manual_seed(77 + sdxl)
    latents = torch.randn(B, 4, IMAGE // 2, IMAGE // 2, generator=g)
    gold = {"ids": ids, "uncond_ids": uncond, "latents": latents}

    def encode(i):
        return te(i)[0]

    if sdxl:
        ids2 = ids.clone()
        for b in range(B):
            first = int((ids2[b] == 999).nonzero()[0])
            ids2[b, first + 1:] = 0
        o1 = te(ids, output_hidden_states=True)
        o2 = te2(ids2, output_hidden_states=True)
        pe = torch.cat([o1.hidden_states[-2], o2.hidden_states[-2]], dim=-1)
        pooled = o2[0]
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te, text_encoder_2=te2, tokenizer=None, tokenizer_2=None,
                                         unet=unet, scheduler=EulerDiscreteScheduler.from_config(sched_cfg),
                                         add_watermarker=False)
        kw = dict(prompt_embeds=pe, pooled_prompt_embeds=pooled)
        runs = [("", None, 6, 3.0)]
    else:
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=None, unet=unet,
                                       scheduler=PNDMScheduler.from_config(sched_cfg), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        kw = dict(prompt_embeds=encode(ids), negative_prompt_embeds=encode(uncond))
        runs = [("", None, 8, 3.0), ("ddim.", "DDIMScheduler", 6, 3.0), ("euler.", "EulerDiscreteScheduler", 6, 3.0),
                ("dpm.", "DPMSolverMultistepScheduler", 6, 3.0)]
    pipe.set_progress_bar_config(disable=True)
    base_sched = pipe.scheduler
    meta = {}
    for prefix, override, steps, scale in runs:
        pipe.scheduler = CLASSES[override].from_config(base_sched.config) if override else base_sched
        args = dict(kw, latents=latents.clone(), num_inference_steps=steps, guidance_scale=scale, height=IMAGE,
                    width=IMAGE)
        lat = pipe(**args, output_type="latent").images
        img = pipe(**args, output_type="pil").images
        gold[prefix + "final_latents"] = lat
        gold[prefix + "images"] = pil_u8(img)
        meta[prefix + "steps"] = str(steps)
        meta[prefix + "scale"] = str(scale)
        meta[prefix + "scheduler"] = override or sched_cfg["_class_name"]
        u8 = gold[prefix + "images"]
        print(kind, prefix or "default", "steps", steps, "pixel mean", float(u8.float().mean()),
              "saturated", float(((u8 == 0) | (u8 == 255)).float().mean()))
    save_file({k: v.contiguous() for k, v in gold.items()}, os.path.join(root, "golden.safetensors"))
    dump_json(os.path.join(root, "golden.json"), meta)  # steps / scale / scheduler per run (byte-stable, unlike metadata)


def pixart_goldens():
    root = os.path.join(OUT, "pixart_tiny")
    dump_json(os.path.join(root, "model_index.json"), {"_class_name": "PixArtSigmaPipeline", "_diffusers_version": "0.32.2"})
    tr = PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                  num_layers=2, cross_attention_dim=16, attention_bias=True, sample_size=8,
                                  patch_size=2, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
                                  norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
                                  interpolation_scale=2, use_additional_conditions=False, caption_channels=16).eval()
    save_component(root, "transformer", diffusers_cfg(tr), randomize(tr, 71, std=0.15),
                   "diffusion_pytorch_model.safetensors")
    vae = make_vae(root, 72)
    t5 = make_t5(root, "text_encoder", 16, 73)
    dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), PIXART_SCHED)
    T = 8
    ids, mask = t5_ids([[5, 17, 30], [12]], T)
    uids, umask = t5_ids([[], []], T)
    g = torch.Generator().manual_seed(78)
    latents = torch.randn(B, 4, IMAGE // 2, IMAGE // 2, generator=g)
    pe = t5(ids, attention_mask=mask)[0]
    npe = t5(uids, attention_mask=umask)[0]
    pipe = PixArtSigmaPipeline(tokenizer=None, text_encoder=t5, vae=vae, transformer=tr,
                               scheduler=DPMSolverMultistepScheduler.from_config(PIXART_SCHED))
    pipe.set_progress_bar_config(disable=True)
    gold = {"ids": ids, "mask": mask, "uncond_ids": uids, "uncond_mask": umask, "latents": latents}
    meta = {}
    for prefix, steps, scale in (("", 6, 3.0), ("long.", 16, 2.0)):
        args = dict(prompt_embeds=pe, prompt_attention_mask=mask, negative_prompt=None, negative_prompt_embeds=npe,
                    negative_prompt_attention_mask=umask, latents=latents.clone(), num_inference_steps=steps,
                    guidance_scale=scale, height=IMAGE, width=IMAGE, use_resolution_binning=False)
        gold[prefix + "final_latents"] = pipe(**args, output_type="latent").images
        gold[prefix + "images"] = pil_u8(pipe(**args, output_type="pil").images)
        meta[prefix + "steps"] = str(steps)
        meta[prefix + "scale"] = str(scale)
        u8 = gold[prefix + "images"]
        print("pixart", prefix or "default", "pixel mean", float(u8.float().mean()),
              "saturated", float(((u8 == 0) | (u8 == 255)).float().mean()))
    save_file({k: v.contiguous() for k, v in gold.items()}, os.path.join(root, "golden.safetensors"))
    dump_json(os.path.join(root, "golden.json"), meta)  # steps / scale / scheduler per run (byte-stable, unlike metadata)


def flux_goldens():
    root = os.path.join(OUT, "flux_tiny")
    dump_json(os.path.join(root, "model_index.json"), {"_class_name": "FluxPipeline", "_diffusers_version": "0.32.2"})
    tr = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=2, num_single_layers=2, attention_head_dim=16,
                                num_attention_heads=2, joint_attention_dim=24, pooled_projection_dim=16,
                                guidance_embeds=True, axes_dims_rope=(4, 6, 6)).eval()
    save_component(root, "transformer", diffusers_cfg(tr), randomize(tr, 81, std=0.15),
                   "diffusion_pytorch_model.safetensors")
    vae = make_vae(root, 82, flux=True)
    clip = make_clip(root, "text_encoder", 83)
    t5 = make_t5(root, "text_encoder_2", 24, 84)
    dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), FLUX_SCHED)
    T = 8
    ids, _ = t5_ids([[5, 17, 30], [12]], T)
    cids = clip_ids([[5, 17, 300], [42]])
    g = torch.Generator().manual_seed(79)
    latents = torch.randn(B, 16, IMAGE // 2, IMAGE // 2, generator=g)
    packed = FluxPipeline._pack_latents(latents, B, 16, IMAGE // 2, IMAGE // 2)
    pe = t5(ids)[0]
    pooled = clip(cids).pooler_output
    pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler.from_config(FLUX_SCHED), vae=vae, text_encoder=clip,
                        tokenizer=None, text_encoder_2=t5, tokenizer_2=None, transformer=tr)
    pipe.set_progress_bar_config(disable=True)
    gold = {"ids": ids, "clip_ids": cids, "latents": latents}
    steps, scale = 5, 3.5
    args = dict(prompt_embeds=pe, pooled_prompt_embeds=pooled, latents=packed.clone(), num_inference_steps=steps,
                guidance_scale=scale, height=IMAGE, width=IMAGE)
    lat = pipe(**args, output_type="latent").images
    gold["final_latents"] = FluxPipeline._unpack_latents(lat, IMAGE, IMAGE, 2)
    gold["images"] = pil_u8(pipe(**args, output_type="pil").images)
    u8 = gold["images"]
    print("flux pixel mean", float(u8.float().mean()), "saturated", float(((u8 == 0) | (u8 == 255)).float().mean()))
    save_file({k: v.contiguous() for k, v in gold.items()}, os.path.join(root, "golden.safetensors"))
    dump_json(os.path.join(root, "golden.json"), {"steps": str(steps), "scale": str(scale)})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    scheduler_goldens()
    sd_pipeline_goldens(False)
    sd_pipeline_goldens(True)
    pixart_goldens()
    flux_goldens()
