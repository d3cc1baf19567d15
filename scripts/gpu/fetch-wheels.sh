#!/usr/bin/env bash
# Downloads (here, with network) the Python wheels scripts/gpu/check.sh needs on the GPU machine, whose image has
# PyTorch 2.11 but newer diffusers/transformers than the ones goca-bench is checked against (or none): the
# pinned reference stack of requirements/python-tools.txt, for Python 3.12 manylinux x86_64, into .whl/.
#   bash scripts/gpu/fetch-wheels.sh        # -> .whl/*.whl (git-ignored)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${GB_WHL:-$ROOT/.whl}
PY=${GB_PYTHON:-$ROOT/.venv/bin/python}
mkdir -p "$OUT"
# The packages the random full-size folders need (tools/parity/parity_full.py builds them with diffusers and
# transformers); everything else they import is in the GPU image.
# einops and tqdm: imported by the paper's own code in the side-by-side step (tools/sidebyside, check.sh step 3b).
PKGS=(diffusers==0.32.2 transformers==4.47.1 huggingface-hub==0.27.1 tokenizers==0.21.0 safetensors==0.4.5
      einops==0.8.2 tqdm==4.70.1)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$OUT" "${PKGS[@]}"
ls -la "$OUT"
