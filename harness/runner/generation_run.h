#pragma once
// `goca-bench run` on a generation experiment (a `generation:` section; docs/generation.md "The paper's table").
// Per backbone (loaded once) x guidance entry x guidance scale — a "setting" — every prompt of the shard is sampled
// once (seeded noise per prompt id, as `goca-bench generate`), its image goes through the FID Inception and the CLIP
// scorer, and a journal line records (prompt index, id, 100·cos(image, prompt), the 2048 pool3 features as float32
// bytes, a thumbnail for the first prompts). The features enter exact float64 sums (harness/metrics/fid_sums.h),
// written per setting to <run>/fid-sums/<setting>.safetensors; FID = Fréchet distance of the sums' statistics to the
// reference .npz, CLIP score = max(mean of 100·cos, 0). --resume replays the journal lines (the same features,
// bit for bit) and samples the rest; shards merge by adding the sums, so a merged FID equals a single run's.
#include "harness/runner/experiment.h"
#include "harness/runner/runner.h"
#include "reports/results.h"

#include <string>
#include <vector>

namespace gb::runner {

gb::reports::Results run_generation(const Experiment& experiment, const RunOptions& options);

// After gb::reports::merge_results(shards, sources): adds the shards' feature sums (each shard's results.json names
// its file, relative to that file's folder) into
// <out_dir>/fid-sums/, and sets every generation cell's FID from them and the reference statistics the shards
// were run against (read again from generation_info.reference_stats; its hash must match). No-op without
// generation cells.
void merge_generation_sums(gb::reports::Results& merged, const std::vector<gb::reports::Results>& shards,
                           const std::vector<std::string>& sources, const std::string& out_dir);

}  // namespace gb::runner
