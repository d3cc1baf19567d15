#pragma once
// An experiment (configs/experiments/*.yaml, configs/quickstart.yaml): datasets × backbones × method
// variants, with ablation grids expanded into readable variants. docs/runner.md documents every key.
//
//   name: table1                       # outputs go to <output_root>/<name>/
//   output_root: runs
//   seed: 0                            # per-image noise seed (mixed with the image id)
//   batch_size: 4                      # images per capture batch (results do not depend on it)
//   batch_invariant: true              # one backbone forward per image of a batch (default): results identical
//                                      # for every batch size, shard and resume; false: one forward per batch
//                                      # (faster on a GPU; results equal up to float rounding)
//   workers: 2                         # data-preparation threads running ahead of the model
//   device: auto                       # auto | cpu | cuda
//   examples: 3                        # example overlays per (dataset, backbone) in report.html
//   datasets:
//     - name: voc
//       config: configs/datasets/voc.yaml   # a dataset config (protocol, layout, captions, background sweep)
//       set: {root: /data/VOC2012, captions: /data/goca-captions/voc.json}   # overrides of its keys
//       synthetic_images: 0              # > 0: first write the synthetic VOC dataset (N images) to `root`
//   backbones:
//     - name: sd15
//       kind: sd15                        # a registered kind (harness/backbones/registry.h; default: name)
//       weights: /models/stable-diffusion-v1-5
//       dtype: fp16                       # optional: fp32 | fp16 | bf16 (default: the paper's on CUDA)
//       options: {}                       # the kind's options (gb::bb::read_backbone_options)
//   methods:
//     - name: GoCA                        # variant name (Table 1 "Method")
//       type: Training-free               # Table 1 "Type"
//       method: configs/methods/{backbone}/goca.yaml   # {backbone} = the backbone's name
//       set: {output_size: 32}            # overrides of method keys
//       backbones: [sd15]                 # optional: only these backbones
//   ablations:
//     - name: head                        # ablation group (one table per group and backbone)
//       base: GoCA                        # a method above
//       grid: {head_method: [average, l2-norm, dot-product w/o clamp]}   # product over keys
//       backbones: [sd15]
//   evaluation:
//     select: best                        # best | fixed:<threshold>
//
// A generation experiment (the paper's S-CFG table, configs/experiments/scfg-*.yaml) has `backbones:` and a
// `generation:` section instead of `datasets:` and `methods:` (docs/runner.md, docs/generation.md):
//   generation:
//     prompts: /data/MS-COCO_val2014_30k_captions.csv   # .txt or .csv (harness/io/prompt_file.h)
//     limit: -1                         # the first N prompts (-1: all)
//     steps: 0                          # 0: the backbone's default (sd15 50, pixart-sigma 20)
//     scheduler: ""                     # "": the checkpoint's
//     image_size: 0                     # 0: the checkpoint's
//     scales: [2.0, 3.0, 5.0, 7.5, 10.0]
//     guidance:                         # table rows (per backbone); S-CFG's mask method per entry
//       - name: CFG
//         type: cfg                     # cfg | scfg
//       - name: S-CFG (Vanilla)
//         type: scfg
//         method: configs/methods/{backbone}/vanilla.yaml   # {backbone} = the backbone's name; omitted: its preset
//       - name: S-CFG (GoCA)
//         type: scfg
//         method: configs/methods/{backbone}/scfg.yaml
//         backbones: [sd15]             # optional: only these backbones
//     metrics:
//       inception: /models/pt_inception-2015-12-05.safetensors   # tools/convert/fid_inception.py
//       reference_stats: /data/fid_stats_coco_val2014.npz       # mu, sigma
//       clip: /models/clip-vit-base-patch32                       # a Hugging Face CLIPModel folder
//     save_images: true                 # <run>/images/<backbone>/<guidance>/<scale>/<id>.png
//     synthetic: false                  # true: random-weight models; tables and report say so
#include "harness/backbones/factory.h"
#include "harness/config/config.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gb::runner {

struct DatasetEntry {
  std::string name;
  std::string config_path;             // dataset config file ("" = only `set` keys, `dataset:` required)
  std::vector<std::string> overrides;  // "key=value" for load_dataset_config
  int64_t synthetic_images = 0;
};

struct BackboneEntry {
  std::string name;
  std::string kind;
  std::string weights;
  std::string dtype;                // as written ("" = the backbone's default)
  YAML::Node options_yaml;          // `options:` as written (the config hash; an empty mapping when the entry has none)
  gb::bb::BackboneOptions options;  // dtype and options read (device and seed are the run's)
};

// One expanded method variant (per backbone).
struct Variant {
  std::string name;                           // "GoCA", "GoCA/head_method=average"
  std::string method;                         // Table 1 "Method"
  std::string type;                           // Table 1 "Type"
  std::string group;                          // ablation group, "" for main-table methods
  std::map<std::string, std::string> axes;    // ablated key -> value
  YAML::Node method_yaml;                     // resolved method mapping (file + set + axis values), for hashing
  std::string method_file;                    // the method file (baselines/method_yaml.h)
  std::vector<std::string> method_overrides;  // `set` keys and axis values, as "key=value"
};

// One `generation.guidance` entry for one backbone.
struct GuidanceEntry {
  std::string name;         // table row label ("CFG", "S-CFG (GoCA)")
  std::string type;         // cfg | scfg (gb::gen::guidance_names())
  std::string method_file;  // S-CFG's mask method ({backbone} replaced); "" = the backbone's preset
  YAML::Node method_yaml;   // the method file's mapping (config hash), null without one
};

struct GenerationSpec {
  std::string prompts;
  int64_t limit = -1;
  int64_t steps = 0;
  std::string scheduler;
  int64_t image_size = 0;
  std::vector<double> scales;
  std::map<std::string, std::vector<GuidanceEntry>> guidance;  // per backbone name, in config order
  std::string inception, reference_stats, clip;
  bool save_images = true;
  bool synthetic = false;
};

struct Experiment {
  std::string name;
  std::string output_root = "runs";
  uint64_t seed = 0;
  int64_t batch_size = 1;
  bool batch_invariant = true;  // gb::capture_each_sample: one forward per image
  int64_t workers = 2;
  std::string device = "auto";
  int64_t examples = 3;
  std::string select = "best";
  std::vector<DatasetEntry> datasets;
  std::vector<BackboneEntry> backbones;
  std::map<std::string, std::vector<Variant>> variants;  // per backbone name, in config order
  std::optional<GenerationSpec> generation;              // a generation experiment (no datasets, no methods)
  std::string resolved_yaml;                             // the whole resolved config
  std::string source;

  std::string run_dir() const;  // <output_root>/<name>
};

// Loads and expands an experiment. `overrides` are `--set a.b=value` assignments. Relative paths inside
// the file (dataset and method configs) resolve against the current directory first, then the config's
// folder. UserError with file and line on any problem.
Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
Experiment parse_experiment(const gb::Config& config);
// One `backbones:` entry (name, kind, weights, dtype, options read with the kind's schema; file:line errors).
BackboneEntry read_backbone_entry(const ConfigReader& entry);

// The method variants of one entry of `methods` or one ablation, expanded (exposed for tests).
std::vector<std::map<std::string, std::string>> grid_product(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& axes);

// Canonical JSON of a YAML node (maps with sorted keys), for hashing and results.json.
nlohmann::json yaml_to_json(const YAML::Node& node);

}  // namespace gb::runner
