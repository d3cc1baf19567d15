#!/usr/bin/env python3
"""Goldens for harness/metrics (FID): pytorch-fid 0.3.0's own FID Inception-v3 and Fréchet distance,
Pillow's decoding and resize, torchvision's ToTensor and numpy's .npz files.

T2IBenchmark (github boomb0om/text2image-benchmark, not on PyPI) computes FID as
    Image.open(p).convert('RGB') -> numpy -> centre square crop ((H - S) // 2, (W - S) // 2)
    -> Image.fromarray(x).resize((299, 299), BICUBIC) -> uint8 -> ToTensor() -> 2x - 1
    -> pytorch-fid's InceptionV3 blocks (no resize, no normalisation) -> pool3 -> np.mean / np.cov
    -> frechet_distance (pytorch-fid's calculate_frechet_distance, with scipy.linalg.sqrtm).
That chain is restated below with the real libraries (PIL, torchvision, pytorch_fid, scipy).

The network has deterministic pseudo-random weights that the C++ test regenerates bit-identically
(tests/metrics/metric_test_weights.h), since the real weights are 95 MB: for each state-dict key, with
seed = FNV-1a-64(key) and z_j = splitmix64 output for state seed + (j + 1)·0x9E3779B97F4A7C15,
u_j = (z_j >> 40) / 2^24 in [0, 1), then in float64 and cast to float32:
    conv weight [o, i, kh, kw]: (2u - 1)·sqrt(6 / (i·kh·kw))
    bn.weight: 1 + (2u - 1)/4;  bn.bias, bn.running_mean: (2u - 1)/8;  bn.running_var: 1 + u/2
    fc.*: (2u - 1)/100 (unused by the features)

Writes tests/metrics/data/: four small images (RGB, L, RGBA, palette PNG of odd sizes), goldens.safetensors
(preprocessed-pixel samples and checksums, pool3 features, statistics probes), stats_*.npz (numpy-written
statistics: savez and savez_compressed) and goldens.json (FID values from pytorch-fid).

    /work/main/.venv/bin/python tools/parity/metrics_goldens.py [--out tests/metrics/data]
"""
import argparse
import json
import math
import os
import warnings

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file

import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytorch_fid
import pytorch_fid.inception as pfi
from pytorch_fid.fid_score import calculate_frechet_distance

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001B3) & MASK
    return h


def uniform(key, n):
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(key)) + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def test_value(key, shape):
    n = int(np.prod(shape))
    u = uniform(key, n)
    if key.endswith("conv.weight"):
        v = (2 * u - 1) * math.sqrt(6.0 / (shape[1] * shape[2] * shape[3]))
    elif key.endswith("bn.weight"):
        v = 1 + (2 * u - 1) / 4
    elif key.endswith("bn.bias") or key.endswith("bn.running_mean"):
        v = (2 * u - 1) / 8
    elif key.endswith("bn.running_var"):
        v = 1 + u / 2
    elif key.startswith("fc."):
        v = (2 * u - 1) / 100
    else:
        raise KeyError(key)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def clip_value(key, shape):
    """The tiny CLIPModel's test weights (same uniform stream as the Inception's; C++: clip_test_value)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(key, n)
    norm = any(x in key for x in ("layer_norm1", "layer_norm2", "final_layer_norm", "pre_layrnorm", "post_layernorm"))
    if norm and key.endswith(".weight"):
        v = 1 + (2 * u - 1) / 4
    elif key.endswith(".bias") or norm:
        v = (2 * u - 1) / 8
    elif key.endswith("patch_embedding.weight"):
        v = (2 * u - 1) * math.sqrt(3.0 / (shape[1] * shape[2] * shape[3]))
    elif key.endswith("embedding.weight") or key.endswith("class_embedding"):
        v = (2 * u - 1) / 2
    elif key.endswith(".weight") and len(shape) == 2:
        v = (2 * u - 1) * math.sqrt(3.0 / shape[1])
    else:
        raise KeyError(key)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def fid_model():
    """pytorch-fid's InceptionV3 (block 3, pool3) over fid_inception_v3() with the test weights, as
    T2IBenchmark's copy runs it: no input resize, no normalisation (the preprocessing already gives [-1, 1])."""
    orig_load = pfi.load_state_dict_from_url

    def fake_load(url, progress=True):
        return fake_load.sd

    # Build the structure once to learn the keys, then hand fid_inception_v3 the generated state dict.
    torch.nn.Module.load_state_dict_orig = torch.nn.Module.load_state_dict
    torch.nn.Module.load_state_dict = lambda self, sd, strict=True: None
    try:
        pfi.load_state_dict_from_url = lambda url, progress=True: None
        skeleton = pfi.fid_inception_v3()
    finally:
        torch.nn.Module.load_state_dict = torch.nn.Module.load_state_dict_orig
    sd = {}
    for k, t in skeleton.state_dict().items():
        sd[k] = torch.zeros_like(t) if k.endswith("num_batches_tracked") else test_value(k, list(t.shape))
    fake_load.sd = sd
    pfi.load_state_dict_from_url = fake_load
    try:
        model = pfi.InceptionV3([3], resize_input=False, normalize_input=False, use_fid_inception=True)
    finally:
        pfi.load_state_dict_from_url = orig_load
    return model.eval(), sd


