"""The side-by-side report: predicted classes, agreement, mIoU, timing (tools/sidebyside/run.py).

predicted_classes() is the per-image part of the paper's `quantitative_evaluation` (src-main/components/
downstream_dispatch.py, spec §F) up to its argmax, returning the class map per background threshold instead of
adding it to the global I/U counters. The same function turns both sides' post-processed maps into classes, and
run.py checks that the I/U it implies reproduces the mIoU the paper's own function printed (evaluation.txt).
"""
import math

import numpy as np

BG_METHODS = ("vanilla", "max", "exact", "avg", "offset")


def full_scores(pred, label_shape, present_objects, class_count, bg_method, thresholds):
    """Yields (threshold, pred_full [C, H, W] float32 CPU tensor) as quantitative_evaluation builds them."""
    import torch
    import torch.nn.functional as F
    if bg_method not in BG_METHODS:
        raise ValueError(f"unknown background method {bg_method!r}")
    h, w = int(label_shape[0]), int(label_shape[1])
    pred_full = torch.zeros(class_count, h, w)
    supporting = None
    if pred is not None:
        pred = F.interpolate(pred.unsqueeze(0), (h, w), mode="bilinear").squeeze(0).detach().cpu()
        supporting = pred[-1]
        for idx in range(pred.shape[0] - 1):
            pred_full[present_objects[idx], :, :] = pred[idx, :, :]
    for thr in thresholds:
        if bg_method == "vanilla":
            pred_full[0, :, :] = thr
        elif bg_method == "max":
            supporting = supporting.clamp(min=thr)  # cumulative over the loop, as in the paper
            pred_full[0, :, :] = supporting
        elif bg_method == "exact":
            pred_full[0, :, :] = supporting
        elif bg_method == "avg":
            pred_full[0, :, :] = (thr + supporting) / 2
        else:
            pred_full[0, :, :] = thr + supporting
        yield thr, pred_full


def predicted_classes(pred, label_shape, present_objects, class_count, bg_method, thresholds):
    """uint8 [len(thresholds), H, W]: the paper's `pred_class` for every threshold (argmax over the C channels)."""
    h, w = int(label_shape[0]), int(label_shape[1])
    out = np.empty((len(thresholds), h, w), np.uint8 if class_count <= 256 else np.int32)
    for j, (_, pf) in enumerate(full_scores(pred, label_shape, present_objects, class_count, bg_method, thresholds)):
        out[j] = pf.argmax(dim=0).numpy()
    return out


def confusion(classes, label, class_count):
    """(C+1) x C int64 matrix as goca-bench's results.json: rows the ground truth 0..C-1 and one row for labels
    outside [0, C), columns the predicted class."""
    c = class_count
    lab = np.asarray(label).astype(np.int64).ravel()
    row = np.where((lab >= 0) & (lab < c), lab, c)
    p = np.asarray(classes).astype(np.int64).ravel()
    return np.bincount(row * c + p, minlength=(c + 1) * c).reshape(c + 1, c)


def paper_miou(matrix):
    """The paper's mIoU from a confusion matrix: IoU_c = I_c / (1e-8 + U_c) over all C classes, absent ones 0."""
    m = np.asarray(matrix, dtype=np.int64)
    c = m.shape[1]
    inter = np.array([m[k, k] for k in range(c)], dtype=np.int64)
    union = m[:c].sum(1) + m.sum(0) - inter
    return float(np.array([inter[k] / (1e-8 + union[k]) for k in range(c)]).mean())


def journal_matrix(triplets, class_count):
    """A goca-bench journal threshold entry ([[gt, pred, count], ...]) as a dense (C+1) x C matrix."""
    m = np.zeros((class_count + 1, class_count), np.int64)
    for g, p, n in triplets:
        m[g, p] += n
    return m


