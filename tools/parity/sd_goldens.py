#!/usr/bin/env python3
"""Goldens for the native SD1.5 / SDXL backbones (tests/backbones/test_sd_parity.cpp).

Runs diffusers v0.32.2 (UNet2DConditionModel, AutoencoderKL, PNDM/Euler schedulers, VaeImageProcessor) on tiny
SD1.5-like and SDXL-like configs with fixed random weights, and writes, per kind, a diffusers-layout folder
(configs + the SAME weights as F16-representable values in safetensors) and `golden.safetensors` with the inputs
(uint8 images, token ids, the two noise draws) and the outputs: CLIP text outputs, VAE moments and latents, the
noised UNet input, the UNet output and every captured tensor, as the paper's AttnStoreProcessor
(Darkbblue/goca install/components/attention.py) computes them: explicit baddbmm softmax, P reshaped
(B, H, Nq, Nk), values after head_to_batch_dim, post-value before to_out, to_out.0.weight, to_q output reshaped
'b (h w) c -> b c h w'.

CLIP text encoders: transformers 4.47.1's CLIPTextModel (CLIP-L) and CLIPTextModelWithProjection (bigG) on the
same weights (`clip_text_forward`).

Also writes pil_resize golden: random uint8 images resized with PIL's default filter (bicubic, antialiased).

Usage (the pinned stack of requirements/python-tools.txt):
    /work/main/.venv/bin/python tools/parity/sd_goldens.py [--out DIR]
--out writes everything under DIR instead of tests/backbones/golden (compare_goldens.py checks a rerun against the
committed files).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import diffusers
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, FluxTransformer2DModel, PixArtTransformer2DModel,
                       PNDMScheduler, UNet2DConditionModel)
from diffusers.image_processor import VaeImageProcessor
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import published_configs as P  # noqa: E402

assert diffusers.__version__ == "0.32.2", diffusers.__version__

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "backbones", "golden")
torch.set_grad_enabled(False)


def randomize(module, seed, std=0.1, tie=None, strict=True):
    """Random F16-representable weights N(0, std) (1-D norm weights 1 + N(0, std)) loaded into `module`, drawn in key
    order from `seed`; `tie` {dst: src} loads src's tensor under dst too and leaves dst out of the returned F16 dict."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, p in sorted(module.state_dict().items()):
        if not p.is_floating_point():
            sd[name] = p
            continue
        v = torch.randn(p.shape, generator=g) * std
        if name.endswith("weight") and p.dim() == 1 and "norm" in name:
            v = v + 1.0
        sd[name] = v.half().float()  # F16-representable, so the F16 file holds exactly these values
    for dst, src in (tie or {}).items():
        sd[dst] = sd[src]
    module.load_state_dict(sd, strict=strict)
    return {k: v.half() if v.is_floating_point() else v for k, v in sd.items() if k not in (tie or {})}


class Store:
    def __init__(self):
        self.t = {}


class AttnStoreProcessor:
    """The paper's processor (P-attn), recording under '<id>-<tensor>' (batch first)."""

    def __init__(self, store, block_id):
        self.store, self.id = store, block_id

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        batch_size = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        key = attn.to_k(ctx)
        value = attn.to_v(ctx)
        n = query.shape[1]
        r = int(math.sqrt(n))
        self.store.t[self.id + "-q"] = query.reshape(batch_size, r, r, -1).permute(0, 3, 1, 2).contiguous()
        query = attn.head_to_batch_dim(query)
        key = attn.head_to_batch_dim(key)
        value = attn.head_to_batch_dim(value)
        h = attn.heads
        self.store.t[self.id + "-special-value"] = value.reshape(batch_size, h, value.shape[1], value.shape[2])
        probs = attn.get_attention_scores(query, key, attention_mask)
        self.store.t[self.id + "-map"] = probs.reshape(batch_size, h, probs.shape[1], probs.shape[2])
        hs = torch.bmm(probs, value)
        hs = attn.batch_to_head_dim(hs)
        self.store.t[self.id + "-special-post-value"] = hs
        self.store.t[self.id + "-special-weight"] = attn.to_out[0].weight.unsqueeze(0).expand(batch_size, -1, -1)
        hs = attn.to_out[0](hs)
        hs = attn.to_out[1](hs)
        return hs


