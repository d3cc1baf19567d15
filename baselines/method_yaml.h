#pragma once
// Method files (configs/methods/<backbone>/<variant>.yaml, and the `segment` command's M.yaml):
//
//   head_method: dot_product_no_clamp        # or the paper's spelling 'dot-product w/o clamp'
//   layer_method: dot_product_similarity     # 'dot-product similarity'
//   rescale_method: sum1_renorm_plus         # 'sum-1 rescaling + per-token renorm+'
//   layers: [<block>-cross-map, ...]         # forward order
//   ref_layer: up-level2-repeat1-vit-block0-cross-q   # needed unless layer_method is vanilla
//   ref_mode: paper                          # paper (channel 0, quirk Q1) | full
//   multi_token: mean                        # mean | sum
//   output_size: 64
//   self_layers: [<block>-self-map, ...]     # affinity propagation (empty: none)
//   propagation_order: 2
//   keep_all_objects: false                  # optional
//   post: affinity                           # optional: none | affinity | dcrf (FTTM: affinity, then dense CRF)
//   capture: {image_size: 512, timestep: 100}   # optional: how the capture was made (used by runs)
//
// Reading is strict (harness/config ConfigReader): unknown keys, wrong types and unknown method
// spellings are gb::UserErrors that name the file and line and list the accepted spellings.
#include "baselines/presets.h"
#include "harness/config/config.h"

#include <map>
#include <string>
#include <vector>

namespace gb::baselines {

// Reads the method keys of one mapping (the root of a method file, or a `method:` block of a larger
// config) and calls finish() on it. `source` prefixes validation errors that have no single key.
MethodPlan read_method_plan(const ConfigReader& reader, const std::string& source);

// Loads a method file (with `_base_` includes and `--set` style overrides, see harness/config/config.h).
MethodPlan load_method_plan(const std::string& path, const std::vector<std::string>& overrides = {});
MethodPlan parse_method_plan(const std::string& yaml, const std::string& source);

// The canonical YAML of a plan: canonical enum names with the paper's spelling as a comment, every key
// written (so a file states the whole method). `title` becomes the first comment line(s).
std::string method_plan_to_yaml(const MethodPlan& plan, const std::string& title = "");

// The ablation axes (configs/methods/ablations.yaml, spec §J): the values each axis may take.
struct AblationAxes {
  std::vector<goca::HeadMethod> head_method;
  std::vector<goca::LayerMethod> layer_method;
  std::vector<goca::RescaleMethod> rescale_method;
  std::vector<goca::RefMode> ref_mode;
  std::vector<goca::MultiToken> multi_token;
  std::vector<int64_t> propagation_order;
  std::vector<PostProcess> post;
  std::vector<bool> keep_all_objects;
  // Named layer sets per backbone: layer_sets[backbone][name] = cross-map keys (and self_layer_sets for
  // the propagation maps).
  std::map<std::string, std::map<std::string, std::vector<std::string>>> layer_sets;
  std::map<std::string, std::map<std::string, std::vector<std::string>>> self_layer_sets;
};
AblationAxes load_ablation_axes(const std::string& path);

}  // namespace gb::baselines