def near_tie_gap(paper_full, gb_full, paper_cls, gb_cls):
    """For the pixels where the classes differ: per pixel the paper's own score gap between its class and
    goca-bench's class, and goca-bench's gap the other way round. Returns (pixels, max gap over both sides)."""
    diff = paper_cls != gb_cls
    n = int(diff.sum())
    if n == 0:
        return 0, 0.0
    ys, xs = np.nonzero(diff)
    pa, ga = paper_cls[ys, xs].astype(np.int64), gb_cls[ys, xs].astype(np.int64)
    pf, gf = paper_full.numpy(), gb_full.numpy()
    gap_p = pf[pa, ys, xs] - pf[ga, ys, xs]
    gap_g = gf[ga, ys, xs] - gf[pa, ys, xs]
    gaps = np.maximum(np.abs(gap_p), np.abs(gap_g))
    return n, float(np.nanmax(gaps)) if np.isfinite(gaps).any() else float("nan")


def max_abs_diff(a, b):
    """Max |a - b| over the entries finite on both sides, and whether the NaN patterns are identical."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf"), False
    same_nan = bool((np.isnan(a) == np.isnan(b)).all())
    ok = np.isfinite(a) & np.isfinite(b)
    return (float(np.abs(a[ok] - b[ok]).max()) if ok.any() else 0.0), same_nan


def _fmt_pct(x):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.3f}"


def _fmt_miou(x):
    return "–" if x is None else f"{100 * x:.2f}"


def _mib(b):
    return f"{b / 2 ** 20:,.0f} MiB"


def markdown(rep):
    """The report as Markdown (the same facts as the JSON)."""
    L = []
    cfg = rep["config"]
    L.append(f"# Side by side: the paper's pipeline and goca-bench ({cfg['backbone']}, {cfg['dataset']})\n")
    L.append(f"{rep['images']} images from `{cfg['root']}` (captions `{cfg['captions']}`), weights `{cfg['weights']}`, "
             f"device {cfg['device']}, compute dtype {cfg['dtype']} on both sides, captured tensors stored as "
             f"{cfg['store_dtype']} on the paper's side, timestep {cfg['timestep']}, seed {cfg['seed']}.\n")
    L.append(f"Machine: {rep['machine']}.\n")
    L.append("## Inputs\n")
    inp = rep["inputs"]
    L.append(f"- Prompts and token groups: the paper's `captioner.py` ({inp['prompt_file']}); goca-bench's "
             f"`run` builds its own from the same captions, `capture` + `segment` replay the paper's.")
    L.append(f"- Noisy latents (goca-bench's per-image noise injected into the paper's pipeline): max |paper - "
             f"goca-bench `capture` input.latents| = {inp['latents_max_abs']:.3g} over {inp['latents_compared']} "
             f"images (max |latent| {inp['latents_max']:.3g}); identical across the paper's per-method passes: "
             f"{inp['latents_same_across_methods']}.")
    if cfg.get("noise_id", "stem") == "stem":
        L.append("- Noise id: the file stem, as `goca-bench capture` seeds it. `goca-bench run` seeds with the dataset's "
                 "image id (for VOC the file name, with `.jpg`), so its images got other noise draws: its mIoU and "
                 "per-image matrices are not same-noise comparisons (rerun with `--noise-id basename`).")
    else:
        L.append("- Noise id: the file name, as `goca-bench run` seeds it (VOC's image id); `capture` gets a link "
                 "named so that its file stem is that id.")
    L.append("")
    L.append("## Agreement and mIoU per method and background threshold\n")
    L.append("mIoU in %, paper protocol (spec §F). *paper*: printed by the paper's `quantitative_evaluation`; "
             "*goca-bench run*: `goca-bench run` (one forward pass for all methods, its own captioner, evaluator); "
             "*agree*: % of label pixels whose predicted class is the same on both sides (goca-bench's classes "
             "from `capture` + `segment` maps through the paper's argmax).\n")
    for m in rep["methods"]:
        L.append(f"### {m['name']}\n")
        L.append("| threshold | paper mIoU | goca-bench run mIoU | agree % | differing pixels | max score gap at a differing pixel |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        for t in m["thresholds"]:
            L.append(f"| {t['threshold']:g} | {_fmt_miou(t['paper_miou'])} | {_fmt_miou(t['goca_bench_run_miou'])} | "
                     f"{_fmt_pct(t['agreement'])} | {t['differing_pixels']} | "
                     f"{'–' if not t['differing_pixels'] else format(t['max_gap'], '.3g')} |")
        L.append("")
        L.append(f"All thresholds: {_fmt_pct(m['agreement'])} % of {m['pixels']} pixel decisions agree. Score maps "
                 f"(post-processed, before evaluation): max |paper - goca-bench| {m['maps_max_abs']:.3g} "
                 f"(NaN patterns identical: {m['maps_same_nan']}). Worst image: {m['worst_image']['image']} "
                 f"({_fmt_pct(m['worst_image']['agreement'])} %). `run` vs `capture` + `segment`: "
                 f"{m['run_vs_segment_identical']} of {m['run_vs_segment_compared']} per-image confusion matrices "
                 f"identical. mIoU from the recorded classes equals the paper's printed mIoU: "
                 f"{m['paper_miou_reproduced']}.\n")
        pp = m.get("pre_propagation") or {}
        if pp.get("agreement") is not None:
            L.append(f"Before affinity propagation (the maps `postprocess` receives / goca-bench's `pre_propagation`): "
                     f"max |paper - goca-bench| {pp['maps_max_abs']:.3g}, classes agree on {_fmt_pct(pp['agreement'])} %. "
                     f"Relative spread (max - min) / max of the propagated maps before the final MinMax: smallest "
                     f"{pp['propagated_spread_min']:.3g}, median {pp['propagated_spread_median']:.3g} (the MinMax "
                     f"divides the two sides' difference by it).\n")
    w = rep["worst_image"]
    L.append(f"Worst image over all methods and thresholds: **{w['image']}** ({w['method']}, threshold "
             f"{w['threshold']:g}: {_fmt_pct(w['agreement'])} % agree).\n")
    L.append("## Time and memory per image, one Table-1 row (" + " + ".join(m["name"] for m in rep["methods"]) +
             f", {len(rep['methods'][0]['thresholds'])} thresholds)\n")
    t = rep["timing"]
    L.append("| side | forward passes per image | wall s / image | of which forward (text + VAE + denoiser) | "
             "post-processing + evaluation | peak host memory |")
    L.append("|---|---:|---:|---:|---:|---:|")
    L.append(f"| paper | {t['paper']['passes_per_image']} | {t['paper']['seconds_per_image']:.2f} | "
             f"{t['paper']['forward_seconds_per_image']:.2f} | {t['paper']['post_seconds_per_image']:.2f} | "
             f"{_mib(t['paper']['peak_host_bytes'])} |")
    L.append(f"| goca-bench | 1 | {t['goca_bench']['seconds_per_image']:.2f} | "
             f"{t['goca_bench']['forward_seconds_per_image']:.2f} | {t['goca_bench']['post_seconds_per_image']:.2f} | "
             f"{_mib(t['goca_bench']['peak_host_bytes'])} |")
    if t["paper"].get("peak_device_bytes") or t["goca_bench"].get("peak_device_bytes"):
        L.append(f"\nPeak device memory: paper {_mib(t['paper']['peak_device_bytes'])} (torch.cuda.max_memory_allocated, "
                 f"the largest of its processes), goca-bench {_mib(t['goca_bench']['peak_device_bytes'])}.")
    L.append("")
    L.append(f"Process CPU time per image (all threads, model loading included, the paper's three processes "
             f"summed): paper {t['paper']['process_cpu_seconds_per_image']:.1f} s, goca-bench "
             f"{t['goca_bench']['process_cpu_seconds_per_image']:.1f} s: **{t['cpu_ratio']:.2f}×**. The paper's CPU time "
             f"inside its per-image loop: {t['paper']['cpu_seconds_per_image']:.1f} s. Load average at the end of each "
             f"paper process {', '.join(format(x[0], '.1f') for x in t['paper']['loadavg_end'])}; around goca-bench "
             f"{t['goca_bench']['loadavg'][0][0]:.1f} → {t['goca_bench']['loadavg'][1][0]:.1f} (the machine is shared).\n")
    L.append(f"**Throughput ratio (goca-bench / paper): {t['ratio']:.2f}×** (wall time per image of the row; the "
             f"paper's per method: " + ", ".join(f"{k} {v:.2f} s" for k, v in t['paper']['per_method'].items()) +
             f"; goca-bench stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in t['goca_bench']['stages'].items()) + ").\n")
    if t.get("note"):
        L.append(t["note"] + "\n")
    L.append("## Shims applied to the paper's code\n")
    for kind, where, what in rep["shims"]:
        L.append(f"- **{where}** ({kind}): {what}.")
    for note in rep.get("notes", []):
        L.append(f"- Note: {note}.")
    L.append("")
    L.append("## Commands\n")
    for c in rep["commands"]:
        L.append(f"    {c}")
    L.append("")
    return "\n".join(L)


def summary(r):
    """The condensed tables docs/sidebyside.md shows (DIR/summary.md)."""
    out = []
    print = out.append  # noqa: A001
    print(f"{r['images']} images. Noisy latents: max |paper − goca-bench| {r['inputs']['latents_max_abs']:.2g} (max |latent| {r['inputs']['latents_max']:.2f}); identical across the paper's three passes: {r['inputs']['latents_same_across_methods']}.\n")
    print("| method | pixels agreeing, 9 thresholds | worst threshold | final maps max abs diff | before propagation: max abs diff / classes agreeing | propagated spread (median) | `run` = `capture`+`segment` matrices | paper mIoU reproduced |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in r['methods']:
        w = min(m['thresholds'], key=lambda t: t['agreement'])
        pp = m['pre_propagation']
        print(f"| {m['name']} | {100*m['agreement']:.3f} % | {w['threshold']:g}: {100*w['agreement']:.2f} % | {m['maps_max_abs']:.3g} | {pp['maps_max_abs']:.2g} / {100*pp['agreement']:.3f} % | {pp['propagated_spread_median']:.2g} | {m['run_vs_segment_identical']} of {m['run_vs_segment_compared']} | {m['paper_miou_reproduced']} |")
    print("")
    print("| method | best paper mIoU (threshold) | best goca-bench `run` mIoU (threshold) |")
    print("|---|---:|---:|")
    for m in r['methods']:
        bp = max(m['thresholds'], key=lambda t: t['paper_miou']); bg = max(m['thresholds'], key=lambda t: t['goca_bench_run_miou'] or 0)
        print(f"| {m['name']} | {100*bp['paper_miou']:.2f} ({bp['threshold']:g}) | {100*bg['goca_bench_run_miou']:.2f} ({bg['threshold']:g}) |")
    print("")
    t = r['timing']; p, g = t['paper'], t['goca_bench']
    print("| side | forward passes / image | wall s / image | forward | post + eval | process CPU s / image | peak host memory |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| paper | {p['passes_per_image']} | {p['seconds_per_image']:.1f} | {p['forward_seconds_per_image']:.1f} | {p['post_seconds_per_image']:.1f} | {p['process_cpu_seconds_per_image']:.1f} | {p['peak_host_bytes']/2**30:.1f} GiB |")
    print(f"| goca-bench | 1 | {g['seconds_per_image']:.1f} | {g['forward_seconds_per_image']:.1f} | {g['post_seconds_per_image']:.1f} | {g['process_cpu_seconds_per_image']:.1f} | {g['peak_host_bytes']/2**30:.1f} GiB |")
    print(f"\nRatio paper / goca-bench: **{t['ratio']:.2f}× in wall time**, **{t['cpu_ratio']:.2f}× in process CPU time**. Paper per method: " + ", ".join(f"{k} {v:.1f} s" for k,v in p['per_method'].items()) + f". Load average: paper processes ended at {', '.join(format(x[0], '.1f') for x in p['loadavg_end'])}; goca-bench {g['loadavg'][0][0]:.1f} → {g['loadavg'][1][0]:.1f}.")
    return "\n".join(out) + "\n"
