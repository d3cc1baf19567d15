#!/usr/bin/env python3
"""Goldens for the prompt builder: runs the paper's captioner.py (/work/ref/goca/src-main, executed verbatim,
not copied) on every caption of the five caption files. Its tokenizer is the real one: transformers'
CLIPTokenizer (hf_tokenizers.py, the SD1.5 pipeline's `df.pipe.tokenizer`); the stubs around the loop are
only the dataset, which yields synthetic ground-truth class lists (seeded, mostly classes the caption names
plus random others, in shuffled order), and PIL/tqdm/diffusion_feature, which are no-ops.

Writes tests/text/golden/captioner_clip.json.gz: per dataset its flags, and per image [id, gt list, FNV-1a
64 of the canonical output] (caption, token ids, objects in order, background objects, rescaling tokens),
plus the full output of the first images.

Writes tests/text/golden/tokenizers_captions.json.gz: both tokenizers of transformers 4.47.1 on every shipped
caption: per caption file (all six), per image in sorted image-id order, the CLIPTokenizer ids
(padding="max_length" to 77, truncation; trailing <|endoftext|> stripped) and the T5TokenizerFast ids
(tiny_spiece.model, padding="max_length" to 300, truncation; trailing <pad> stripped) of the caption exactly
as it is in the file, and for the five files the captioner runs on, of the prompt it builds (the prompt text
is stored). Each pair is stored as the low 32 bits of FNV-1a 64 of "<clip ids>|<t5 ids>" (ids joined by
spaces), 8 hex digits; the first three of each list also in full.

    /work/main/.venv/bin/python tools/parity/captioner_goldens.py --goca <Darkbblue/goca>/src-main [--captions DIR]
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

import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_tokenizers as hft  # noqa: E402

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


def write_gz_json(path, obj):
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
        f.write(data)


def main():
    golden = os.path.join(hft.REPO, "tests", "text", "golden")
    ap = argparse.ArgumentParser()
    ap.add_argument("--goca", required=True, help="src-main of a Darkbblue/goca checkout")
    ap.add_argument("--captions", default=hft.CAPTIONS)
    ap.add_argument("--out", default=os.path.join(golden, "captioner_clip.json.gz"))
    ap.add_argument("--out-tokenizers", default=os.path.join(golden, "tokenizers_captions.json.gz"))
    ap.add_argument("--full-examples", type=int, default=8)
    args = ap.parse_args()
    with open(os.path.join(args.goca, "captioner.py")) as f:
        source = f.read()
    names_of = class_lists(args.goca)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = hft.clip_tokenizer(os.path.join(tmp, "clip"))
    t5 = hft.t5_tokenizer_fast()
    pad_clip, pad_t5 = tokenizer.pad_token_id, t5.pad_token_id

    def clip_ids(text):
        return hft.clip_ids(tokenizer, text)

    def both(text):
        return (" ".join(map(str, hft.strip_pad(clip_ids(text), pad_clip))) + "|" +
                " ".join(map(str, hft.strip_pad(hft.t5_ids(t5, text, 300), pad_t5))))

    def h32(key):
        return fnv1a64(key.encode("utf-8"))[8:]

    result = {"source": "goca src-main/captioner.py run verbatim, CLIP tokenizer = transformers "
                        "CLIPTokenizer (tools/parity/hf_tokenizers.py)",
              "python": sys.version.split()[0], "datasets": []}
    built = {}
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
            ids = clip_ids(o["caption"])
            objects = [(int(c), t) for c, t in o["existent_objects"].items()]
            text = canonical(o["caption"], ids, objects, o["background_objects"], o["rescaling_token_id"])
            images.append([img, gt, fnv1a64(text.encode("utf-8"))])
            if len(examples) < args.full_examples:
                examples.append({"id": img, "gt": gt, "caption": o["caption"], "ids": ids,
                                 "objects": [[c, t] for c, t in objects],
                                 "background_objects": o["background_objects"],
                                 "rescaling_token_id": o["rescaling_token_id"],
                                 "global_token_id": o["global_token_id"]})
        built[fname] = {img: out[img]["caption"] for img in out}
        result["datasets"].append({"name": name, "captions": fname, "add_background_token": add_bg,
                                   "add_missing_class": add_missing, "images": images, "examples": examples})
        print(f"{name}: {len(images)} images", file=sys.stderr)
    write_gz_json(args.out, result)

    tok = {"source": "tools/parity/captioner_goldens.py: transformers " + transformers.__version__ +
                     " CLIPTokenizer (vocab.json + merges.txt from bpe_simple_vocab_16e6.txt.gz, no ftfy) and "
                     "T5TokenizerFast (tests/text/golden/tiny_spiece.model)",
           "clip": {"max_length": 77, "pad_id": pad_clip}, "t5": {"max_length": 300, "pad_id": pad_t5}, "files": []}
    for fname in sorted(f for f in os.listdir(args.captions) if f.endswith(".json")):
        with open(os.path.join(args.captions, fname)) as f:
            captions = json.load(f)
        raw = [both(captions[img]["caption"]) for img in sorted(captions)]
        entry = {"captions": fname, "raw": " ".join(h32(k) for k in raw), "raw_examples": raw[:3]}
        if fname in built:
            imgs = sorted(built[fname])
            keys = [both(built[fname][img]) for img in imgs]
            entry["built"] = [[img, built[fname][img], h32(k)] for img, k in zip(imgs, keys)]
            entry["built_examples"] = keys[:3]
        tok["files"].append(entry)
        print(f"{fname}: {len(raw)} captions, {len(entry.get('built', []))} built prompts", file=sys.stderr)
    write_gz_json(args.out_tokenizers, tok)
    print("wrote", args.out, os.path.getsize(args.out), "bytes,", args.out_tokenizers,
          os.path.getsize(args.out_tokenizers), "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
