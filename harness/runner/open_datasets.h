#pragma once
// The datasets of a segmentation run, opened: each experiment entry's config read (integration.h), its synthetic
// data written where the entry asks for it (once across concurrent shards), the dataset opened and listed, and
// its evaluation config derived. Also what the config hash and results.json record about them.
#include "datasets/dataset.h"
#include "datasets/dataset_config.h"
#include "harness/eval/evaluator.h"
#include "harness/runner/experiment.h"
#include "reports/results.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace gb::runner {

struct OpenDataset {
  DatasetEntry entry;
  gb::datasets::DatasetConfig config;
  std::unique_ptr<gb::datasets::Dataset> dataset;
  gb::eval::EvalConfig eval;
};

// With entry.synthetic_images > 0: writes the synthetic VOC dataset (seeded by `seed`) under config.root unless
// a marker there says the same images and seed are already written. Shards started together (a job array)
// write it once: the first takes a file lock and writes, the others wait and then find the marker.
void ensure_synthetic_dataset(const DatasetEntry& entry, const gb::datasets::DatasetConfig& config, uint64_t seed);

// The evaluation config of a dataset: its protocol, class count, ignore index (255 when unset), background
// method and thresholds, and the experiment's threshold rule (`select`).
gb::eval::EvalConfig eval_config(const gb::datasets::DatasetConfig& config, int64_t num_classes,
                                 const std::string& select);

// One entry: config read, synthetic data ensured, dataset opened, eval config derived.
OpenDataset open_dataset(const DatasetEntry& entry, const Experiment& experiment);

// What results.json records of an open dataset (kind, protocol, classes, image count, hash of its id list).
gb::reports::DatasetInfo dataset_info(const OpenDataset& dataset);

// The result-relevant dataset settings, as the config hash sees them (the split file by name only).
nlohmann::json canonical_dataset(const gb::datasets::DatasetConfig& config);

// Opens every dataset of the experiment in order; appends their DatasetInfo to results.datasets and sets
// results.protocol ("paper", "standard" or "paper+standard").
std::vector<OpenDataset> open_datasets(const Experiment& experiment, gb::reports::Results& results);

// The hash of everything that changes a result: seed, threshold rule, each dataset's canonical settings, each
// backbone's kind, dtype and result-relevant options, and each variant's resolved method.
std::string config_hash(const Experiment& experiment, const std::vector<OpenDataset>& datasets);

}  // namespace gb::runner
