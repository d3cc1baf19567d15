#!/usr/bin/env python3
"""The paper's own pipeline (Darkbblue/goca src-main on Darkbblue/generic-diffusion-feature), as published, with
the few shims listed in SHIMS. Used by tools/sidebyside/run.py, which calls:

  prepare(paper_src, gdf_src, env)   once: a private, prepared copy of both checkouts under `env` (the user's
                                     checkouts and the project's venv are never modified), see prepare();
  python3 paper_side.py caption ...  the paper's captioner.py, verbatim, in that copy;
  python3 paper_side.py main ...     the paper's main.py, verbatim, in that copy, one method config per process,
                                     recording per image the post-processed maps, the predicted classes per
                                     background threshold, the noisy latents and the time.

Only the standard library is imported at module level: run.py imports this file for prepare() and SHIMS.
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The paper's model configs (src-main/configs/config-model/) per goca-bench backbone and method name.
MODEL_CONFIGS = {
    "sd15": {"vanilla": "config_model_15_vanilla.py", "baseline": "config_model_15_baseline.py",
             "goca": "config_model_15.py"},
}
# main.py's output folder per config (downstream_setting['save_path_root'] + '_' + dataset name), relative to src-main
SAVE_ROOTS = {"config_model_15_vanilla.py": "../run_output/15-vanilla", "config_model_15_baseline.py":
              "../run_output/15-baseline", "config_model_15.py": "../run_output/15"}
DATASET_CONFIGS = {"voc": "config_dataset_voc.py"}

# Every change made to the paper's code or its inputs, in the order they are applied. Text edits are applied to the
# private copy (each must match exactly once); runtime shims are installed by this script before the paper's
# script runs. The report lists them.
SHIMS = [
    ("text", "feature/components/feature_extractor.py (goca install/components)",
     "FeatureStore.store casts every captured tensor to float16 (`feat.to(torch.float16)`); it casts to the run's "
     "store dtype instead (float16 in the paper's dtypes, float32 for an fp32 run)"),
    ("text", "src-main/components/cross_attn_dispatch.py",
     "goca_cross_run's average head weights are created with `.to('cuda')`; `.to(v.device)` instead (the same "
     "tensor on CUDA, runnable on the CPU)"),
    ("runtime", "diffusion_feature.FeatureExtractor",
     "built with device=--device and external_model=the --weights folder loaded at --dtype (the paper downloads "
     "stable-diffusion-v1-5 from the Hub in float16 and hard-codes device='cuda' in main.py and captioner.py)"),
    ("runtime", "diffusers randn_tensor (StableDiffusionImg2ImgPipeline.prepare_latents, DiagonalGaussianDistribution"
     ".sample)",
     "the paper draws the VAE posterior noise and the diffusion noise from the unseeded global RNG; they are drawn "
     "instead as goca-bench draws them: a CPU torch.Generator seeded with noise_seed(seed, image id) "
     "(tools/parity/parity_full.py), fp32, VAE noise first, then cast to the pipeline's device and dtype"),
    ("runtime", "cv2, controlnet_aux, pandas",
     "imported by generic-diffusion-feature (ControlNet helpers, an unused `import pandas`) but never used by "
     "GoCA; empty stand-in modules are registered only when the real package is not installed"),
]

TEXT_EDITS = [
    ("feature/components/feature_extractor.py", "import torch\n",
     "import torch\n_GB_STORE_DTYPE = getattr(torch, __import__('os').environ.get('GB_SBS_STORE_DTYPE', 'float16'))\n"),
    ("feature/components/feature_extractor.py", "feat = feat.to(torch.float16)", "feat = feat.to(_GB_STORE_DTYPE)"),
    ("src-main/components/cross_attn_dispatch.py", ").to('cuda')", ").to(v.device)"),
]


def _copytree(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def check_sources(paper_src, gdf_src):
    """One line naming what is missing, or None."""
    need = [(paper_src, "src-main/main.py"), (paper_src, "src-main/captioner.py"),
            (paper_src, "install/components/attention.py"), (paper_src, "install/components/feature_extractor.py"),
            (gdf_src, "feature/diffusion_feature.py"), (gdf_src, "feature/components/models.py"),
            (gdf_src, "feature/diffusers/models/attention_processor.py")]
    for root, rel in need:
        if not os.path.isfile(os.path.join(root, rel)):
            return f"{os.path.join(root, rel)}: missing (expected a checkout of " + \
                ("Darkbblue/goca" if root == paper_src else "Darkbblue/generic-diffusion-feature") + ")"
    return None


def prepare(paper_src, gdf_src, env):
    """The paper's README install, into `env` instead of site-packages:
      env/site/diffusers   the installed diffusers (0.32.2) with generic-diffusion-feature's feature/diffusers tree
                           copied over it (GDF README step 2: 'overwrite some Diffusers files');
      env/feature          generic-diffusion-feature's feature/ (its package, GDF step 3) with the paper's
                           install/components copied over it (goca README install step 2);
      env/src-main         the paper's src-main;
    then the TEXT_EDITS. Returns a list of notes (files the overlay adds that diffusers never imports)."""
    import importlib.util
    shutil.rmtree(env, ignore_errors=True)
    spec = importlib.util.find_spec("diffusers")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("diffusers is not installed in this Python (the paper's stack needs diffusers 0.32.2)")
    site_diffusers = list(spec.submodule_search_locations)[0]
    _copytree(site_diffusers, os.path.join(env, "site", "diffusers"))
    notes = []
    overlay = os.path.join(gdf_src, "feature", "diffusers")
    for dirpath, _, files in os.walk(overlay):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), overlay)
            if not os.path.exists(os.path.join(site_diffusers, rel)) and f.endswith(".py"):
                notes.append(f"generic-diffusion-feature's feature/diffusers/{rel} has no counterpart in the installed "
                             f"diffusers (copied, never imported)")
    _copytree(overlay, os.path.join(env, "site", "diffusers"))
    _copytree(os.path.join(gdf_src, "feature"), os.path.join(env, "feature"))
    shutil.rmtree(os.path.join(env, "feature", "diffusers"), ignore_errors=True)  # the overlay lives in site/
    _copytree(os.path.join(paper_src, "install", "components"), os.path.join(env, "feature", "components"))
    _copytree(os.path.join(paper_src, "src-main"), os.path.join(env, "src-main"))
    for rel, old, new in TEXT_EDITS:
        path = os.path.join(env, rel)
        text = open(path, encoding="utf-8").read()
        if text.count(old) != 1:
            raise SystemExit(f"{path}: expected exactly one {old!r} to shim, found {text.count(old)} "
                             "(another revision of the paper's code?)")
        open(path, "w", encoding="utf-8").write(text.replace(old, new, 1))
    return notes


def write_dataset_config(env, dataset, root, captions, limit):
    """configs/current_dataset.py = the paper's dataset config with its path, caption file and limit set (the
    README: 'copy the file content into src-main/configs/current_dataset.py')."""
    src = os.path.join(env, "src-main", "configs", "config-dataset", DATASET_CONFIGS[dataset])
    text = open(src, encoding="utf-8").read()
    for old, new in (("'path/to/datasets/VOCdevkit/VOC2012'", repr(os.path.abspath(root))),
                     ("'./gpt_output/voc.json'", repr(os.path.abspath(captions))),
                     ("self.limit=3000", f"self.limit={int(limit)}")):
        if text.count(old) != 1:
            raise SystemExit(f"{src}: expected exactly one {old!r}")
        text = text.replace(old, new)
    open(os.path.join(env, "src-main", "configs", "current_dataset.py"), "w", encoding="utf-8").write(text)


def write_model_config(env, backbone, method):
    name = MODEL_CONFIGS[backbone][method]
    shutil.copyfile(os.path.join(env, "src-main", "configs", "config-model", name),
                    os.path.join(env, "src-main", "configs", "current_model.py"))
    return os.path.normpath(os.path.join(env, "src-main", SAVE_ROOTS[name]))


# ---------------------------------------------------------------------------------------------------------------
# Inside the paper's process
# ---------------------------------------------------------------------------------------------------------------
def _enter_env(env):
    sys.path[:0] = [os.path.join(env, "site"), os.path.join(env, "feature"), os.path.join(env, "src-main")]
    import importlib.machinery
    import types
    for name in ("cv2", "controlnet_aux", "pandas"):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
            if name == "controlnet_aux":
                mod.MidasDetector = None
            sys.modules[name] = mod
    os.chdir(os.path.join(env, "src-main"))


def _load_pipe(weights, device, dtype):
    """StableDiffusionImg2ImgPipeline (what GDF's get_diffusion_model('1-5') builds) from a diffusers-layout folder,
    component by component (a random-weight folder has no full model_index.json)."""
    import torch
    import diffusers
    from diffusers import AutoencoderKL, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    dt = getattr(torch, dtype)
    sched_cfg = json.load(open(os.path.join(weights, "scheduler", "scheduler_config.json")))
    scheduler = getattr(diffusers, sched_cfg["_class_name"]).from_pretrained(weights, subfolder="scheduler")
    pipe = StableDiffusionImg2ImgPipeline(
        vae=AutoencoderKL.from_pretrained(weights, subfolder="vae", torch_dtype=dt, use_safetensors=True),
        text_encoder=CLIPTextModel.from_pretrained(weights, subfolder="text_encoder", torch_dtype=dt,
                                                   use_safetensors=True),
        tokenizer=CLIPTokenizer.from_pretrained(weights, subfolder="tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(weights, subfolder="unet", torch_dtype=dt, use_safetensors=True),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return pipe.to(device)


class _Noise:
    """goca-bench's per-image noise, handed to diffusers' randn_tensor calls in draw order."""

    def __init__(self, seed):
        import parity_full  # tools/parity: goca-bench's noise_seed, re-stated and checked by make parity-full
        self.noise_seed = parity_full.noise_seed
        self.seed = seed
        self.gen = None
        self.draws = 0

    def start(self, image_id):
        import torch
        self.gen = torch.Generator().manual_seed(self.noise_seed(self.seed, image_id))
        self.draws = 0

    def randn_tensor(self, shape, generator=None, device=None, dtype=None, layout=None):
        import torch
        if self.gen is None:
            raise RuntimeError("noise drawn outside an image's extract()")
        self.draws += 1
        return torch.randn(tuple(shape), generator=self.gen, dtype=torch.float32).to(device=device, dtype=dtype)


def _install_runtime_shims(args, rec):
    import torch
    sys.path.insert(1, os.path.join(REPO, "tools", "parity"))
    import diffusion_feature
    import diffusers.models.autoencoders.vae as vae_mod
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img as img2img

    noise = _Noise(args.seed)
    vae_mod.randn_tensor = noise.randn_tensor
    img2img.randn_tensor = noise.randn_tensor
    Original = diffusion_feature.FeatureExtractor
    init = Original.__init__

    def __init__(self, *a, **kw):
        kw["device"] = args.device
        pipe = _load_pipe(args.weights, args.device, args.dtype)
        prepare_latents = pipe.prepare_latents

        def recorded(*pa, **pk):
            lat = prepare_latents(*pa, **pk)
            rec.latents = lat.detach().float().cpu()
            return lat
        pipe.prepare_latents = recorded
        kw["external_model"] = pipe
        init(self, *a, **kw)
    Original.__init__ = __init__

    extract = Original.extract

    def timed_extract(self, prompts, batch_size, image, *a, **kw):
        name = getattr(image[0], "filename", None)
        if not name:
            raise RuntimeError("extract() got an image without a file name (the noise is keyed by the image id)")
        base = os.path.basename(name)
        noise.start(base if args.noise_id == "basename" else os.path.splitext(base)[0])
        sync(args.device)
        t0 = time.perf_counter()
        out = extract(self, prompts, batch_size, image, *a, **kw)
        sync(args.device)
        rec.extract_s += time.perf_counter() - t0
        if noise.draws != 2:
            raise RuntimeError(f"expected 2 noise draws per image (VAE posterior, diffusion), got {noise.draws}")
        return out
    Original.extract = timed_extract
    return torch


def propagated_spread(cross_feat, space_feat, order):
    """The smallest relative spread (max - min) / max |x| over the non-zero maps after `order` propagation steps and
    before the paper's final MinMax: how much that MinMax amplifies (1e-5 turns a 1e-7 relative difference between
    the sides into 1e-2 of the output range)."""
    import torch
    m = cross_feat.detach().double()
    m = m[[k for k in range(m.shape[0]) if not (m[k].amin() == 0 and m[k].amax() == 0)]]
    n = space_feat.shape[0]
    a = space_feat.detach().double().reshape(n * n, n * n)
    x = m.reshape(m.shape[0], n * n).T
    for _ in range(order):
        x = a @ x
    spread = (x.amax(0) - x.amin(0)) / x.abs().amax(0)
    return float(torch.nan_to_num(spread, nan=float("inf")).min()) if spread.numel() else None


def sync(device):
    if str(device).startswith("cuda"):
        import torch
        torch.cuda.synchronize()


class _Recorder:
    def __init__(self):
        self.images = []
        self.latents = None
        self.extract_s = 0.0
        self.t0 = None
        self.bg = (None, [])
        self.maps, self.classes, self.labels, self.lat, self.pre_maps = {}, {}, {}, {}, {}
        self.pre, self.spread, self.c0 = None, None, 0.0
        self.overhead_wall = self.overhead_cpu = 0.0


def cmd_caption(args):
    _enter_env(args.env)
    _install_runtime_shims(args, _Recorder())
    import runpy
    sys.argv = ["captioner.py"]
    runpy.run_path(os.path.join(args.env, "src-main", "captioner.py"), run_name="__main__")


def cmd_main(args):
    _enter_env(args.env)
    rec = _Recorder()
    torch = _install_runtime_shims(args, rec)
    sys.path.insert(1, HERE)
    import report as R
    import components.cross_attn_dispatch as cad
    import components.downstream_dispatch as dd
    import components.postprocess_dispatch as pd

    postprocess = pd.postprocess

    def recorded_postprocess(task, data):
        if rec.pre is None:  # the first post-processing step's input: the maps before affinity propagation
            w0, c0 = time.perf_counter(), time.process_time()
            rec.pre = data["cross_feat"].detach().float().cpu().numpy()
            if task == "affinity":
                rec.spread = propagated_spread(data["cross_feat"], data["space_feat"], data["order"])
            rec.overhead_wall += time.perf_counter() - w0  # not the paper's time
            rec.overhead_cpu += time.process_time() - c0
        return postprocess(task, data)
    pd.postprocess = recorded_postprocess

    cross_attn = cad.cross_attn

    def timed_cross_attn(task, data):
        sync(args.device)
        rec.t0 = time.perf_counter()
        rec.c0 = time.process_time()
        rec.extract_s = 0.0
        rec.pre, rec.spread = None, None
        rec.overhead_wall = rec.overhead_cpu = 0.0
        rec.image = os.path.basename(data["img"].filename)
        return cross_attn(task, data)
    cad.cross_attn = timed_cross_attn

    downstream = dd.downstream

    def recorded_downstream(task, data, final_call=False):
        if final_call:
            return downstream(task, data, final_call)
        sync(args.device)
        t_pre = time.perf_counter() - rec.t0 - rec.overhead_wall
        t1 = time.perf_counter()
        out = downstream(task, data, final_call)
        sync(args.device)
        t_eval = time.perf_counter() - t1
        cpu = time.process_time() - rec.c0 - rec.overhead_cpu
        pred, label = data["pred"], data["label"]
        i = len(rec.images)
        rec.bg = (data["method"], [float(t) for t in data["background_threshold"]])
        classes = R.predicted_classes(pred, label.shape, data["present_objects"], data["class_count"],
                                      data["method"], data["background_threshold"])
        key = f"{i:05d}"
        rec.maps[key] = pred.detach().float().cpu().numpy()
        rec.classes[key] = classes
        rec.labels[key] = label
        rec.lat[key] = rec.latents.numpy()
        if rec.pre is not None:
            rec.pre_maps[key] = rec.pre
        rec.images.append({"index": i, "image": rec.image, "present_objects": list(data["present_objects"]),
                           "seconds": t_pre + t_eval, "extract_seconds": rec.extract_s,
                           "post_seconds": t_pre - rec.extract_s + t_eval, "cpu_seconds": cpu,
                           "propagated_spread": rec.spread})
        return out
    dd.downstream = recorded_downstream

    import runpy
    sys.argv = ["main.py"]
    t0 = time.perf_counter()
    runpy.run_path(os.path.join(args.env, "src-main", "main.py"), run_name="__main__")
    total = time.perf_counter() - t0
    import resource
    import numpy as np
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak_dev = torch.cuda.max_memory_allocated() if str(args.device).startswith("cuda") else 0
    os.makedirs(os.path.dirname(os.path.abspath(args.record)), exist_ok=True)
    np.savez_compressed(args.record + ".npz", **{f"maps/{k}": v for k, v in rec.maps.items()},
                        **{f"classes/{k}": v for k, v in rec.classes.items()},
                        **{f"labels/{k}": v for k, v in rec.labels.items()},
                        **{f"latents/{k}": v for k, v in rec.lat.items()},
                        **{f"pre/{k}": v for k, v in rec.pre_maps.items()})
    with open(args.record + ".json", "w") as f:
        json.dump({"images": rec.images, "process_seconds": total, "process_cpu_seconds": time.process_time(),
               "loadavg_end": os.getloadavg(), "peak_host_bytes": peak,
                   "peak_device_bytes": peak_dev, "device": args.device, "dtype": args.dtype,
                   "threads": torch.get_num_threads(), "bg_method": rec.bg[0], "thresholds": rec.bg[1]}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["caption", "main"])
    ap.add_argument("--env", required=True, help="the prepared copy (prepare())")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--store-dtype", help="dtype of the captured tensors (default: --dtype; the paper: float16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--noise-id", choices=["basename", "stem"], default="stem",
                    help="the image id the noise is seeded with: `goca-bench run` uses the dataset id (VOC: the file "
                         "name with .jpg), `goca-bench capture` the file stem")
    ap.add_argument("--record", help="main: output prefix (.json, .npz)")
    args = ap.parse_args()
    args.env = os.path.abspath(args.env)
    args.weights = os.path.abspath(args.weights)
    if args.record:
        args.record = os.path.abspath(args.record)
    os.environ["GB_SBS_STORE_DTYPE"] = args.store_dtype or args.dtype
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    (cmd_caption if args.mode == "caption" else cmd_main)(args)


if __name__ == "__main__":
    main()