def make_images(out):
    rng = np.random.default_rng(15)

    def smooth(h, w, c, phase, noise=12):
        i = np.arange(h)[:, None, None]
        j = np.arange(w)[None, :, None]
        k = np.arange(c)[None, None, :]
        x = 127 + 90 * np.sin(i / 7.0 + k + phase) * np.cos(j / 11.0 - k * 0.5) + rng.integers(-noise, noise + 1, (h, w, c))
        return np.clip(x, 0, 255).astype(np.uint8)

    specs = []
    Image.fromarray(smooth(53, 37, 3, 0.0), "RGB").save(os.path.join(out, "img_rgb_37x53.png"))
    specs.append(("img_rgb_37x53.png", "RGB"))
    Image.fromarray(smooth(41, 64, 1, 1.0)[:, :, 0], "L").save(os.path.join(out, "img_gray_64x41.png"))
    specs.append(("img_gray_64x41.png", "L"))
    Image.fromarray(smooth(347, 311, 4, 2.0, noise=2), "RGBA").save(os.path.join(out, "img_rgba_311x347.png"))
    specs.append(("img_rgba_311x347.png", "RGBA"))
    Image.fromarray(smooth(90, 121, 3, 3.0), "RGB").quantize(16).save(os.path.join(out, "img_palette_121x90.png"))
    specs.append(("img_palette_121x90.png", "P"))
    for name, mode in specs:
        assert Image.open(os.path.join(out, name)).mode == mode, name
    return [s[0] for s in specs]


def t2i_preprocess(path):
    image = Image.open(path).convert("RGB")
    a = np.array(image)
    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    resized = np.asarray(Image.fromarray(a).resize((299, 299), resample=Image.BICUBIC)).clip(0, 255).astype(np.uint8)
    x = torchvision.transforms.ToTensor()(resized)
    return resized, 2 * x - 1


def checksums(u8):
    v = u8.astype(np.int64).reshape(-1)
    idx = np.arange(v.size, dtype=np.int64)
    return np.array([v.sum(), (v * (idx % 251 + 1)).sum()], dtype=np.int64)