def install_processors(unet, store):
    procs = {}
    for name in unet.attn_processors.keys():
        parts = name.split(".")
        kind = "self" if parts[-2] == "attn1" else "cross"
        if parts[0] == "mid_block":
            blk = int(parts[4])
            bid = f"mid-vit-block{blk}-{kind}"
        else:
            stage = "down" if parts[0] == "down_blocks" else "up"
            level, rep, blk = int(parts[1]), int(parts[3]), int(parts[5])
            bid = f"{stage}-level{level}-repeat{rep}-vit-block{blk}-{kind}"
        procs[name] = AttnStoreProcessor(store, bid)
    unet.set_attn_processor(procs)


# ---- CLIP text encoders: transformers' CLIPTextModel / CLIPTextModelWithProjection ----
def clip_text_forward(sd, cfg, ids):
    """transformers 4.47.1 on the given weights: last_hidden_state (after the final LayerNorm), hidden_states[-2]
    (layer L-1's output, no final LN: SDXL's input), pooled = pooler_output (final-LN state at argmax(ids): the
    legacy eos_token_id == 2 rule), text_embeds = text_projection(pooled) for the projection model."""
    kw = {k: v for k, v in cfg.items() if k != "architectures"}
    proj = "text_projection.weight" in sd
    model = (CLIPTextModelWithProjection if proj else CLIPTextModel)(CLIPTextConfig(**kw)).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("position_ids") for k in missing), (missing, unexpected)
    o = model(input_ids=ids, output_hidden_states=True)
    out = {"last_hidden_state": o.last_hidden_state, "penultimate": o.hidden_states[-2]}
    if proj:
        out["pooled"] = o.last_hidden_state[torch.arange(ids.shape[0]), ids.to(torch.int).argmax(dim=-1)]
        out["text_embeds"] = o.text_embeds
    else:
        out["pooled"] = o.pooler_output
    return out


def clip_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    d, f, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    shapes = {"text_model.embeddings.token_embedding.weight": (cfg["vocab_size"], d),
              "text_model.embeddings.position_embedding.weight": (cfg["max_position_embeddings"], d),
              "text_model.final_layer_norm.weight": (d,), "text_model.final_layer_norm.bias": (d,)}
    for i in range(L):
        q = f"text_model.encoder.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[q + f"self_attn.{n}.weight"] = (d, d)
            shapes[q + f"self_attn.{n}.bias"] = (d,)
        for n in ("layer_norm1", "layer_norm2"):
            shapes[q + n + ".weight"] = (d,)
            shapes[q + n + ".bias"] = (d,)
        shapes[q + "mlp.fc1.weight"] = (f, d)
        shapes[q + "mlp.fc1.bias"] = (f,)
        shapes[q + "mlp.fc2.weight"] = (d, f)
        shapes[q + "mlp.fc2.bias"] = (d,)
    if cfg.get("projection_dim"):
        shapes["text_projection.weight"] = (cfg["projection_dim"], d)
    sd = {}
    for k in sorted(shapes):
        v = torch.randn(shapes[k], generator=g) * 0.1
        if k.endswith("weight") and len(shapes[k]) == 1:
            v = v + 1.0
        sd[k] = v.half().float()
    return sd


UNET_COMMON = dict(in_channels=4, out_channels=4, sample_size=8, flip_sin_to_cos=True, freq_shift=0,
                   layers_per_block=1, norm_num_groups=4, norm_eps=1e-5, act_fn="silu", downsample_padding=1,
                   block_out_channels=(8, 16))
