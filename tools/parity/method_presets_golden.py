#!/usr/bin/env python3
"""The paper's model configs as JSON (tests/baselines/data/paper_model_configs.json), so the C++ presets
(baselines/presets.cpp) are checked against the primary source rather than against a transcription.

Imports each /work/ref/goca/src-main/configs/config-model/config_model_<name>.py, instantiates its
ModelConfig and keeps what a method preset states: version, img_size, feat_size, t, the cross-attention
setting (head/layer/rescale method, ref_layer, layer list), the propagation self-map layers and the
post-processing chain.

    .venv/bin/python tools/parity/method_presets_golden.py [--goca /work/ref/goca]
"""
import argparse
import importlib.util
import json
import os

NAMES = ['15', '15_vanilla', '15_baseline', 'fttm', 'xl', 'xl_vanilla', 'sigma', 'sigma_vanilla', 'flux',
         'flux_vanilla', 'alpha', 'alpha_vanilla']
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'baselines', 'data',
                   'paper_model_configs.json')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--goca', default='/work/ref/goca')
    args = ap.parse_args()
    out = {}
    for name in NAMES:
        path = os.path.join(args.goca, 'src-main', 'configs', 'config-model', 'config_model_%s.py' % name)
        spec = importlib.util.spec_from_file_location('config_model_' + name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        c = mod.ModelConfig()
        cross = c.cross_attn_setting
        out[name] = {
            'version': c.version, 'img_size': c.img_size, 'feat_size': c.feat_size, 't': c.t,
            'task': cross['task'], 'head_method': cross['head_method'], 'layer_method': cross['layer_method'],
            'rescale_method': cross['rescale_method'], 'ref_layer': cross['ref_layer'], 'layer': cross['layer'],
            'self_layer': c.space_attn_setting['layer'],
            'postprocess': [p['task'] for p in c.postprocess_setting],
            'affinity_order': [p.get('order') for p in c.postprocess_setting if p['task'] == 'affinity'],
        }
    with open(OUT, 'w') as f:
        json.dump({'source': 'tools/parity/method_presets_golden.py from ' + args.goca, 'configs': out}, f, indent=1)
    print('wrote', os.path.normpath(OUT))


if __name__ == '__main__':
    main()
