#!/usr/bin/env python3
"""Goldens for native sampling of the kinds beyond the paper's four (tests/generation/test_pipeline_parity.cpp):
diffusers 0.32.2's text-to-image pipelines on tiny random-weight checkpoints, as generation_goldens.py does for
sd15, sdxl, pixart-sigma and flux (its helpers are imported, not copied).

  sd21_tiny/       SD 2.1 768-v: linear projections, upcast attention, a gelu (OpenCLIP-style) CLIP text encoder
                   whose tokenizer pads with "!" (id 0), DDIMScheduler with prediction_type v_prediction (the
                   published scheduler config); StableDiffusionPipeline with DDIM, and PNDM / Euler / DPM-Solver++
                   through a scheduler override (from_config keeps v_prediction).
  sd21base_tiny/   SD 2.1-base: the same UNet layout, PNDM with epsilon.
  pixart_alpha_tiny/  PixArtAlphaPipeline: a sample_size-128 transformer with use_additional_conditions, so the
                   pipeline passes the resolution / aspect-ratio micro-conditions (generated at 16², no binning).
  pixart_sigma_512_tiny/  PixArtSigmaPipeline with a sample_size-64 transformer (the Sigma 512-MS layout).
  sd35_tiny/       StableDiffusion3Pipeline: SD3Transformer2DModel with QK RMSNorm and dual attention in block 0
                   (Medium's layout), CLIP-L and CLIP-G with projections, T5; FlowMatchEulerDiscreteScheduler with
                   shift 3.0 and no dynamic shifting; CFG with pooled projections; the negative prompt "".

Each golden.safetensors holds the token ids of both CFG halves, the initial latents, the pipelines' final latents
(output_type="latent") and uint8 images; the pipelines get the prompt embeddings encode_prompt would compute from
those ids (the tiny folders have no tokenizer files).

Usage: /work/main/.venv/bin/python tools/parity/generation_new_kinds_goldens.py
"""
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generation_goldens as gg  # noqa: E402  (helpers and the shared tiny configs)

from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler,  # noqa: E402
                       PixArtAlphaPipeline, PixArtSigmaPipeline, PixArtTransformer2DModel, PNDMScheduler,
                       SD3Transformer2DModel, StableDiffusion3Pipeline, StableDiffusionPipeline,
                       UNet2DConditionModel)

torch.set_grad_enabled(False)
B, IMAGE = gg.B, gg.IMAGE

# stabilityai/stable-diffusion-2-1 and -2-1-base scheduler/scheduler_config.json (diffusers 0.32.2 keys).
SD21_SCHED = {"_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
              "prediction_type": "v_prediction", "set_alpha_to_one": False, "skip_prk_steps": True,
              "steps_offset": 1, "trained_betas": None}
SD21_BASE_SCHED = dict(gg.SD15_SCHED, prediction_type="epsilon")
# stabilityai/stable-diffusion-3.5-medium scheduler/scheduler_config.json.
SD35_SCHED = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}


def save(root, gold, meta):
    save_file({k: v.contiguous() for k, v in gold.items()}, os.path.join(root, "golden.safetensors"))
    gg.dump_json(os.path.join(root, "golden.json"), meta)


def record(pipe, gold, meta, prefix, steps, scale, args, label):
    args = dict(args, num_inference_steps=steps, guidance_scale=scale, height=IMAGE, width=IMAGE)
    gold[prefix + "final_latents"] = pipe(**dict(args, latents=args["latents"].clone()), output_type="latent").images
    gold[prefix + "images"] = gg.pil_u8(pipe(**dict(args, latents=args["latents"].clone()), output_type="pil").images)
    meta[prefix + "steps"] = str(steps)
    meta[prefix + "scale"] = str(scale)
    u8 = gold[prefix + "images"]
    print(label, prefix or "default", "steps", steps, "pixel mean", float(u8.float().mean()),
          "saturated", float(((u8 == 0) | (u8 == 255)).float().mean()))


def clip_ids_bang(words_rows, length=12, bos=998, eos=999):
    """CLIP ids as SD 2.x's tokenizer pads them: [BOS] + words + [EOS], then "!" (id 0)."""
    rows = []
    for w in words_rows:
        r = [bos] + list(w) + [eos]
        rows.append(r + [0] * (length - len(r)))
    return torch.tensor(rows, dtype=torch.long)


