#pragma once
// results.json: everything a run measured, self-describing and schema-versioned, so that tables, plots,
// `compare` and `merge` need nothing else (reports/ never runs a model).
//
// One Cell per (dataset, backbone, variant) holds one int64 confusion matrix per background threshold;
// metrics are derived from the matrices (and rewritten on load-and-save, so merged shards are exact).
#include "harness/eval/confusion.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gb::reports {

// One confusion-matrix type and one Metrics type in the program: harness/eval's (its reduce() is the only metric
// reduction, checked against the paper's evaluation function).
using gb::eval::ConfusionMatrix;
using gb::eval::Metrics;

inline constexpr int kResultsSchemaVersion = 1;

struct DatasetInfo {
  std::string name;      // as the experiment names it ("voc", "synthetic-voc")
  std::string kind;      // reader kind
  std::string protocol;  // "paper" | "standard"
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  int64_t num_images = 0;  // images in the full (unsharded) evaluation list
  std::string list_hash;   // hash of the ordered image-id list (before sharding)
};

struct ThresholdResult {
  double threshold = 0;
  ConfusionMatrix confusion;
  Metrics metrics;  // derived
};

struct Cell {
  std::string dataset;
  std::string backbone;
  std::string variant;                      // readable name: "GoCA", "GoCA/head_method=average"
  std::string method;                       // Table 1 "Method" column ("GoCA", "Vanilla", "Baseline", "FTTM")
  std::string type;                         // Table 1 "Type" column
  std::string group;                        // ablation group ("" for the main table)
  std::map<std::string, std::string> axes;  // ablated key -> value, for ablation tables
  nlohmann::json method_config;             // resolved method options of this variant
  std::string background;                   // background rule ("offset", ...)
  std::string select_rule;                  // "best" | "fixed"
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
  int64_t index = 0;       // position in the dataset's evaluation list
  std::string png_base64;  // image | ground truth | prediction, side by side
};

// Generation experiments (a `generation:` section): one GenerationCell per (backbone, guidance, scale).
struct GenerationSample {
  std::string id;
  int64_t index = 0;       // position in the prompt list (after the limit)
  std::string png_base64;  // the generated image, downscaled to at most 128 px
};

struct GenerationCell {
  std::string backbone;
  std::string guidance;       // the entry's name: the table row ("CFG", "S-CFG (GoCA)")
  std::string guidance_type;  // cfg | scfg
  std::string method;         // S-CFG's mask method file ("" = the backbone's preset or none)
  double scale = 0;
  int64_t images = 0;
  double clip_sum = 0;    // Σ 100·cos(image, prompt) over the images (CLIP score = max(clip_sum / images, 0))
  double fid = NAN;       // from the feature sums and the reference statistics (NaN: fewer than 2 images)
  std::string sums_file;  // the FID feature sums, relative to the run folder (harness/metrics/fid_sums.h)
  std::vector<GenerationSample> samples;  // the first prompts' images, for report.html

  double clip_score() const;       // NaN without images
  std::string key() const;         // backbone|guidance|scale
  std::string scale_text() const;  // "7.5"
};

struct GenerationInfo {
  std::string prompts;          // the prompt file as configured
  int64_t num_prompts = 0;      // after the limit, before sharding
  std::string list_hash;        // hash of the ordered (id, prompt) list
  std::string reference_stats;  // the .npz path
  std::string reference_hash;   // hash of its mu and sigma bytes
  bool synthetic = false;       // random-weight models: numbers are not the paper's
};

struct Results {
  int schema_version = kResultsSchemaVersion;
  std::string name;
  std::string created_utc;
  std::string git_commit;
  std::string goca_bench_version;
  std::map<std::string, std::string> libraries;
  std::string device;
  std::string config_yaml;  // resolved experiment config
  std::string config_hash;  // hash of what determines accuracy (shard, resume, batch size excluded)
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
  std::optional<GenerationInfo> generation_info;  // set for generation experiments
  std::vector<GenerationCell> generation;
  const GenerationCell* find_generation(const std::string& backbone, const std::string& guidance, double scale) const;

  const Cell* find(const std::string& dataset, const std::string& backbone, const std::string& variant) const;
  const DatasetInfo* dataset(const std::string& name) const;
  gb::Protocol protocol_of(const std::string& dataset) const;
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
