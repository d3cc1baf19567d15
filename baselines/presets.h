#pragma once
// The method presets of the paper, per backbone (spec goca-method.md §I; checked against the paper's
// src-main/configs/config-model/config_model_*.py, see docs/methods.md):
//
//   backbone       variant    paper config   head / layer / rescale                              layers
//   sd15           vanilla    15_vanilla     average / vanilla / per-token renorm+               all 16
//   sd15           baseline   15_baseline    average / vanilla / per-token renorm+               8 hand-picked
//   sd15           goca       15             dot-product w/o clamp / dot-product similarity /    all 16
//                                            sum-1 rescaling + per-token renorm+
//   sd15           fttm       fttm           baseline + dense CRF after the affinity             8 hand-picked
//   sdxl           vanilla    xl_vanilla     vanilla                                             all 70
//   sdxl           goca       xl             goca                                                all 70
//   pixart-sigma   vanilla    sigma_vanilla  vanilla                                             blocks 10-17
//   pixart-sigma   goca       sigma          goca                                                all 28
//   flux           vanilla    flux_vanilla   vanilla                                             blocks 8, 28, 47
//   flux           goca       flux           average / dot-product similarity / sum-1 + renorm+  all 57
//
// The generation presets (S-CFG's masks, harness/generation/scfg.h; the paper's
// src-additional/generation-experiment/configs/config_model_{15,sigma}.py), kept apart from the segmentation table:
//
//   sd15           scfg       gen_15         goca with ref_mode full (get_mask reads every reference    all 16
//                                            channel), affinity order 2, 512 x 512
//   pixart-sigma   scfg       gen_sigma      goca with ref_mode full, affinity order 5, 512 x 512        blocks 10-17
//
// Beyond the paper's four models (issue 16; `paper_config` names the config a preset follows, `derived` says it
// is not that config verbatim, and the note says what changed and why):
//   pixart-alpha      vanilla/goca   alpha_vanilla / alpha (verbatim: 512², t = 100; the paper ran the
//                                    512x512 checkpoint, this kind is the 1024-MS one, which takes 512² too)
//   pixart-sigma-512  vanilla/goca   sigma_vanilla / sigma at 512² (the checkpoint's native size)
//   sd21, sd21-base   vanilla/goca   15_vanilla / 15 (the SD 2.x UNet has SD1.5's block layout) at 768² / 512²
//   sd35-medium/large vanilla/goca   flux_vanilla / flux layer choices mapped to relative depth, t = 150,
//                                    GoCA with the dot-product head (every MMDiT block stores its values)
//
// A preset is a MethodPlan: the goca::MethodConfig, the post-processing chain, and the capture settings
// (image size, timestep) the paper ran it with.
#include "goca/method_config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gb::baselines {

// The paper's post-processing chain after the score maps (§E): `affinity` propagation (every config),
// followed by the dense CRF for FTTM.
enum class PostProcess {
  None,      // "none": the score maps before propagation (self_layers must be empty)
  Affinity,  // "affinity": propagation with self_layers / propagation_order
  Dcrf,      // "dcrf": affinity, then FTTM's dense CRF at image resolution (needs the image)
};
PostProcess parse_post_process(const std::string& s);  // UserError listing the spellings
const char* to_string(PostProcess p);
std::vector<std::string> post_process_spellings();

// How the capture the method reads was made (spec §A, §I). Informational for `segment`, used by runs.
struct CaptureSettings {
  int64_t image_size = 512;  // the square the image is resized to
  int64_t timestep = 100;    // the noise level t of the single forward pass
  bool operator==(const CaptureSettings& o) const { return image_size == o.image_size && timestep == o.timestep; }
};

struct MethodPlan {
  goca::MethodConfig method;
  PostProcess post = PostProcess::Affinity;
  CaptureSettings capture;
};

// Field-by-field equality (MethodConfig has no operator==).
bool same_method(const goca::MethodConfig& a, const goca::MethodConfig& b);
bool same_plan(const MethodPlan& a, const MethodPlan& b);

struct Preset {
  std::string backbone;      // "sd15", "sdxl", "pixart-sigma", "flux"
  std::string variant;       // "vanilla", "baseline", "goca", "fttm"
  std::string paper_config;  // the paper's config file suffix: "15_vanilla", "xl", "fttm", ...
  MethodPlan plan;
  std::string note;      // what is special about it (written into the shipped YAML's header)
  bool derived = false;  // follows `paper_config` with the changes the note gives (a backbone the paper lacks)
};

// Every segmentation preset, in the table's order.
const std::vector<Preset>& all_presets();
// The generation presets (second table), variant "scfg".
const std::vector<Preset>& generation_presets();
// The paper's file a preset comes from, e.g. "src-main/configs/config-model/config_model_15.py".
std::string paper_config_file(const Preset& p);
std::vector<std::string> preset_backbones();  // "sd15", "sdxl", "pixart-sigma", "flux", then the issue-16 ones
// Either table. UserError listing the available ones when the pair does not exist.
const Preset& find_preset(const std::string& backbone, const std::string& variant);

// Layer-key lists of the paper's configs (forward order), for presets, ablations and tests.
namespace layers {
std::vector<std::string> sd15_all();       // the 16 cross maps
std::vector<std::string> sd15_baseline();  // the 8 hand-picked ones (15_baseline, fttm)
std::vector<std::string> sd15_self();      // up-level3 r0, r1, down-level0 r1
std::vector<std::string> sdxl_all();       // the 70 cross maps
std::vector<std::string> sdxl_self();      // up-level1 r0b0, r0b1, r1b0, r1b1, r2b0, down-level1 r0b0, r0b1
// `vit-block{i}-cross-map` / `vit-block{i}-self-map` for i in `blocks` (PixArt and Flux naming).
std::vector<std::string> dit_cross(const std::vector<int>& blocks);
std::vector<std::string> dit_self(const std::vector<int>& blocks);
std::vector<int> range(int first, int last);  // [first, last]
}  // namespace layers

}  // namespace gb::baselines
