#!/usr/bin/env bash
# The whole GPU check in one script, for a GPU machine without network (PyTorch 2.11 at python3). Prepared here:
#   bash scripts/gpu/fetch-debs.sh && bash scripts/gpu/fetch-wheels.sh       # -> .debs/, .whl/ (git-ignored)
# There, from the repository root, with .debs and .whl carried:
#   bash scripts/gpu/check.sh                 # results under $OUT (default ./gpu-check-out)
# Steps, each logged to $OUT: (1) build everything against the machine's LibTorch with CUDA and run the test suites;
# (2) `goca-bench version --json`; (3) per backbone at full size with random weights (built by diffusers from the
# published configs, tools/parity/parity_full.py) in the paper's dtype on CUDA: `goca-bench run` of Vanilla,
# Baseline and GoCA on a VOC-layout fixture, whose results.json holds the measured peak device memory beside
# `goca-bench memory`'s plan and whose profile holds images/s; (3b) the side-by-side comparison with the paper's own
# pipeline in its dtypes (needs .paper/, below); (4) the *_cuda benchmarks; (4b) the S-CFG step benchmark. A step that would pass
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

# 3b. Side by side with the paper's own pipeline (tools/sidebyside/run.py, docs/sidebyside.md) in the paper's dtypes:
# fp16 compute and fp16 captures on both sides, SD1.5 at full size with random weights, GB_SBS_IMAGES (default 8)
# synthetic VOC-layout images, Vanilla + Baseline + GoCA. The machine has no network, so carry beside .whl:
#   .paper/goca                          a checkout of Darkbblue/goca  (git archive HEAD | tar -x -C .paper/goca)
#   .paper/generic-diffusion-feature     a checkout of Darkbblue/generic-diffusion-feature (its feature/ suffices)
# (git-ignored; both are read only: the README's install is done in a copy under $OUT/sidebyside/paper-env). The
# paper's code imports einops, tqdm, scipy and torchvision besides the .whl stack; fetch-wheels.sh adds einops and
# tqdm; scipy and torchvision must come with the image (the step says which import is missing and is skipped).
PAPER_SRC=${GB_PAPER_SRC:-$ROOT/.paper/goca}
GDF_SRC=${GB_GDF_SRC:-$ROOT/.paper/generic-diffusion-feature}
if [[ ! -d "$PAPER_SRC/src-main" || ! -d "$GDF_SRC/feature" ]]; then
  say "sidebyside: skipped (no paper checkouts at $PAPER_SRC and $GDF_SRC)"
elif ! MISSING=$(python3 -c 'import importlib.util as u; print(" ".join(m for m in ("einops", "tqdm", "scipy", "torchvision", "diffusers", "transformers") if u.find_spec(m) is None))') || [[ -n "$MISSING" ]]; then
  say "sidebyside: skipped (missing Python packages: $MISSING)"
elif left 240; then
  N=${GB_SBS_IMAGES:-8}
  say "sidebyside: the paper's pipeline and goca-bench, sd15 fp16 on CUDA, $N images"
  timeout $((BUDGET - $(elapsed) - 30)) python3 tools/sidebyside/run.py --paper-src "$PAPER_SRC" --gdf-src "$GDF_SRC" \
    --backbone sd15 --weights "$WORK/sbs-sd15" --make-weights --dataset voc --root "$WORK/sbs-voc/VOC2012" \
    --captions "$WORK/sbs-voc/captions.json" --make-dataset "$N" --limit "$N" --methods vanilla,baseline,goca \
    --device cuda --dtype fp16 --store-dtype fp16 --out "$OUT/sidebyside" --goca-bench "$BIN" \
    > "$OUT/sidebyside.log" 2>&1
  say "sidebyside: exit $? (report: sidebyside/report.md)"
  grep -E '^\*\*Throughput|^All thresholds' "$OUT/sidebyside/report.md" 2>/dev/null | tee -a "$OUT/check.log"
  rm -rf "$WORK/sbs-sd15" "$OUT/sidebyside/paper-env/site" "$OUT/sidebyside/goca-bench/segments"
else
  say "sidebyside: skipped (time budget)"
fi

# 4. CUDA benchmarks.
if left 60; then
  say "benchmarks"
  timeout $((BUDGET - $(elapsed))) "${BUILD:-$ROOT/build-cuda}/tests/goca-bench-benchmarks" --benchmark_filter='cuda' \
    --benchmark_format=json > "$OUT/bench-cuda.json" 2> "$OUT/bench-cuda.err"
  say "benchmarks exit $?"
fi
# 4b. One S-CFG step beside one plain CFG step at SD1.5 512² in the paper's fp16 (docs/generation.md "Speed").
if left 60; then
  say "S-CFG step benchmark"
  GB_BENCH_DEVICE=cuda GB_BENCH_DTYPE=fp16 timeout $((BUDGET - $(elapsed))) \
    "${BUILD:-$ROOT/build-cuda}/tests/goca-bench-benchmarks" --benchmark_filter='BM_Sd15(Cfg|Scfg)' \
    --benchmark_format=json > "$OUT/bench-scfg-cuda.json" 2> "$OUT/bench-scfg-cuda.err"
  say "S-CFG benchmark exit $?"
fi
say "done"