def frechet(mu1, s1, mu2, s2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(calculate_frechet_distance(mu1, s1, mu2, s2))


def stats(features):
    f = np.asarray(features, dtype=np.float64)
    return np.mean(f, axis=0), np.cov(f, rowvar=False)


CLIP_PROMPTS = [
    "A photo of a cat sitting on a red sofa.",
    "  two   dogs,\nplaying in the SNOW!  ",
    "a " + "very " * 90 + "long caption that loses its end token",  # > 77 tokens: torchmetrics cuts it
    "Ein Café in Zürich — 3 tables",
]


def clip_goldens(out, image_names):
    """A tiny random CLIPModel folder scored by torchmetrics' CLIPScore (transformers model + CLIPProcessor)."""
    import gzip
    import shutil
    import tempfile

    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast

    cfg = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        projection_dim=16)
    model = CLIPModel(cfg).eval()
    sd = model.state_dict()
    keys = []
    for k, t in sd.items():
        if k.endswith("position_ids") or k == "logit_scale":
            continue
        sd[k] = clip_value(k, list(t.shape))
        keys.append([k, list(t.shape)])
    model.load_state_dict(sd)

    tmp = tempfile.mkdtemp()
    merges_gz = "/work/shared/data/clip/bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(merges_gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    from clip_bpe import byte_table
    vocab = list(byte_table().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(tmp, "vocab.json"), "w") as f:
        json.dump({v: i for i, v in enumerate(vocab)}, f)
    with open(os.path.join(tmp, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    tokenizer = CLIPTokenizerFast(vocab_file=os.path.join(tmp, "vocab.json"),
                                  merges_file=os.path.join(tmp, "merges.txt"))
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)

    clip_dir = os.path.join(out, "clip_tiny")
    os.makedirs(clip_dir, exist_ok=True)
    cfg.to_json_file(os.path.join(clip_dir, "config.json"))
    image_processor.to_json_file(os.path.join(clip_dir, "preprocessor_config.json"))
    with open(os.path.join(clip_dir, "keys.json"), "w") as f:
        json.dump(keys, f)
        f.write("\n")

    images = [torch.from_numpy(np.array(Image.open(os.path.join(out, n)).convert("RGB"))).permute(2, 0, 1)
              for n in image_names]
    with open(os.path.join(out, "clip_prompts.csv"), "w", newline="") as f:
        import csv
        w = csv.writer(f)
        w.writerow(["image_id", "caption"])
        for n, p in zip(image_names, CLIP_PROMPTS):
            w.writerow([os.path.splitext(n)[0], p])
    metric = CLIPScore(model_name_or_path=lambda: (model, processor))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchmetrics.functional.multimodal.clip_score import _clip_score_update
        raw, _ = _clip_score_update(images, CLIP_PROMPTS, model, processor)  # 100·cos per pair, unclamped
        per = [float(x) for x in raw]
        metric.update(images, CLIP_PROMPTS)
        score = float(metric.compute())
    pixel = processor(images=[images[2]], return_tensors="pt")["pixel_values"][0]
    ids = [processor(text=[p], return_tensors="pt", padding=True)["input_ids"][0][:77].tolist() for p in CLIP_PROMPTS]
    shutil.rmtree(tmp)
    return {"score": score, "per_image": per, "token_ids": ids,
            "pixels_rgba_sum": float(pixel.double().sum()), "pixels_rgba_row0": pixel[:, 0, :].flatten().tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "metrics", "data"))
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)

    names = make_images(out)
    tensors = {}
    batch = []
    for n in names:
        u8, x = t2i_preprocess(os.path.join(out, n))
        stem = os.path.splitext(n)[0]
        tensors[f"pre.{stem}.samples"] = torch.from_numpy(np.ascontiguousarray(u8[::7, ::7]))
        tensors[f"pre.{stem}.checksums"] = torch.from_numpy(checksums(u8))
        batch.append(x)
    model, _ = fid_model()
    with torch.no_grad():
        feats = model(torch.stack(batch))[0].squeeze(-1).squeeze(-1)
    tensors["features"] = feats.contiguous()
    j = {"images": names, "pytorch_fid": pytorch_fid.__version__, "torch": torch.__version__,
         "feature_mean": float(feats.mean()), "feature_std": float(feats.std())}

    # Statistics as pytorch-fid computes them (float64 features), probes of sigma.
    mu, sigma = stats(feats.numpy())
    tensors["features_mu"] = torch.from_numpy(mu)
    tensors["features_sigma_diag"] = torch.from_numpy(np.ascontiguousarray(np.diagonal(sigma)))
    tensors["features_sigma_row7"] = torch.from_numpy(np.ascontiguousarray(sigma[7]))
    # FID between the first two and the last two images' features (2 images each: very singular).
    m1, s1 = stats(feats.numpy()[:2])
    m2, s2 = stats(feats.numpy()[2:])
    j["fid_features_2v2"] = frechet(m1, s1, m2, s2)

    # Small-dimensional statistics written by numpy: a full-rank pair and a singular one (N < D).
    rng = np.random.default_rng(150)
    d = 64
    fa = np.maximum(rng.standard_normal((400, d)), 0) + 0.1 * rng.standard_normal((400, d))
    fb = np.maximum(1.2 * rng.standard_normal((300, d)) + 0.3, 0)
    fc = np.maximum(rng.standard_normal((10, d)), 0)
    ma, sa = stats(fa)
    mb, sb = stats(fb)
    mc, sc = stats(fc)
    np.savez(os.path.join(out, "stats_a.npz"), mu=ma, sigma=sa)
    np.savez_compressed(os.path.join(out, "stats_b.npz"), mu=mb.astype(np.float32), sigma=sb.astype(np.float32))
    np.savez(os.path.join(out, "stats_singular.npz"), mu=mc, sigma=sc, extra=np.arange(3))
    np.savez(os.path.join(out, "stats_no_sigma.npz"), mu=ma)
    np.savez(os.path.join(out, "stats_bad_shape.npz"), mu=ma, sigma=sa[:, :10])
    sb32 = sb.astype(np.float32).astype(np.float64)
    mb32 = mb.astype(np.float32).astype(np.float64)
    j["fid_a_b"] = frechet(ma, sa, mb32, sb32)
    j["fid_a_singular"] = frechet(ma, sa, mc, sc)
    j["fid_singular_singular_shifted"] = frechet(mc, sc, mc + 0.5, sc * 1.5)
    j["fid_a_a"] = frechet(ma, sa, ma, sa)
    # npz layouts numpy reads: big-endian, Fortran order, 0-d and int arrays.
    np.savez(os.path.join(out, "layouts.npz"), be=np.arange(6, dtype=">f8").reshape(2, 3),
             fortran=np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
             scalar=np.float64(2.5), ints=np.array([-1, 7], dtype=np.int16), flags=np.array([True, False]))

    j["clip"] = clip_goldens(out, names)

    save_file(tensors, os.path.join(out, "goldens.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump(j, f, indent=1)
        f.write("\n")
    print(json.dumps(j, indent=1))


if __name__ == "__main__":
    main()
