#!/usr/bin/env bash
# Runs every libFuzzer target of a GB_FUZZ build for N seconds each (docs/robustness.md):
#   fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# Each target starts from its committed seeds (fuzz/corpus/<target>/, read-only) plus what earlier runs in
# this build folder found (BUILD_DIR/fuzz-work/<target>/corpus). A finding (crash, sanitizer report, internal
# error = an exception other than gb::UserError, hang > 10 s, > 4 GB) leaves its input in
# BUILD_DIR/fuzz-work/<target>/ and the script fails; reproduce with `BUILD_DIR/fuzz/<target> <input>`.
# FUZZ_SEED=N fixes libFuzzer's random seed and FUZZ_RUNS=N caps the inputs per target (CI sets both, so its run
# explores the same inputs as, or a prefix of, a run checked before the commit on any machine speed; unset,
# every run explores new ones).
set -uo pipefail
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/sanitizers/env.sh
source "$src/tools/sanitizers/env.sh"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$build"/fuzz/fuzz_*; do targets+=("$(basename "$bin")"); done
fi
failed=()
for name in "${targets[@]}"; do
  bin="$build/fuzz/$name"
  work="$build/fuzz-work/$name"
  mkdir -p "$work/corpus"
  start=$(date +%s)
  TMPDIR="$work" "$bin" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$src/fuzz/corpus/$name" >"$work/log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$' || echo "?")
  if [ $rc -eq 0 ]; then
    echo "fuzz: $name ok ($runs inputs, $(( $(date +%s) - start )) s)"
  else
    echo "fuzz: $name FAILED (exit $rc); log $work/log; inputs:" $(ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    grep -E 'ERROR|error|terminate|SUMMARY' "$work/log" | head -5
    failed+=("$name")
  fi
  rm -rf "$work"/gb-fuzz-*
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
  exit 1
fi
