#!/usr/bin/env bash
# The whole GPU check in one script, for a GPU machine without network (PyTorch 2.11 at python3). Prepared here:
#   bash scripts/gpu/fetch-debs.sh && bash scripts/gpu/fetch-wheels.sh       # -> .debs/, .whl/ (git-ignored)
# There, from the repository root, with .debs and .whl carried:
#   bash scripts/gpu/check.sh                 # results under $OUT (default ./gpu-check-out)
# Steps, each logged to $OUT: (1) build everything against the machine's LibTorch with CUDA and run the test suites;
# (2) `goca-bench version --json`; (3) per backbone at full size with random weights (built by diffusers from the
# published configs, tools/parity/parity_full.py) in the paper's dtype on CUDA: `goca-bench run` of Vanilla,
# Baseline and GoCA on a VOC-layout fixture, whose results.json holds the measured peak device memory beside
# `goca-bench memory`'s plan and whose profile holds images/s; (4) the *_cuda benchmarks. A step that would pass
# GB_CHECK_BUDGET_S (default 540 s) from the start is skipped and says so.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
BUDGET=${GB_CHECK_BUDGET_S:-540}
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
say() { echo "check[$(elapsed)s]: $*" | tee -a "$OUT/check.log"; }
left() { (( $(elapsed) < BUDGET - ${1:-0} )); }

# Python side: the carried wheels first on the path (the image's diffusers/transformers are other versions).
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gb-site .whl/*.whl \
    && export PYTHONPATH=/tmp/gb-site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
say "GPU: $(cat "$OUT/gpu.txt")"

# 1. Build + tests (CUDA tests run here; on CPU machines they skip).
say "build"
BUILD=${BUILD:-$ROOT/build-cuda} GB_JOBS=${GB_JOBS:-$(nproc)} bash scripts/gpu/build-cuda.sh > "$OUT/build-and-ctest.log" 2>&1
say "build + ctest exit $? (log: build-and-ctest.log; $(grep -E 'tests passed' "$OUT/build-and-ctest.log" | tail -1))"
BIN=${BUILD:-$ROOT/build-cuda}/bin/goca-bench
source "${BUILD:-$ROOT/build-cuda}/gpu-env.sh"
[[ -x "$BIN" ]] || { say "no goca-bench binary; stopping"; exit 1; }
"$BIN" version --json > "$OUT/version.json"; cat "$OUT/version.json" >> "$OUT/check.log"

# 3. Full-size random-weight backbones through `run`.
WORK=${GB_CHECK_WORK:-/tmp/gb-check}
mkdir -p "$WORK"
"$BIN" datasets make-fixture --dataset voc --out "$WORK/voc" > "$WORK/voc.json"
VOC_ROOT=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["root"])' "$WORK/voc.json")
VOC_CAPS=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["captions"])' "$WORK/voc.json")
for backbone in sd15 pixart-sigma; do
  left 150 || { say "$backbone: skipped (time budget)"; continue; }
  say "$backbone: random full-size folder"
  python3 tools/parity/parity_full.py --build-only "$backbone" --out "$WORK/$backbone" > "$OUT/$backbone-build.log" 2>&1 \
    || { say "$backbone: building the folder failed (see $backbone-build.log)"; continue; }
  cat > "$WORK/$backbone.yaml" <<YAML
name: gpu-$backbone
output_root: $WORK/runs
seed: 0
batch_size: 1
workers: 2
device: cuda
datasets:
  - {name: VOC, config: configs/datasets/voc.yaml, set: {root: $VOC_ROOT, captions: $VOC_CAPS}}
backbones:
  - {name: $backbone, kind: $backbone, weights: $WORK/$backbone}
methods:
  - {name: Vanilla, type: Training-free, method: configs/methods/$backbone/vanilla.yaml}
  - {name: Baseline, type: Training-free, method: configs/methods/$backbone/baseline.yaml}
  - {name: GoCA, type: Training-free, method: configs/methods/$backbone/goca.yaml}
YAML
  "$BIN" memory --weights "$WORK/$backbone" --method "configs/methods/$backbone/goca.yaml" --batch-size 1 --json \
    > "$OUT/$backbone-memory.json" 2> "$OUT/$backbone-memory.err"
  say "$backbone: run"
  "$BIN" run "$WORK/$backbone.yaml" > "$OUT/$backbone-run.log" 2>&1
  say "$backbone: run exit $?"
  cp "$WORK/runs/gpu-$backbone/results.json" "$OUT/$backbone-results.json" 2>/dev/null
  cp "$WORK/runs/gpu-$backbone/profile.md" "$OUT/$backbone-profile.md" 2>/dev/null
  python3 - "$OUT/$backbone-results.json" <<'PY' 2>/dev/null | tee -a "$OUT/check.log"
import json, sys
r = json.load(open(sys.argv[1]))
def find(o, key):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == key: yield v
            yield from find(v, key)
    elif isinstance(o, list):
        for v in o: yield from find(v, key)
for key in ("peak_device_bytes", "planned_peak_device_bytes", "images_per_second"):
    print(f"  {key}: {list(find(r, key))[:3]}")
PY
  rm -rf "$WORK/$backbone"
done

# 4. CUDA benchmarks.
if left 60; then
  say "benchmarks"
  timeout $((BUDGET - $(elapsed))) "${BUILD:-$ROOT/build-cuda}/tests/goca-bench-benchmarks" --benchmark_filter='cuda' \
    --benchmark_format=json > "$OUT/bench-cuda.json" 2> "$OUT/bench-cuda.err"
  say "benchmarks exit $?"
fi
say "done"