SD15_UNET = dict(UNET_COMMON, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=2, cross_attention_dim=16,
                 use_linear_projection=False)
SDXL_UNET = dict(UNET_COMMON, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                 transformer_layers_per_block=(1, 2), cross_attention_dim=32, use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=16 + 6 * 8)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
           down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
           layers_per_block=1, norm_num_groups=4, act_fn="silu")
CLIP_L = dict(vocab_size=1000, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
              max_position_embeddings=12, hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=2,
              architectures=["CLIPTextModel"])
CLIP_G = dict(CLIP_L, hidden_act="gelu", projection_dim=16, architectures=["CLIPTextModelWithProjection"])
SCHED = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
             steps_offset=1, prediction_type="epsilon")
IMAGE_SIZE = 16
PAPER_T = 100


def paper_noising(sched, z, eps, batch):
    """One noising step as GDF's extract at PAPER_T: the timestep and the noised, scaled latents."""
    sched.set_timesteps(1000)
    init_timestep = min(int(1000 * PAPER_T / 1000), 1000)
    t_start = max(1000 - init_timestep, 0)
    timesteps = sched.timesteps[t_start * sched.order:]
    if hasattr(sched, "set_begin_index"):
        sched.set_begin_index(t_start * sched.order)
    t = timesteps[:1]
    lat = sched.add_noise(z, eps, t.repeat(batch))
    return t, sched.scale_model_input(lat, t)


def dump_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    obj = dict(obj)
    if "_use_default_values" in obj:  # a set in diffusers: sort it so reruns are byte-identical
        obj["_use_default_values"] = sorted(obj["_use_default_values"])
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)


