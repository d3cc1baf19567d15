#!/usr/bin/env python3
"""Side by side: the paper's own pipeline (Darkbblue/goca on Darkbblue/generic-diffusion-feature) and goca-bench on
the same images, prompts, token groups, noisy latents, timestep and dtype; one report (Markdown + JSON) with mIoU on
both sides, the fraction of pixels whose predicted class agrees, and per-image time and memory of a Table-1 row.

    python3 tools/sidebyside/run.py --paper-src P --gdf-src G --backbone sd15 --weights W --dataset voc \\
        --root R --captions C --limit N --methods vanilla,baseline,goca --device cpu --out DIR \\
        [--goca-bench build/bin/goca-bench] [--dtype fp32|fp16] [--make-weights] [--make-dataset K]

P and G are plain checkouts (never modified: the paper's README install is done into DIR/paper-env, see
paper_side.prepare()). W is a diffusers-layout folder; --make-weights first builds SD1.5 there at its published
config.json sizes with random weights (tools/parity/parity_full.build_sd15). --make-dataset K first writes K synthetic
VOC-layout images and their captions with goca-bench (the synthetic world of docs/runner.md) to R and C.

What runs, in order (docs/sidebyside.md):
  1. the paper's captioner.py (prompt annotation: captions, token groups) once;
  2. the paper's main.py once per method (the paper runs one forward pass per method), recording per image the
     post-processed maps, the classes per threshold, the noisy latents and the time;
  3. `goca-bench run` of all methods in one experiment (one forward pass per image): mIoU, time, memory;
  4. `goca-bench capture` (the paper's caption) + `segment` per method (the paper's token groups) per image: the
     maps whose classes are compared pixel by pixel, and the latents compared with the paper's;
  5. DIR/report.json and DIR/report.md.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import paper_side  # noqa: E402

METHOD_NAMES = {"vanilla": "Vanilla", "baseline": "Baseline", "goca": "GoCA"}
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def sh(cmd, log=None, env=None, cwd=None):
    print("$", " ".join(cmd), flush=True)
    if log:
        with open(log, "w") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    else:
        r = subprocess.run(cmd, env=env, cwd=cwd)
    if r.returncode != 0:
        tail = open(log).read()[-3000:] if log else ""
        raise SystemExit(f"failed (exit {r.returncode}): {' '.join(cmd)}\n{tail}")


def make_weights(weights, attention_scale=1.0):
    """SD1.5 at its published sizes with diffusers' / transformers' default random init (parity_full.build_sd15).
    With attention_scale s != 1 every UNet attention's to_q and to_k weights are multiplied by s (logits by s²): the
    default init gives nearly uniform attention, whose affinity propagation flattens every map (docs/sidebyside.md)."""
    sys.path.insert(0, os.path.join(REPO, "tools", "parity"))
    import parity_full
    import torch
    with torch.no_grad():
        unet, _, _ = parity_full.build_sd15(weights)
        if attention_scale != 1.0:
            from diffusers.models.attention_processor import Attention
            for mod in unet.modules():
                if isinstance(mod, Attention):
                    mod.to_q.weight.mul_(attention_scale)
                    mod.to_k.weight.mul_(attention_scale)
            parity_full.save_diffusers(unet, os.path.join(weights, "unet"))


def make_dataset(args, count):
    """goca-bench's synthetic VOC-layout world (docs/runner.md), written by a one-image synthetic run."""
    work = os.path.join(args.out, "make-dataset")
    os.makedirs(work, exist_ok=True)
    exp = {"name": "sidebyside-data", "output_root": work, "seed": args.seed, "batch_size": 1, "workers": 1,
           "device": "cpu", "examples": 0,
           "datasets": [{"name": "synthetic-voc", "synthetic_images": count,
                         "set": {"dataset": "voc", "protocol": "paper", "root": args.root, "captions": args.captions,
                                 "limit": 1}}],
           "backbones": [{"name": "synthetic", "kind": "synthetic", "options": {
               "tokenizer": os.path.join(REPO, "configs", "synthetic", "clip-mini-merges.txt.gz")}}],
           "methods": [{"name": "Vanilla", "type": "Training-free",
                        "method": os.path.join(REPO, "configs", "methods", "sd15", "vanilla.yaml"),
                        "set": {"output_size": 32}}]}
    path = os.path.join(work, "make-dataset.yaml")
    json.dump(exp, open(path, "w"), indent=1)
    sh([args.goca_bench, "run", path, "--no-progress", "--out", os.path.join(work, "run")],
       log=os.path.join(work, "run.log"))
    if os.path.abspath(args.captions) != os.path.abspath(os.path.join(args.root, "captions.json")):
        shutil.copyfile(os.path.join(args.root, "captions.json"), args.captions)


