#pragma once
// `goca-bench run`: evaluates an experiment. Per (dataset, backbone): the images of the shard are loaded
// and prompted by worker threads running ahead of the model (a TBB pipeline), batched, passed through ONE
// backbone forward that captures the union of what every variant needs, segmented by every variant,
// evaluated into per-image confusion matrices, journalled (fsync'd) and summed. Outputs in
// <output_root>/<name>/ (results.json, tables/, profile.*, report.html; shards: shard-<i>-of-<n>/).
#include "harness/backbones/memory_check.h"
#include "harness/runner/experiment.h"
#include "harness/runner/run_support.h"  // parse_shard, in_shard
#include "reports/results.h"

#include <cstdint>
#include <string>

namespace gb::runner {

struct RunOptions {
  int64_t shard_index = 0;
  int64_t shard_count = 1;
  bool resume = false;
  int64_t stop_after = -1;  // debug: exit abruptly (as if killed) after this many images were journalled
  bool progress = true;
  std::string run_dir;         // "" = experiment.run_dir() (+ /shard-i-of-n)
  gb::bb::MemoryCheck memory;  // the pre-flight of every backbone before the first load
};

// The folder a run writes: options.run_dir when given, else the experiment's <output_root>/<name>, with
// /shard-<i>-of-<n> appended when sharded (the one place of that rule; `run --print-run-dir` prints it).
std::string resolve_run_dir(const Experiment& experiment, const RunOptions& options);
// The same folder, created.
std::string prepare_run_dir(const Experiment& experiment, const RunOptions& options);
// The provenance part of a run's results (name, time, commit, versions, device, config, seed, shard).
gb::reports::Results new_results(const Experiment& experiment, const RunOptions& options, const std::string& device);
// The start every run kind shares: the run folder created (its journal removed unless resuming), this run's
// trace collection started, the CUDA peak-memory counter reset. Returns the run folder.
std::string start_run(const Experiment& experiment, const RunOptions& options, const std::string& device);
// The end every run kind shares: peak host and device memory recorded, profile.trace.json, results.json and the
// report written.
void write_run_outputs(gb::reports::Results& results, const std::string& device, const std::string& run_dir);
// "cpu" or the CUDA device with its name, as results.json records it.
std::string device_description(const std::string& device);

// Runs the experiment and writes every output (a generation experiment: harness/runner/generation_run.h).
// Returns the results written to results.json.
gb::reports::Results run_experiment(const Experiment& experiment, const RunOptions& options);

}  // namespace gb::runner