def make(kind):
    sdxl = kind == "sdxl"
    root = os.path.join(OUT, f"{kind}_tiny")
    dump_json(os.path.join(root, "model_index.json"),
              {"_class_name": "StableDiffusionXLImg2ImgPipeline" if sdxl else "StableDiffusionImg2ImgPipeline",
               "_diffusers_version": "0.32.2"})
    ucfg = SDXL_UNET if sdxl else SD15_UNET
    unet = UNet2DConditionModel(**ucfg).eval()
    dump_json(os.path.join(root, "unet", "config.json"), dict(unet.config))
    save_file(randomize(unet, 1 if sdxl else 11), os.path.join(root, "unet", "diffusion_pytorch_model.safetensors"))
    vcfg = dict(VAE, scaling_factor=0.13025 if sdxl else 0.18215, force_upcast=True)
    vae = AutoencoderKL(**vcfg).eval()
    dump_json(os.path.join(root, "vae", "config.json"), dict(vae.config))
    vsd = randomize(vae, 2 if sdxl else 12)
    # The encoder only: drop the decoder to keep the golden small (the loader ignores decoder.* anyway).
    vsd = {k: v for k, v in vsd.items() if not k.startswith("decoder.") and not k.startswith("post_quant_conv.")}
    save_file(vsd, os.path.join(root, "vae", "diffusion_pytorch_model.safetensors"))
    encoders = [("text_encoder", CLIP_L, 3)] + ([("text_encoder_2", CLIP_G, 4)] if sdxl else [])
    text = {}
    for comp, cfg, seed in encoders:
        dump_json(os.path.join(root, comp, "config.json"), cfg)
        sd = clip_weights(cfg, seed + (0 if sdxl else 10))
        save_file({k: v.half() for k, v in sd.items()}, os.path.join(root, comp, "model.safetensors"))
        text[comp] = (sd, cfg)
    sched_cls = EulerDiscreteScheduler if sdxl else PNDMScheduler
    scfg = dict(SCHED, timestep_spacing="leading", interpolation_type="linear") if sdxl else \
        dict(SCHED, skip_prk_steps=True, set_alpha_to_one=False)
    sched = sched_cls(**scfg)
    dump_json(os.path.join(root, "scheduler", "scheduler_config.json"), dict(sched.config, _class_name=sched_cls.__name__))

    # ---- inputs ----
    g = torch.Generator().manual_seed(100 + sdxl)
    B = 2
    images = [torch.randint(0, 256, (19 + 4 * i, 23, 3), generator=g, dtype=torch.uint8) for i in range(B)]
    ids = torch.full((B, 12), 999, dtype=torch.long)
    ids[:, 0] = 998
    ids[0, 1:4] = torch.tensor([5, 17, 300])
    ids[1, 1:2] = torch.tensor([42])
    eps_vae = torch.randn(B, 4, IMAGE_SIZE // 2, IMAGE_SIZE // 2, generator=g)
    eps = torch.randn(B, 4, IMAGE_SIZE // 2, IMAGE_SIZE // 2, generator=g)
    gold = {"ids": ids, "noise_vae": eps_vae, "noise": eps}
    for i, im in enumerate(images):
        gold[f"image{i}"] = im

    # ---- text ----
    sd1, c1 = text["text_encoder"]
    t1 = clip_text_forward(sd1, c1, ids)
    for k, v in t1.items():
        gold[f"text_encoder.{k}"] = v
    if sdxl:
        ids2 = ids.clone()
        for b in range(B):
            first = int((ids2[b] == 999).nonzero()[0])
            ids2[b, first + 1:] = 0  # tokenizer_2 pads with "!" (0)
        sd2, c2 = text["text_encoder_2"]
        t2 = clip_text_forward(sd2, c2, ids2)
        for k, v in t2.items():
            gold[f"text_encoder_2.{k}"] = v
        ehs = torch.cat([t1["penultimate"], t2["penultimate"]], dim=-1)
        text_embeds = t2["text_embeds"]
    else:
        ehs = t1["last_hidden_state"]

    # ---- image -> latents (GDF: PIL resize (default filter) then convert RGB; VaeImageProcessor) ----
    proc = VaeImageProcessor(vae_scale_factor=2)
    pil = [Image.fromarray(im.numpy()).resize((IMAGE_SIZE, IMAGE_SIZE)).convert("RGB") for im in images]
    x = proc.preprocess(pil, height=IMAGE_SIZE, width=IMAGE_SIZE)
    gold["pixels"] = x
    h = vae.encode(x).latent_dist
    gold["vae.moments"] = h.parameters
    z = (h.mean + h.std * eps_vae)
    z = vae.config.scaling_factor * z
    gold["vae.latents"] = z

    t, lat = paper_noising(sched, z, eps, B)
    gold["input.latents"] = lat
    gold["input.timestep"] = t.repeat(B)
    gold["input.encoder_hidden_states"] = ehs
    kwargs = {}
    if sdxl:
        time_ids = torch.tensor([[IMAGE_SIZE, IMAGE_SIZE, 0, 0, IMAGE_SIZE, IMAGE_SIZE]], dtype=ehs.dtype).repeat(B, 1)
        gold["input.text_embeds"] = text_embeds
        gold["input.time_ids"] = time_ids
        kwargs["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": time_ids}
    store = Store()
    install_processors(unet, store)
    out = unet(lat, t, encoder_hidden_states=ehs, **kwargs).sample
    gold["unet.out"] = out
    for k, v in store.t.items():
        if not k.endswith("special-weight"):  # = to_out.0.weight, checked against the weight file instead
            gold["capture." + k] = v
    gold = {k: v.contiguous().clone() for k, v in gold.items()}  # no shared storage (safetensors refuses it)
    save_file(gold, os.path.join(root, "golden.safetensors"),
              metadata={"notes": "diffusers 0.32.2 UNet/VAE/schedulers; CLIP text encoders from transformers "
                                  "4.47.1; see sd_goldens.py",
                        "timestep": str(float(t[0]))})
    print(kind, "t =", float(t[0]), "keys", len(gold))


def make_pil():
    g = torch.Generator().manual_seed(5)
    out = {}
    cases = [((37, 53), (16, 16)), ((24, 18), (40, 56)), ((120, 90), (32, 24)), ((20, 20), (7, 33)),
             ((65, 77), (64, 64))]
    for i, ((h, w), (oh, ow)) in enumerate(cases):
        im = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8)
        # smooth-ish content as well as noise
        if i % 2:
            yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            im[..., 0] = ((yy * 7 + xx * 3) % 256).to(torch.uint8)
        r = np.array(Image.fromarray(im.numpy()).resize((ow, oh)))
        out[f"in{i}"] = im
        out[f"out{i}"] = torch.from_numpy(r.copy())
    save_file(out, os.path.join(OUT, "pil_resize.safetensors"))


def fnv1a64(text):
    h = 1469598103934665603
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) % (1 << 64)
    return h


