#!/usr/bin/env python3
"""Convert pytorch-fid's FID Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth, the state dict that
pytorch_fid.inception.fid_inception_v3() loads) into the safetensors file `goca-bench fid --inception` reads.

Key names stay pytorch-fid's (Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_mean, ...). Tensors are
stored as contiguous float32; `*.num_batches_tracked` and the 1008-way classifier `fc.*` are dropped (the FID
features are the pool3 activations before it). Nothing is downloaded: bring the .pth file (pytorch-fid's
release asset `fid_weights/pt_inception-2015-12-05-6726825d.pth`; torch hub caches it under
~/.cache/torch/hub/checkpoints/ once pytorch-fid has run).

    python tools/convert/fid_inception.py pt_inception-2015-12-05-6726825d.pth fid_inception.safetensors
"""
import argparse
import hashlib
import sys

import torch
from safetensors.torch import save_file

# A few keys every FID Inception state dict has; a file without them is something else.
ANCHORS = ["Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
           "Mixed_6e.branch7x7dbl_5.conv.weight", "Mixed_7c.branch3x3dbl_3b.bn.bias"]
OFFICIAL_SHA256_PREFIX = "6726825d"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth", help="pytorch-fid's pt_inception-2015-12-05-*.pth")
    ap.add_argument("out", help="output .safetensors")
    args = ap.parse_args()

    with open(args.pth, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    sd = torch.load(args.pth, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        sys.exit(f"{args.pth}: not a state dict (got {type(sd).__name__})")
    missing = [k for k in ANCHORS if k not in sd]
    if missing:
        sys.exit(f"{args.pth}: not an FID Inception-v3 state dict (no {', '.join(missing)})")
    if "AuxLogits.fc.weight" in sd or ("fc.weight" in sd and tuple(sd["fc.weight"].shape) != (1008, 2048)):
        print(f"warning: {args.pth} looks like torchvision's ImageNet Inception-v3, not pytorch-fid's FID weights "
              "(FID values will not be comparable)", file=sys.stderr)
    if not digest.startswith(OFFICIAL_SHA256_PREFIX):
        print(f"note: sha256 {digest[:16]}... is not the official file's ({OFFICIAL_SHA256_PREFIX}...)", file=sys.stderr)
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked") or k.startswith("fc."):
            continue
        if not torch.is_tensor(v) or not v.is_floating_point():
            sys.exit(f"{args.pth}: '{k}' is not a floating tensor")
        out[k] = v.detach().to(torch.float32).contiguous()
    save_file(out, args.out, metadata={"format": "pt", "source": "pytorch-fid pt_inception-2015-12-05",
                                       "source_sha256": digest})
    print(f"wrote {len(out)} tensors to {args.out}")


if __name__ == "__main__":
    main()
