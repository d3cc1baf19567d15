"""The paper's GoCA functions (Darkbblue/goca src-main/components/*_dispatch.py, imported read-only) on the CPU, for
goca_goldens.py and goca_paper_timing.py: `einops` is imported there but unused by these functions (an empty module
stands in), and their `.to('cuda')` moves go to the CPU."""
import os
import sys
import types

import torch

_orig_to = torch.Tensor.to


def _cpu_to(self, *a, **k):
    a = tuple('cpu' if (isinstance(x, str) and x.startswith('cuda')) else x for x in a)
    if isinstance(k.get('device'), str) and k['device'].startswith('cuda'):
        k['device'] = 'cpu'
    return _orig_to(self, *a, **k)


class FakeExtractor:
    """Stands in for the paper's feature extractor: returns the given captures (the version that makes goca_cross_run
    read every layer as it is stored)."""
    version = 'flux'

    def __init__(self, feats):
        self.feats = feats

    def extract(self, prompt_embeds, batch, imgs, t=None):
        return dict(self.feats)


def load(ref):
    """(cross_attn_dispatch, space_attn_dispatch, postprocess_dispatch) from <ref>/src-main, CUDA moves on the CPU."""
    sys.modules.setdefault('einops', types.ModuleType('einops'))
    sys.path.insert(0, os.path.join(ref, 'src-main'))
    from components import cross_attn_dispatch as cad
    from components import space_attn_dispatch as sad
    from components import postprocess_dispatch as ppd
    torch.Tensor.to = _cpu_to
    return cad, sad, ppd
