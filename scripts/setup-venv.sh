#!/usr/bin/env bash
# Creates (or completes) the project's Python virtual environment: PyTorch 2.11.0 from PyPI, whose bundled
# LibTorch is the one goca-bench builds against, plus the Python reference tools (tools/parity).
# Idempotent: a stamp per requirements file records what is installed; pip runs only when a file changed.
#
#   bash scripts/setup-venv.sh [VENV]        (default .venv beside the Makefile)
# Environment: GB_PYTHON_BOOT  the python3 that creates the venv (default: python3)
#              GB_VENV_TOOLS   0: skip requirements/python-tools.txt (torch only)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${1:-$ROOT/.venv}
BOOT=${GB_PYTHON_BOOT:-python3}
say() { echo "setup-venv: $*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  command -v "$BOOT" >/dev/null || { say "no $BOOT on PATH (install python3 and python3-venv)" >&2; exit 2; }
  say "creating $VENV with $($BOOT --version 2>&1)"
  "$BOOT" -m venv "$VENV" || { say "'$BOOT -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 2; }
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi

reqs=("$ROOT/requirements/torch.txt")
[[ "${GB_VENV_TOOLS:-1}" == 1 ]] && reqs+=("$ROOT/requirements/python-tools.txt")
for r in "${reqs[@]}"; do
  stamp="$VENV/.stamp-$(basename "$r")"
  sum=$(md5sum "$r" | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" == "$sum" ]]; then continue; fi
  say "pip install -r ${r#"$ROOT"/}"
  "$VENV/bin/python" -m pip install -q -r "$r"
  echo "$sum" > "$stamp"
done
"$VENV/bin/python" - <<'PY'
import torch
print(f"setup-venv: torch {torch.__version__} (CUDA {torch.version.cuda}) at {torch.utils.cmake_prefix_path}")
PY