def graph_signature(items):
    """What tests/backbones/full_size_graph.h compares for a model's state dict `items` (key -> tensor): the key
    count, the parameter total and the FNV-1a 64 of the sorted "key [shape]" lines."""
    lines = sorted(f"{k} {list(v.shape)}".replace(" ", "").replace(",", ", ").replace("[", " [", 1)
                   for k, v in items.items())
    return {"count": len(lines), "params": sum(v.numel() for v in items.values()),
            "fnv1a64": str(fnv1a64("\n".join(lines) + "\n"))}


def write_graph_signatures(models, path):
    """graph_signature of each model's state dict (`models`: name -> module), printed and written to `path`."""
    out = {}
    for name, m in models.items():
        out[name] = graph_signature(dict(m.state_dict()))
        print(name, out[name])
    dump_json(path, out)


def make_full_size_keys():
    """Key names and shapes of the full-size models at their published configs (published_configs.py), built on
    the meta device (no memory): sorted "key [shape]" lines, hashed (FNV-1a 64) with their count and parameter
    total. SD1.5 / SDXL UNets and the VAE encoder (diffusers), the PixArt-Sigma and FLUX.1-dev transformers
    (diffusers) and the T5 v1.1 XXL encoder (transformers' T5EncoderModel; its embedding, tied as `shared.weight` and
    `encoder.embed_tokens.weight`, is listed once, under the second name, which goca-bench's graph asks for when a
    checkpoint has neither: it accepts either)."""
    old = torch.nn.Module.register_parameter

    def reg(self, name, param):
        old(self, name, param)
        if param is not None:
            self._parameters[name] = torch.nn.Parameter(self._parameters[name].to("meta"), requires_grad=False)

    torch.nn.Module.register_parameter = reg
    try:
        models = {"sd15_unet": lambda: UNet2DConditionModel(**P.kwargs(P.SD15_UNET)),
                  "sdxl_unet": lambda: UNet2DConditionModel(**P.kwargs(P.SDXL_UNET)),
                  "vae_encoder": lambda: AutoencoderKL(**P.kwargs(P.SD15_VAE)),
                  "pixart_transformer": lambda: PixArtTransformer2DModel(**P.kwargs(P.PIXART_TRANSFORMER)),
                  "flux_transformer": lambda: FluxTransformer2DModel(**P.kwargs(P.FLUX_TRANSFORMER)),
                  "t5_xxl_encoder": lambda: T5EncoderModel(T5Config(**P.kwargs(P.T5_XXL)))}
        out = {}
        for name, make_model in models.items():
            m = make_model()
            items = {k: v for k, v in m.state_dict().items()
                     if (name != "vae_encoder" or k.startswith("encoder.") or k.startswith("quant_conv."))
                     and k != "shared.weight"}
            out[name] = graph_signature(items)
            print(name, out[name])
            del m
        dump_json(os.path.join(OUT, "full_size_keys.json"), out)
    finally:
        torch.nn.Module.register_parameter = old


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        OUT = sys.argv[2]
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    make_full_size_keys()
    make_pil()
    make("sd15")
    make("sdxl")
