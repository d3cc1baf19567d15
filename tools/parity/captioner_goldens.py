#!/usr/bin/env python3
"""Goldens for the prompt builder: runs the paper's captioner.py (/work/ref/goca/src-main, executed verbatim,
not copied) on every caption of the five caption files, with stubs for what it needs around the loop:
the CLIP tokenizer is tools/parity/clip_bpe.py (a faithful Python reference of HF's CLIPTokenizer), the
dataset yields synthetic ground-truth class lists (seeded, mostly classes the caption names plus random
others, in shuffled order), and PIL/tqdm/diffusion_feature are no-ops.

Writes tests/text/golden/captioner_clip.json.gz: per dataset its flags, and per image [id, gt list, FNV-1a
64 of the canonical output] (caption, token ids, objects in order, background objects, rescaling tokens),
plus the full output of the first images.

    /usr/bin/python3 tools/parity/captioner_goldens.py [--goca DIR] [--captions DIR] [--out FILE]
"""
import argparse
import gzip
import json
import os
import random
import re
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_bpe import ClipBPE  # noqa: E402

DATASETS = [
    # name, caption file, add_background_token, add_missing_class, dataset class in caption_dataset.py
    ("voc", "voc.json", True, True, "PascalVOCDataset"),
    ("context", "context.json", False, True, "PascalContextDataset"),
    ("coco-object", "coco-object.json", True, False, "COCOObjectDataset"),
    ("cityscapes", "city.json", False, False, "CityDataset"),
    ("ade20k", "ade.json", True, False, "ADEDataset"),
]


def fnv1a64(data: bytes) -> str:
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def canonical(caption, ids, objects, background, rescaling):
    j = lambda xs: " ".join(str(x) for x in xs)
    return "\n".join([
        caption, j(ids),
        ";".join(f"{c}:{j(t)}" for c, t in objects),
        ";".join(j(b) for b in background),
        j(rescaling),
    ])


def class_lists(goca):
    cwd = os.getcwd()
    os.chdir(goca)
    sys.path.insert(0, goca)
    try:
        import components.caption_dataset as cd
        tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"annotations": []}, tmp)
        tmp.close()
        out = {}
        for name, _, _, _, cls in DATASETS:
            ctor = getattr(cd, cls)
            ds = ctor([], [], tmp.name) if cls == "COCOObjectDataset" else ctor([], [])
            out[name] = ds.class_name
        return out
    finally:
        os.chdir(cwd)


def synthetic_gt(rng, caption, names):
    members = [m.strip() for m in re.split(r"[(),]", caption.lower().rstrip("."))]
    named = sorted({c for c in range(1, len(names)) for m in members if m in names[c]})
    gt = [c for c in named if rng.random() < 0.75]
    others = [c for c in range(1, len(names)) if c not in gt]
    gt += rng.sample(others, min(len(others), rng.choice([0, 0, 1, 2, 3])))
    rng.shuffle(gt)
    return gt


class HFLikeTokenizer:
    def __init__(self, bpe):
        self.bpe = bpe
        self.model_max_length = 77

    def __call__(self, s, padding, max_length, truncation):
        assert padding == "max_length" and truncation and max_length == 77
        return {"input_ids": self.bpe(s)}

    def get_vocab(self):
        return dict(self.bpe.encoder)


def run_captioner(goca, source, name, caption_file, add_bg, add_missing, names, samples, tokenizer):
    out_dir = tempfile.mkdtemp()
    out_file = os.path.join(out_dir, f"{name}.json")

    class ModelConfig:
        version = "1-5"
        img_size = 512
        name = "15"

    class DatasetConfig:
        pass

    DatasetConfig.name = name
    DatasetConfig.which_dataset = name
    DatasetConfig.sample = None
    DatasetConfig.label = None
    DatasetConfig.limit = None
    DatasetConfig.add_background_token = add_bg
    DatasetConfig.add_missing_class = add_missing
    DatasetConfig.caption_input_file = caption_file
    DatasetConfig.caption_output_file = out_file

    class FakeDataset(list):
        pass

    ds = FakeDataset(samples)
    ds.class_name = names

    mods = {
        "diffusion_feature": types.SimpleNamespace(
            FeatureExtractor=lambda **kw: types.SimpleNamespace(pipe=types.SimpleNamespace(tokenizer=tokenizer))),
        "configs": types.ModuleType("configs"),
        "configs.current_model": types.SimpleNamespace(ModelConfig=ModelConfig),
        "configs.current_dataset": types.SimpleNamespace(DatasetConfig=DatasetConfig),
        "components": types.ModuleType("components"),
        "components.caption_dataset": types.SimpleNamespace(get_dataset=lambda *a, **k: ds),
        "tqdm": types.SimpleNamespace(tqdm=lambda x: x),
    }
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    import PIL.Image
    real_open = PIL.Image.open
    PIL.Image.open = lambda p: None
    try:
        exec(compile(source, os.path.join(goca, "captioner.py"), "exec"), {"__name__": "__main__"})
    finally:
        PIL.Image.open = real_open
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with open(out_file.replace(name, f"{name}-{ModelConfig.name}")) as f:  # as captioner.py renames it
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--goca", default="/work/ref/goca/src-main")
    ap.add_argument("--captions", default="/work/shared/data/goca-captions")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/text/golden/captioner_clip.json.gz"))
    ap.add_argument("--full-examples", type=int, default=8)
    args = ap.parse_args()
    with open(os.path.join(args.goca, "captioner.py")) as f:
        source = f.read()
    names_of = class_lists(args.goca)
    bpe = ClipBPE()
    tokenizer = HFLikeTokenizer(bpe)
    result = {"source": "goca src-main/captioner.py run verbatim, CLIP tokenizer = tools/parity/clip_bpe.py",
              "python": sys.version.split()[0], "datasets": []}
    for name, fname, add_bg, add_missing, _ in DATASETS:
        path = os.path.join(args.captions, fname)
        with open(path) as f:
            captions = json.load(f)
        names = names_of[name]
        rng = random.Random(f"goca-bench-{name}")
        samples = [(f"/nowhere/{img}", synthetic_gt(rng, entry["caption"], names)) for img, entry in captions.items()]
        out = run_captioner(args.goca, source, name, path, add_bg, add_missing, names, samples, tokenizer)
        images, examples = [], []
        for img_path, gt in samples:
            img = img_path.split("/")[-1]
            o = out[img]
            ids = bpe(o["caption"])
            objects = [(int(c), t) for c, t in o["existent_objects"].items()]
            text = canonical(o["caption"], ids, objects, o["background_objects"], o["rescaling_token_id"])
            images.append([img, gt, fnv1a64(text.encode("utf-8"))])
            if len(examples) < args.full_examples:
                examples.append({"id": img, "gt": gt, "caption": o["caption"], "ids": ids,
                                 "objects": [[c, t] for c, t in objects],
                                 "background_objects": o["background_objects"],
                                 "rescaling_token_id": o["rescaling_token_id"],
                                 "global_token_id": o["global_token_id"]})
        result["datasets"].append({"name": name, "captions": fname, "add_background_token": add_bg,
                                   "add_missing_class": add_missing, "images": images, "examples": examples})
        print(f"{name}: {len(images)} images", file=sys.stderr)
    data = json.dumps(result, separators=(",", ":")).encode("utf-8")
    with open(args.out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
        f.write(data)


if __name__ == "__main__":
    main()
