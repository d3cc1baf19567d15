#include "harness/generation/setup.h"

#include "baselines/method_yaml.h"
#include "baselines/presets.h"
#include "goca/segmentor.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/registry.h"
#include "harness/backbones/vae.h"
#include "harness/core/errors.h"
#include "harness/generation/scfg.h"

namespace gb::gen {

int64_t default_image_size(const std::string& weights, const std::string& kind) {
  bb::CheckpointFolder f(weights);
  const auto vcfg = bb::VaeConfig::from_json(f.file("vae"));
  const int64_t scale = vcfg.scale_factor();
  if (kind == "flux") return 128 * scale;
  const std::string comp = f.has_component("unet") ? "unet" : "transformer";
  int64_t sample = 0;
  bb::json_get(bb::read_json_file(f.file(comp)), "sample_size", sample, f.file(comp));
  if (sample <= 0) fail_file(f.file(comp), "no sample_size (pass --image-size)");
  return sample * scale;
}

void check_generation_memory(const std::string& what, const std::string& kind, const std::string& weights,
                             const bb::BackboneOptions& options, const std::string& guidance, const std::string& method,
                             int64_t batch, const bb::MemoryCheck& check,
                             const std::vector<bb::ComponentWeights>& resident_models) {
  if (!bb::backbone_kind(kind).memory) return;
  bb::MemoryPlanOptions mo = bb::memory_plan_options(kind, weights, options);
  mo.resident_models = resident_models;
  if (guidance == "scfg" && (!method.empty() || !scfg_preset_backbone(kind).empty())) {
    const auto plan = method.empty() ? baselines::find_preset(scfg_preset_backbone(kind), "scfg").plan
                                     : baselines::load_method_plan(method);
    mo.spec = goca::Segmentor(plan.method).required_capture();
  }
  bb::check_memory_fits(what, mo, 2 * batch, check);
}

}  // namespace gb::gen
