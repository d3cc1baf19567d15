#!/usr/bin/env python3
"""Golden class tables for tests/datasets: dumps the paper's own class lists and id mappings.

Run:  .venv/bin/python tools/parity/datasets_classes.py /work/ref/goca tests/datasets/data/paper_classes.json
Imports the paper's components/{dataset,caption_dataset}.py (at golden-generation time only) and writes, per
dataset, the captioner synonym lists (caption_dataset.py), the dataset.py name lists, and the id mappings
(VOC xml names, Context ctx59 raw ids, COCO panoptic category_id -> class, Cityscapes mapping_20, COCO-Stuff's
fine_to_coarse_dict.pickle and the loaders' mapping_coco).
"""
import json
import os
import pickle
import sys
import tempfile

ref, out = sys.argv[1], os.path.abspath(sys.argv[2])
src = os.path.join(ref, 'src-main')
sys.path.insert(0, src)
os.chdir(src)  # dataset.py opens fine_to_coarse_dict.pickle relative to the working directory
import components.caption_dataset as cap  # noqa: E402
import components.dataset as dat  # noqa: E402
from components.dataset_util.coco_macro import COCO_CATEGORIES  # noqa: E402

with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
    json.dump({'annotations': []}, f)
    empty_anno = f.name


def plain(x):
    return [list(v) for v in x]


voc_cap = cap.PascalVOCDataset([], [])
ctx_cap = cap.PascalContextDataset([], [])
coco_cap = cap.COCOObjectDataset([], [], empty_anno)
city_cap = cap.CityDataset([], [])
ade_cap = cap.ADEDataset([], [])

ctx_dat = dat.PascalContextDataset([], [], empty_anno)
coco_dat = dat.COCOObjectDataset([], [], empty_anno, empty_anno)
golden = {
    'voc': {
        'synonyms': plain(voc_cap.class_name),
        'dataset_py_names': plain(dat.PascalVOCDataset([], [], empty_anno).class_name),
        # caption_dataset.py's name_to_id for Annotations/<id>.xml object names
        'xml_names': ['background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
                      'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
                      'sheep', 'sofa', 'train', 'tvmonitor'],
    },
    'context': {
        'synonyms': plain(ctx_cap.class_name),
        'dataset_py_names': plain(ctx_dat.class_name),
        'raw_to_class': {str(k): v for k, v in ctx_cap.raw_to_59.items()},
    },
    'coco-object': {
        'synonyms': plain(coco_cap.class_name),
        'dataset_py_names': plain(coco_dat.class_name),
        'category_to_class': {str(k): v for k, v in coco_cap.id_to_id.items()},
        'categories': [{'id': c['id'], 'isthing': c['isthing'], 'name': c['name']} for c in COCO_CATEGORIES],
    },
    'cityscapes': {
        'synonyms': plain(city_cap.class_name),
        'dataset_py_names': list(dat.CityDataset([], [], empty_anno).class_name),
        'mapping_20': {str(k): v for k, v in cap.mapping_20.items()},
    },
    'ade20k': {
        'synonyms': plain(ade_cap.class_name),
        'dataset_py_names': plain(dat.ADEDataset([], [], empty_anno).class_name),
    },
}
with open('fine_to_coarse_dict.pickle', 'rb') as f:
    fine_to_coarse = pickle.load(f)
assert dat.mapping_coco == cap.mapping_coco
golden['coco-stuff'] = {
    'synonyms': plain(cap.COCODataset([], []).class_name),
    'dataset_py_names': plain(dat.COCODataset([], [], empty_anno).class_name),
    'fine_index_to_coarse_index': {str(k): v for k, v in sorted(fine_to_coarse['fine_index_to_coarse_index'].items())},
    'fine_name_to_coarse_name': dict(sorted(fine_to_coarse['fine_name_to_coarse_name'].items())),
    # encode_labels' table (before the loaders' 15 -> 3, 16 -> 4)
    'mapping_coco': {str(k): v for k, v in sorted(dat.mapping_coco.items())},
}
os.unlink(empty_anno)
with open(out, 'w') as f:
    json.dump(golden, f, indent=1, ensure_ascii=False)
    f.write('\n')
print('wrote', out)
