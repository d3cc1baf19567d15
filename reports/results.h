#pragma once
// results.json: everything a run measured, self-describing and schema-versioned, so that tables, plots,
// `compare` and `merge` need nothing else (reports/ never runs a model).
//
// One Cell per (dataset, backbone, variant) holds one int64 confusion matrix per background threshold;
// metrics are derived from the matrices (and rewritten on load-and-save, so merged shards are exact).
#include "reports/metrics.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gb::reports {

inline constexpr int kResultsSchemaVersion = 1;

struct DatasetInfo {
  std::string name;                  // as the experiment names it ("voc", "synthetic-voc")
  std::string kind;                  // reader kind
  std::string protocol;              // "paper" | "standard"
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  int64_t num_images = 0;            // images in the full (unsharded) evaluation list
  std::string list_hash;             // hash of the ordered image-id list (before sharding)
};

struct ThresholdResult {
  double threshold = 0;
  ConfusionMatrix confusion;
  Metrics metrics;  // derived
};

struct Cell {
  std::string dataset;
  std::string backbone;
  std::string variant;       // readable name: "GoCA", "GoCA/head_method=average"
  std::string method;        // Table 1 "Method" column ("GoCA", "Vanilla", "Baseline", "FTTM")
  std::string type;          // Table 1 "Type" column
  std::string group;         // ablation group ("" for the main table)
  std::map<std::string, std::string> axes;  // ablated key -> value, for ablation tables
  nlohmann::json method_config;              // resolved method options of this variant
  std::string background;    // background rule ("offset", ...)
  std::string select_rule;   // "best" | "fixed"
  double fixed_threshold = 0;
  std::vector<ThresholdResult> thresholds;
  int64_t images = 0;
  // Diagnostics, summed over images (divide by `images`): layer weights per layer key, head weights
  // (mean over pixels) per layer key.
  std::map<std::string, double> layer_weight_sum;
  std::map<std::string, std::vector<double>> head_weight_sum;

  int selected_index() const;  // by select_rule; -1 when there are no thresholds
  const ThresholdResult* selected() const;
  std::string key() const { return dataset + "|" + backbone + "|" + variant; }
};

struct StageTimes {
  std::map<std::string, double> seconds;  // decode, prompt, text, vae, denoiser, aggregation, evaluation, ...
  double wall_seconds = 0;
  int64_t images = 0;
};

struct Example {
  std::string dataset, backbone, variant, id;
  int64_t index = 0;        // position in the dataset's evaluation list
  std::string png_base64;   // image | ground truth | prediction, side by side
};

struct Results {
  int schema_version = kResultsSchemaVersion;
  std::string name;
  std::string created_utc;
  std::string git_commit;
  std::string goca_bench_version;
  std::map<std::string, std::string> libraries;
  std::string device;
  std::string config_yaml;   // resolved experiment config
  std::string config_hash;   // hash of what determines accuracy (shard, resume, batch size excluded)
  std::string protocol;
  std::map<std::string, int64_t> seeds;
  int64_t shard_index = 0, shard_count = 1;
  std::vector<DatasetInfo> datasets;
  std::vector<Cell> cells;
  std::map<std::string, StageTimes> timings;  // per "dataset|backbone"
  int64_t peak_host_bytes = 0;
  int64_t peak_device_bytes = 0;
  // `goca-bench memory`'s plan of the largest capture pass (checkpoint backbones on CUDA; 0 otherwise), to read
  // beside peak_device_bytes.
  int64_t planned_peak_device_bytes = 0;
  std::vector<Example> examples;

  const Cell* find(const std::string& dataset, const std::string& backbone, const std::string& variant) const;
  const DatasetInfo* dataset(const std::string& name) const;
  Reduction reduction_of(const std::string& dataset) const;
  void recompute_metrics();
};

nlohmann::json to_json(const Results& r);
Results results_from_json(const nlohmann::json& j, const std::string& source);
void save_results(const Results& r, const std::string& path);  // atomic (write temp, rename)
Results load_results(const std::string& path);                 // UserError on malformed files

// A dense stable hex hash (FNV-1a 64) of a string, for list and config hashes.
std::string stable_hash(const std::string& text);
std::string utc_now_iso();

}  // namespace gb::reports