def paper_cmd(args, mode, extra=()):
    cmd = [sys.executable, os.path.join(HERE, "paper_side.py"), mode, "--env", args.env, "--weights", args.weights,
           "--device", args.device, "--dtype", DTYPES[args.dtype], "--seed", str(args.seed)]
    if args.store_dtype:
        cmd += ["--store-dtype", DTYPES[args.store_dtype]]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd + ["--noise-id", args.noise_id] + list(extra)


def goca_bench_experiment(args):
    ds_cfg = os.path.join(REPO, "configs", "datasets", f"{args.dataset}.yaml")
    exp = {"name": "sidebyside", "output_root": os.path.join(args.out, "goca-bench"), "seed": args.seed,
           "batch_size": 1, "workers": 2, "device": args.device, "examples": 0, "evaluation": {"select": "best"},
           "datasets": [{"name": args.dataset.upper(), "config": ds_cfg,
                         "set": {"root": os.path.abspath(args.root), "captions": os.path.abspath(args.captions),
                                 "limit": args.limit}}],
           "backbones": [{"name": args.backbone, "kind": args.backbone, "weights": args.weights, "dtype": args.dtype}],
           "methods": [{"name": METHOD_NAMES[m], "type": "Training-free",
                        "method": os.path.join(REPO, "configs", "methods", args.backbone, f"{m}.yaml")}
                       for m in args.methods]}
    if args.store_dtype:
        exp["backbones"][0]["options"] = {"store_dtype": args.store_dtype}
    path = os.path.join(args.out, "goca-bench", "experiment.yaml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump(exp, open(path, "w"), indent=1)  # JSON is YAML
    return path


def load_annotation(args):
    path = os.path.join(args.env, "src-main", "prompt_annotation", f"{args.dataset}-15.json")
    return path, json.load(open(path))


def run_goca_bench_segments(args, annotation, images):
    """capture + segment per image; returns {image: {"latents": ndarray, method: scores ndarray}}."""
    import numpy as np
    from safetensors.numpy import load_file
    work = os.path.join(args.out, "goca-bench", "segments")
    os.makedirs(work, exist_ok=True)
    capture_method = os.path.join(REPO, "configs", "methods", args.backbone, "goca.yaml")
    img_dir = os.path.join(os.path.abspath(args.root), "JPEGImages")
    out = {}
    for name in images:
        stem = os.path.splitext(name)[0]
        ann = annotation[stem] if stem in annotation else annotation[name]
        cap = os.path.join(work, f"{stem}.capture.safetensors")
        image = os.path.join(img_dir, name)
        # `capture` and `run` seed the noise with the image id, the file name (goca-bench's one rule); `stem`
        # seeds capture and the paper's side with the stem instead.
        cmd = [args.goca_bench, "capture", "--weights", args.weights, "--image", image,
               "--prompt", ann["caption"], "--method", capture_method, "--dtype", args.dtype, "--device", args.device,
               "--seed", str(args.seed), "--image-id", name if args.noise_id == "basename" else stem, "--out", cap]
        if args.store_dtype:
            cmd += ["--store-dtype", args.store_dtype]
        sh(cmd, log=os.path.join(work, f"{stem}.capture.log"))
        tokens = {"objects": [{"class": int(c), "tokens": t} for c, t in ann["existent_objects"].items()],
                  "background_objects": ann["background_objects"],
                  "rescaling_token_ids": ann["rescaling_token_id"]}
        tok = os.path.join(work, f"{stem}.tokens.json")
        json.dump(tokens, open(tok, "w"))
        from safetensors import safe_open
        with safe_open(cap, "np") as f:
            rec = {"latents": f.get_tensor("input.latents").astype(np.float32)}
        for m in args.methods:
            seg = os.path.join(work, f"{stem}.{m}.safetensors")
            sh([args.goca_bench, "segment", "--capture", cap, "--tokens", tok, "--method",
                os.path.join(REPO, "configs", "methods", args.backbone, f"{m}.yaml"), "--out", seg],
               log=os.path.join(work, f"{stem}.{m}.log"))
            seg_out = load_file(seg)
            rec[m] = seg_out["scores"]
            rec["pre_" + m] = seg_out["pre_propagation"]
            os.remove(seg)
        if not args.keep:
            os.remove(cap)
        out[name] = rec
    return out


def build_report(args, annotation_path, annotation, paper, gb_run, gb_seg, commands, notes):
    import numpy as np
    import torch
    import report as R
    results = json.load(open(os.path.join(gb_run, "results.json")))
    class_count = results["datasets"][0]["num_classes"]
    journal = [json.loads(line)["r"] for line in open(
        os.path.join(gb_run, "journal", os.listdir(os.path.join(gb_run, "journal"))[0])).read().splitlines()[1:]
        if line.strip()]
    cells = [c for c in results["cells"] if not c.get("group")]
    rep = {"config": {"backbone": args.backbone, "dataset": args.dataset, "root": os.path.abspath(args.root),
                      "captions": os.path.abspath(args.captions), "weights": args.weights, "device": args.device,
                      "dtype": args.dtype, "store_dtype": args.store_dtype or args.dtype, "timestep": 100,
                      "seed": args.seed, "limit": args.limit, "methods": args.methods,
                      "noise_id": args.noise_id},
           "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
           "shims": paper_side.SHIMS, "notes": notes, "commands": commands, "methods": []}
    worst = None
    lat_max, lat_abs, lat_same, lat_n = 0.0, 0.0, True, 0
    first_latents = {}
    for mi, m in enumerate(args.methods):
        rec, npz = paper[m]
        thresholds = rec["thresholds"]
        images = [im["image"] for im in rec["images"]]
        cell = next(c for c in cells if c["variant"] == METHOD_NAMES[m])
        run_miou = {round(t["threshold"], 6): t["miou"] for t in cell["thresholds"]}
        per_thr = [{"threshold": t, "agree": 0, "pixels": 0, "differing_pixels": 0, "max_gap": 0.0,
                    "paper_matrix": np.zeros((class_count + 1, class_count), np.int64)} for t in thresholds]
        maps_max, maps_same_nan, identical, compared = 0.0, True, 0, 0
        recomputed_mismatch = 0
        pre_max, pre_agree, pre_pixels, spreads = 0.0, 0, 0, []
        per_image = []
        for i, im in enumerate(rec["images"]):
            key = f"{i:05d}"
            label = npz[f"labels/{key}"]
            pcls = npz[f"classes/{key}"]
            pmaps = npz[f"maps/{key}"]
            lat = npz[f"latents/{key}"]
            if im["image"] in first_latents:
                lat_same &= bool(np.array_equal(first_latents[im["image"]], lat))
            else:
                first_latents[im["image"]] = lat
            gb = gb_seg[im["image"]]
            if mi == 0:
                d, _ = R.max_abs_diff(lat[0], gb["latents"])
                lat_abs, lat_max, lat_n = max(lat_abs, d), max(lat_max, float(np.abs(lat).max())), lat_n + 1
            gmaps = gb[m]
            d, same = R.max_abs_diff(pmaps, gmaps)
            maps_max, maps_same_nan = max(maps_max, d), maps_same_nan and same
            present = im["present_objects"]
            if im.get("propagated_spread") is not None:
                spreads.append(im["propagated_spread"])
            if f"pre/{key}" in npz.files and ("pre_" + m) in gb:
                ppre, gpre = npz[f"pre/{key}"], gb["pre_" + m]
                pre_max = max(pre_max, R.max_abs_diff(ppre, gpre)[0])
                pc = R.predicted_classes(torch.from_numpy(ppre), label.shape, present, class_count, rec["bg_method"],
                                         thresholds)
                gc = R.predicted_classes(torch.from_numpy(gpre), label.shape, present, class_count, rec["bg_method"],
                                         thresholds)
                pre_agree += int((pc == gc).sum())
                pre_pixels += int(pc.size)
            g_iter = R.full_scores(torch.from_numpy(gmaps), label.shape, present, class_count, rec["bg_method"],
                                   thresholds)
            p_iter = R.full_scores(torch.from_numpy(pmaps), label.shape, present, class_count, rec["bg_method"],
                                   thresholds)
            agree_img = []
            jrec = next((j for j in journal if j["id"] == im["image"]), None)
            for j, ((thr, gfull), (_, pfull)) in enumerate(zip(g_iter, p_iter)):
                gcls = gfull.argmax(dim=0).numpy().astype(pcls.dtype)
                # the classes the paper's own tensor gave (recorded in its process) are what is compared; the saved
                # fp32 maps re-evaluated here may differ on exact ties (counted)
                recomputed_mismatch += int((pfull.argmax(dim=0).numpy().astype(pcls.dtype) != pcls[j]).sum())
                n, gap = R.near_tie_gap(pfull, gfull, pcls[j], gcls)
                t = per_thr[j]
                t["agree"] += int((pcls[j] == gcls).sum())
                t["pixels"] += int(pcls[j].size)
                t["differing_pixels"] += n
                if n:
                    t["max_gap"] = max(t["max_gap"], gap)
                t["paper_matrix"] += R.confusion(pcls[j], label, class_count)
                a = float((pcls[j] == gcls).mean())
                agree_img.append(a)
                if worst is None or a < worst["agreement"]:
                    worst = {"image": im["image"], "method": METHOD_NAMES[m], "threshold": thr, "agreement": a}
                if jrec is not None:
                    compared += 1
                    identical += int(np.array_equal(R.journal_matrix(jrec["v"][mi]["t"][j], class_count),
                                                    R.confusion(gcls, label, class_count)))
            per_image.append({"image": im["image"], "agreement": min(agree_img),
                              "maps_max_abs": d, "seconds": im["seconds"]})
        printed = rec["printed_miou"]
        reproduced = all(abs(R.paper_miou(t["paper_matrix"]) - printed[k]) <= 1e-12
                         for k, t in enumerate(per_thr))
        rows = []
        for t in per_thr:
            rows.append({"threshold": t["threshold"], "paper_miou": printed[per_thr.index(t)],
                         "goca_bench_run_miou": run_miou.get(round(t["threshold"], 6)),
                         "agreement": t["agree"] / max(t["pixels"], 1), "differing_pixels": t["differing_pixels"],
                         "max_gap": t["max_gap"]})
        w = min(per_image, key=lambda r: r["agreement"])
        rep["methods"].append({
            "name": METHOD_NAMES[m], "key": m, "thresholds": rows,
            "agreement": sum(t["agree"] for t in per_thr) / max(sum(t["pixels"] for t in per_thr), 1),
            "pixels": sum(t["pixels"] for t in per_thr), "maps_max_abs": maps_max, "maps_same_nan": maps_same_nan,
            "worst_image": {"image": w["image"], "agreement": w["agreement"]},
            "run_vs_segment_identical": identical, "run_vs_segment_compared": compared,
            "paper_miou_reproduced": reproduced, "per_image": per_image,
            "paper_classes_vs_saved_maps_mismatch": recomputed_mismatch,
            "pre_propagation": {"maps_max_abs": pre_max, "agreement": pre_agree / pre_pixels if pre_pixels else None,
                                "propagated_spread_min": min(spreads) if spreads else None,
                                "propagated_spread_median": float(np.median(spreads)) if spreads else None}})
    rep["worst_image"] = worst
    rep["images"] = len(paper[args.methods[0]][0]["images"])
    rep["inputs"] = {"prompt_file": annotation_path, "latents_max_abs": lat_abs, "latents_max": lat_max,
                     "latents_compared": lat_n, "latents_same_across_methods": lat_same}
    # time and memory
    n = rep["images"]
    per_method = {METHOD_NAMES[m]: sum(im["seconds"] for im in paper[m][0]["images"]) / n for m in args.methods}
    fwd = sum(sum(im["extract_seconds"] for im in paper[m][0]["images"]) for m in args.methods) / n
    post = sum(sum(im["post_seconds"] for im in paper[m][0]["images"]) for m in args.methods) / n
    key = next(iter(results["timings"]))
    tm = results["timings"][key]
    st = tm["stage_seconds"]
    gb_images = tm["images"]
    fwd_stages = ("text", "vae", "denoiser")
    proc = json.load(open(os.path.join(gb_run, "sidebyside-process.json")))
    rep["timing"] = {
        "paper": {"passes_per_image": len(args.methods), "seconds_per_image": sum(per_method.values()),
                  "forward_seconds_per_image": fwd, "post_seconds_per_image": post, "per_method": per_method,
                  "peak_host_bytes": max(paper[m][0]["peak_host_bytes"] for m in args.methods),
                  "peak_device_bytes": max(paper[m][0]["peak_device_bytes"] for m in args.methods),
                  "threads": paper[args.methods[0]][0]["threads"],
                  "cpu_seconds_per_image": sum(sum(im["cpu_seconds"] for im in paper[m][0]["images"])
                                               for m in args.methods) / n,
                  "process_cpu_seconds_per_image": sum(paper[m][0]["process_cpu_seconds"] for m in args.methods) / n,
                  "loadavg_end": [paper[m][0]["loadavg_end"] for m in args.methods]},
        "goca_bench": {"seconds_per_image": tm["wall_seconds"] / gb_images,
                       "forward_seconds_per_image": sum(st.get(k, 0.0) for k in fwd_stages) / gb_images,
                       "post_seconds_per_image": sum(v for k, v in st.items() if k not in fwd_stages + ("decode",
                                                                                                        "prompt"))
                       / gb_images,
                       "stages": {k: v / gb_images for k, v in sorted(st.items())},
                       "peak_host_bytes": results["run"]["peak_host_bytes"],
                       "peak_device_bytes": results["run"]["peak_device_bytes"], "images": gb_images,
                       "process_cpu_seconds_per_image": proc["process_cpu_seconds"] / gb_images,
                       "loadavg": [proc["loadavg_start"], proc["loadavg_end"]]},
        "note": ("Per image: the paper's time runs from the start of `cross_attn` (prompt encoding, image "
                 "preprocessing, VAE, denoiser, head/layer aggregation) to the end of `quantitative_evaluation`, "
                 "summed over its one-method-per-process runs; goca-bench's is `run`'s wall time over its images "
                 "(stages overlap: decoding and prompts run ahead on worker threads). Model loading is excluded on "
                 "both sides. Peak host memory is each process's peak resident set (the paper's: the largest of "
                 "its per-method processes), model weights included."),
    }
    rep["timing"]["ratio"] = rep["timing"]["paper"]["seconds_per_image"] / rep["timing"]["goca_bench"]["seconds_per_image"]
    rep["timing"]["cpu_ratio"] = (rep["timing"]["paper"]["process_cpu_seconds_per_image"]
                                  / rep["timing"]["goca_bench"]["process_cpu_seconds_per_image"])
    return rep


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paper-src", required=True, help="checkout of Darkbblue/goca")
    ap.add_argument("--gdf-src", required=True, help="checkout of Darkbblue/generic-diffusion-feature")
    ap.add_argument("--backbone", required=True, choices=sorted(paper_side.MODEL_CONFIGS))
    ap.add_argument("--weights", required=True, help="diffusers-layout checkpoint folder")
    ap.add_argument("--dataset", required=True, choices=sorted(paper_side.DATASET_CONFIGS))
    ap.add_argument("--root", required=True, help="dataset root (VOC2012 layout)")
    ap.add_argument("--captions", required=True, help="caption JSON in the paper's gpt_output format")
    ap.add_argument("--limit", type=int, required=True, help="images (the first N of the paper's list)")
    ap.add_argument("--methods", default="vanilla,baseline,goca")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, choices=sorted(DTYPES),
                    help="compute dtype on both sides (default fp32 on cpu, fp16 on cuda: the paper's)")
    ap.add_argument("--store-dtype", choices=sorted(DTYPES),
                    help="dtype of the captured tensors on both sides (default: the compute dtype; the paper "
                         "stores fp16 whatever it computes in)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--goca-bench", default=os.path.join(REPO, "build", "bin", "goca-bench"))
    ap.add_argument("--seed", type=int, default=0, help="goca-bench's noise seed, injected into the paper's pipeline")
    ap.add_argument("--threads", type=int, default=0, help="torch threads of the paper's side (default torch's)")
    ap.add_argument("--make-weights", action="store_true", help="build random full-size weights at --weights first")
    ap.add_argument("--attention-scale", type=float, default=1.0,
                    help="with --make-weights: multiply every UNet attention's to_q and to_k weights by this")
    ap.add_argument("--make-dataset", type=int, default=0, metavar="K",
                    help="write K synthetic VOC-layout images to --root and --captions first")
    ap.add_argument("--noise-id", choices=["basename", "stem"], default="basename",
                    help="the image id goca-bench's noise is seeded with, on both sides: basename (default) is what "
                         "`goca-bench run` uses for VOC (the file name), stem what `goca-bench capture` uses")
    ap.add_argument("--keep", action="store_true", help="keep goca-bench's capture files")
    ap.add_argument("--skip-paper", action="store_true", help="reuse the paper side's records in --out")
    ap.add_argument("--skip-goca-bench", action="store_true", help="reuse goca-bench's outputs in --out")
    args = ap.parse_args()
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in args.methods:
        if m not in paper_side.MODEL_CONFIGS[args.backbone]:
            ap.error(f"--methods: unknown method {m!r} (known: {', '.join(paper_side.MODEL_CONFIGS[args.backbone])})")
    if args.dtype is None:
        args.dtype = "fp16" if args.device.startswith("cuda") else "fp32"
    args.out = os.path.abspath(args.out)
    args.weights = os.path.abspath(args.weights)
    args.root = os.path.abspath(args.root)
    args.captions = os.path.abspath(args.captions)
    args.goca_bench = os.path.abspath(args.goca_bench)
    args.env = os.path.join(args.out, "paper-env")
    os.makedirs(args.out, exist_ok=True)
    if not os.access(args.goca_bench, os.X_OK):
        ap.error(f"--goca-bench {args.goca_bench}: not an executable (build it, or point at one)")
    err = paper_side.check_sources(os.path.abspath(args.paper_src), os.path.abspath(args.gdf_src))
    if err:
        ap.error(err)
    commands = ["python3 " + " ".join(sys.argv)]
    if args.make_weights and not os.path.isfile(os.path.join(args.weights, "unet", "config.json")):
        make_weights(args.weights, args.attention_scale)
    if args.make_dataset:
        make_dataset(args, args.make_dataset)

    notes = []
    paper = {}
    logs = os.path.join(args.out, "logs")
    os.makedirs(logs, exist_ok=True)
    t_start = time.time()
    if not args.skip_paper:
        notes = paper_side.prepare(os.path.abspath(args.paper_src), os.path.abspath(args.gdf_src), args.env)
        json.dump(notes, open(os.path.join(args.out, "paper-notes.json"), "w"))
        paper_side.write_dataset_config(args.env, args.dataset, args.root, args.captions, args.limit)
        paper_side.write_model_config(args.env, args.backbone, args.methods[0])
        sh(paper_cmd(args, "caption"), log=os.path.join(logs, "paper-captioner.log"))
    else:
        notes = json.load(open(os.path.join(args.out, "paper-notes.json")))
    annotation_path, annotation = load_annotation(args)
    import numpy as np
    for m in args.methods:
        prefix = os.path.join(args.out, "paper", m)
        if not args.skip_paper:
            save_root = paper_side.write_model_config(args.env, args.backbone, m)
            shutil.rmtree(save_root + f"_{args.dataset}", ignore_errors=True)
            sh(paper_cmd(args, "main", ["--record", prefix]), log=os.path.join(logs, f"paper-{m}.log"))
            evaluation = open(os.path.join(save_root + f"_{args.dataset}", "evaluation.txt")).read()
            rec = json.load(open(prefix + ".json"))
            rec["printed_miou"] = [float(line.split()[1]) for line in evaluation.splitlines() if line.strip()]
            printed_thresholds = [float(line.split()[-1]) for line in evaluation.splitlines() if line.strip()]
            if printed_thresholds != rec["thresholds"]:
                raise SystemExit(f"{prefix}: thresholds {rec['thresholds']} but evaluation.txt has {printed_thresholds}")
            json.dump(rec, open(prefix + ".json", "w"), indent=1)
        rec = json.load(open(prefix + ".json"))
        paper[m] = (rec, np.load(prefix + ".npz"))
    t_paper = time.time() - t_start

    gb_run = os.path.join(args.out, "goca-bench", "run")
    if not args.skip_goca_bench:
        exp = goca_bench_experiment(args)
        shutil.rmtree(gb_run, ignore_errors=True)
        import resource
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load0 = os.getloadavg()
        sh([args.goca_bench, "run", exp, "--no-progress", "--out", gb_run], log=os.path.join(logs, "goca-bench-run.log"))
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        json.dump({"process_cpu_seconds": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
                   "loadavg_start": load0, "loadavg_end": os.getloadavg()},
                  open(os.path.join(gb_run, "sidebyside-process.json"), "w"))
    images = [im["image"] for im in paper[args.methods[0]][0]["images"]]
    seg_cache = os.path.join(args.out, "goca-bench", "segments.npz")
    if args.skip_goca_bench and os.path.exists(seg_cache):
        z = np.load(seg_cache)
        gb_seg = {}
        for k in z.files:
            img, what = k.split("/")
            gb_seg.setdefault(img, {})[what] = z[k]
    else:
        gb_seg = run_goca_bench_segments(args, annotation, images)
        np.savez_compressed(seg_cache, **{f"{img}/{k}": v for img, d in gb_seg.items() for k, v in d.items()})

    rep = build_report(args, annotation_path, annotation, paper, gb_run, gb_seg, commands, notes)
    rep["wall_seconds_paper_side"] = t_paper
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1, default=float)
    import report as R
    md = R.markdown(rep)
    open(os.path.join(args.out, "report.md"), "w").write(md)
    open(os.path.join(args.out, "summary.md"), "w").write(R.summary(rep))
    print(md)


if __name__ == "__main__":
    main()
