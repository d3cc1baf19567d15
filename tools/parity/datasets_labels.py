#!/usr/bin/env python3
"""Golden labels for tests/datasets: the paper's own loaders run on the fixtures the C++ generator writes.

  for q in "" --paper-quirks; do for d in voc context coco-object cityscapes ade20k coco-stuff; do
    build/bin/goca-bench datasets make-fixture --dataset $d --out /tmp/fx/${q:+quirks}${q:-normal}/$d $q; done; done
  .venv/bin/python tools/parity/datasets_labels.py /work/ref/goca /tmp/fx tests/datasets/data/paper_labels.json

For every sample, in the paper's order, it records the image name, the label histogram after dataset.py's mapping
(what the evaluation sees) and caption_dataset.py's existent_objects_gt (sorted). Imports the paper's
components/{dataset,caption_dataset}.py at golden-generation time only.
"""
import json
import os
import sys
import tempfile

import xml.etree.ElementTree  # noqa: F401  (the paper uses xml.etree after a bare `import xml`)

import numpy as np

ref, fx_root, out = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
src = os.path.join(ref, 'src-main')
sys.path.insert(0, src)
os.chdir(src)  # dataset.py opens fine_to_coarse_dict.pickle relative to the working directory
import components.caption_dataset as cap  # noqa: E402
import components.dataset as dat  # noqa: E402


def fake_prompts(names):
    entry = {'caption': 'x', 'rescaling_token_id': [], 'global_token_id': [], 'existent_objects': {},
             'background_objects': []}
    f = tempfile.NamedTemporaryFile('w', suffix='.json', delete=False)
    json.dump({n: entry for n in names}, f)
    f.close()
    return f.name


def split_lists(root, images_dir, label_dir, ext):
    with open(os.path.join(root, 'ImageSets/Segmentation/train.txt')) as f:
        train = [ff.rstrip() for ff in f.readlines()]
    test = list(reversed(train))
    return ([os.path.join(images_dir, f'{d}.jpg') for d in test],
            [os.path.join(label_dir, f'{d}{ext}') for d in test])


def loaders(ds, d):
    """(dataset.py set, caption_dataset.py set) built exactly as the paper's configs do."""
    if ds == 'voc':
        root = os.path.join(d, 'VOC2012')
        s, l = split_lists(root, os.path.join(root, 'JPEGImages'), os.path.join(root, 'SegmentationClass'), '.png')
        names = [p.split('/')[-1] for p in s]
        return (dat.get_dataset('pascal-voc', s, l, fake_prompts(names), 3000),
                cap.get_dataset('pascal-voc', s, l, 3000))
    if ds == 'context':
        root = os.path.join(d, 'pascal-context')
        s, l = split_lists(root, os.path.join(d, 'VOC2012', 'JPEGImages'), os.path.join(root, 'trainval'), '.mat')
        names = [p.split('/')[-1] for p in s]
        return (dat.get_dataset('pascal-context', s, l, fake_prompts(names), 3000),
                cap.get_dataset('pascal-context', s, l, 3000))
    if ds == 'coco-object':
        root = os.path.join(d, 'coco-object')
        s = os.path.join(root, 'images/val2017/*jpg')
        l = os.path.join(root, 'annotations/panoptic_val2017/*png')
        a = os.path.join(root, 'annotations/panoptic_val2017.json')
        names = sorted(os.listdir(os.path.join(root, 'images/val2017')))
        return (dat.get_dataset('coco-object', s, l, fake_prompts(names), 10000, a),
                cap.get_dataset('coco-object', s, l, 10000, a))
    if ds == 'cityscapes':
        root = os.path.join(d, 'cityscapes')
        s = os.path.join(root, 'leftImg8bit/val/**/*')
        l = os.path.join(root, 'gtFine/val/**/*labelIds.png')
        names = [n for c in os.listdir(os.path.join(root, 'leftImg8bit/val'))
                 for n in os.listdir(os.path.join(root, 'leftImg8bit/val', c))]
        return (dat.get_dataset('city', s, l, fake_prompts(names), 1000), cap.get_dataset('city', s, l, 1000))
    if ds == 'ade20k':
        root = os.path.join(d, 'ADEChallengeData2016')
        s = os.path.join(root, 'images/validation/*')
        l = os.path.join(root, 'annotations/validation/*')
        names = os.listdir(os.path.join(root, 'images/validation'))
        return (dat.get_dataset('ade', s, l, fake_prompts(names), 3000), cap.get_dataset('ade', s, l, 3000))
    if ds == 'coco-stuff':
        root = os.path.join(d, 'coco-stuff')
        s = os.path.join(root, 'val2017/*.jpg')
        l = os.path.join(root, 'val2017/*.png')
        names = [n for n in os.listdir(os.path.join(root, 'val2017')) if n.endswith('.jpg')]
        return (dat.get_dataset('coco-stuff', s, l, fake_prompts(names), 10000),
                cap.get_dataset('coco-stuff', s, l, 10000))
    raise ValueError(ds)


golden = {}
for variant in sorted(os.listdir(fx_root)):
    golden[variant] = {}
    for ds in ['voc', 'context', 'coco-object', 'cityscapes', 'ade20k', 'coco-stuff']:
        d = os.path.join(fx_root, variant, ds)
        if not os.path.isdir(d):
            continue
        eval_set, cap_set = loaders(ds, d)
        assert len(eval_set) == len(cap_set)
        rows = []
        for i in range(len(eval_set)):
            sample, label = eval_set[i][0], np.asarray(eval_set[i][1]).astype(np.int64)
            csample, gt = cap_set[i]
            assert sample == csample
            values, counts = np.unique(label, return_counts=True)
            rows.append({'id': sample.split('/')[-1], 'height': int(label.shape[0]), 'width': int(label.shape[1]),
                         'label': {str(int(v)): int(c) for v, c in zip(values, counts)},
                         'gt': sorted(int(g) for g in gt)})
        golden[variant][ds] = rows
with open(out, 'w') as f:
    json.dump(golden, f, indent=1)
    f.write('\n')
print('wrote', out)