def sd21_goldens(v_model):
    name = "sd21_tiny" if v_model else "sd21base_tiny"
    root = os.path.join(gg.OUT, name)
    gg.dump_json(os.path.join(root, "model_index.json"),
                 {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.32.2"})
    unet = UNet2DConditionModel(in_channels=4, out_channels=4, sample_size=8, flip_sin_to_cos=True, freq_shift=0,
                                layers_per_block=1, norm_num_groups=4, norm_eps=1e-5, act_fn="silu",
                                downsample_padding=1, block_out_channels=(8, 16),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=2,
                                cross_attention_dim=16, use_linear_projection=True,
                                upcast_attention=v_model).eval()
    gg.save_component(root, "unet", gg.diffusers_cfg(unet), gg.randomize(unet, 131 + v_model),
                      "diffusion_pytorch_model.safetensors")
    vae = gg.make_vae(root, 141 + v_model)
    te = gg.make_clip(root, "text_encoder", 151 + v_model, hidden_act="gelu")
    sched_cfg = SD21_SCHED if v_model else SD21_BASE_SCHED
    gg.dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), sched_cfg)
    ids = clip_ids_bang([[5, 17, 300], [42]])
    uncond = clip_ids_bang([[], []])
    g = torch.Generator().manual_seed(177 + v_model)
    latents = torch.randn(B, 4, IMAGE // 2, IMAGE // 2, generator=g)
    base = (DDIMScheduler if v_model else PNDMScheduler).from_config(sched_cfg)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=None, unet=unet, scheduler=base,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    gold = {"ids": ids, "uncond_ids": uncond, "latents": latents}
    args = dict(prompt_embeds=te(ids)[0], negative_prompt_embeds=te(uncond)[0], latents=latents)
    runs = [("", None, 6, 3.0)]
    if v_model:
        runs += [("pndm.", "PNDMScheduler", 6, 3.0), ("euler.", "EulerDiscreteScheduler", 6, 3.0),
                 ("dpm.", "DPMSolverMultistepScheduler", 6, 3.0)]
    meta = {}
    for prefix, override, steps, scale in runs:
        pipe.scheduler = gg.CLASSES[override].from_config(base.config) if override else base
        assert pipe.scheduler.config.prediction_type == sched_cfg["prediction_type"]
        record(pipe, gold, meta, prefix, steps, scale, args, name)
        meta[prefix + "scheduler"] = override or sched_cfg["_class_name"]
    save(root, gold, meta)


def pixart_variant_goldens(alpha):
    name = "pixart_alpha_tiny" if alpha else "pixart_sigma_512_tiny"
    root = os.path.join(gg.OUT, name)
    gg.dump_json(os.path.join(root, "model_index.json"),
                 {"_class_name": "PixArtAlphaPipeline" if alpha else "PixArtSigmaPipeline",
                  "_diffusers_version": "0.32.2"})
    # Alpha: PixArtAlphaPipeline passes resolution / aspect ratio only for a sample_size-128 transformer, which has
    # use_additional_conditions. Sigma-512: sample_size 64 (how the 512-MS checkpoint is told apart).
    # Alpha's micro-condition embeddings are inner_dim / 3 wide each: 2 heads x 12.
    tr = PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=12 if alpha else 8, in_channels=4,
                                  out_channels=8, num_layers=2, cross_attention_dim=24 if alpha else 16,
                                  attention_bias=True,
                                  sample_size=128 if alpha else 64, patch_size=2, activation_fn="gelu-approximate",
                                  num_embeds_ada_norm=1000, norm_type="ada_norm_single",
                                  norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=2 if alpha else 1,
                                  use_additional_conditions=alpha, caption_channels=16).eval()
    gg.save_component(root, "transformer", gg.diffusers_cfg(tr), gg.randomize(tr, 171 + alpha, std=0.15),
                      "diffusion_pytorch_model.safetensors")
    vae = gg.make_vae(root, 172 + alpha)
    t5 = gg.make_t5(root, "text_encoder", 16, 173 + alpha)
    gg.dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), gg.PIXART_SCHED)
    T = 8
    ids, mask = gg.t5_ids([[5, 17, 30], [12]], T)
    uids, umask = gg.t5_ids([[], []], T)
    g = torch.Generator().manual_seed(178 + alpha)
    latents = torch.randn(B, 4, IMAGE // 2, IMAGE // 2, generator=g)
    cls = PixArtAlphaPipeline if alpha else PixArtSigmaPipeline
    pipe = cls(tokenizer=None, text_encoder=t5, vae=vae, transformer=tr,
               scheduler=DPMSolverMultistepScheduler.from_config(gg.PIXART_SCHED))
    pipe.set_progress_bar_config(disable=True)
    gold = {"ids": ids, "mask": mask, "uncond_ids": uids, "uncond_mask": umask, "latents": latents}
    args = dict(prompt_embeds=t5(ids, attention_mask=mask)[0], prompt_attention_mask=mask, negative_prompt=None,
                negative_prompt_embeds=t5(uids, attention_mask=umask)[0], negative_prompt_attention_mask=umask,
                latents=latents, use_resolution_binning=False)
    meta = {}
    record(pipe, gold, meta, "", 6, 3.0, args, name)
    save(root, gold, meta)


def sd35_goldens():
    root = os.path.join(gg.OUT, "sd35_tiny")
    gg.dump_json(os.path.join(root, "model_index.json"),
                 {"_class_name": "StableDiffusion3Pipeline", "_diffusers_version": "0.32.2"})
    tr = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=8,
                               num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16,
                               pooled_projection_dim=32, out_channels=16, pos_embed_max_size=8,
                               dual_attention_layers=(0,), qk_norm="rms_norm").eval()
    gg.save_component(root, "transformer", gg.diffusers_cfg(tr), gg.randomize(tr, 181, std=0.15),
                      "diffusion_pytorch_model.safetensors")
    vae = gg.make_vae(root, 182, flux=True)  # 16 channels, no quant convs, shift and scale
    te = gg.make_clip(root, "text_encoder", 183, projection=True)
    te2 = gg.make_clip(root, "text_encoder_2", 184, projection=True, hidden_act="gelu")
    t5 = gg.make_t5(root, "text_encoder_3", 32, 185)
    gg.dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), SD35_SCHED)
    T = 8
    cids = gg.clip_ids([[5, 17, 300], [42]])
    ucids = gg.clip_ids([[], []])
    ids, _ = gg.t5_ids([[5, 17, 30], [12]], T)
    uids, _ = gg.t5_ids([[], []], T)
    g = torch.Generator().manual_seed(186)
    latents = torch.randn(B, 16, IMAGE // 2, IMAGE // 2, generator=g)

    def encode(clip_ids, t5_ids):
        # encode_prompt: tokenizer_2 pads with "!" (0) where tokenizer pads with EOS; the same BPE ids otherwise.
        ids2 = clip_ids.clone()
        for b in range(ids2.shape[0]):
            first = int((ids2[b] == 999).nonzero()[0])
            ids2[b, first + 1:] = 0
        o1 = te(clip_ids, output_hidden_states=True)
        o2 = te2(ids2, output_hidden_states=True)
        clip = torch.cat([o1.hidden_states[-2], o2.hidden_states[-2]], dim=-1)
        t5_states = t5(t5_ids)[0]
        clip = torch.nn.functional.pad(clip, (0, t5_states.shape[-1] - clip.shape[-1]))
        return torch.cat([clip, t5_states], dim=-2), torch.cat([o1[0], o2[0]], dim=-1)

    pe, pooled = encode(cids, ids)
    npe, npooled = encode(ucids, uids)
    pipe = StableDiffusion3Pipeline(transformer=tr, scheduler=FlowMatchEulerDiscreteScheduler.from_config(SD35_SCHED),
                                    vae=vae, text_encoder=te, tokenizer=None, text_encoder_2=te2, tokenizer_2=None,
                                    text_encoder_3=t5, tokenizer_3=None)
    pipe.set_progress_bar_config(disable=True)
    gold = {"ids": ids, "clip_ids": cids, "uncond_ids": uids, "uncond_clip_ids": ucids, "latents": latents}
    args = dict(prompt_embeds=pe, pooled_prompt_embeds=pooled, negative_prompt_embeds=npe,
                negative_pooled_prompt_embeds=npooled, latents=latents)
    meta = {}
    record(pipe, gold, meta, "", 5, 3.0, args, "sd35")
    save(root, gold, meta)


if __name__ == "__main__":
    sd21_goldens(True)
    sd21_goldens(False)
    pixart_variant_goldens(True)
    pixart_variant_goldens(False)
    sd35_goldens()
