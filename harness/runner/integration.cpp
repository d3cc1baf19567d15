#include "harness/runner/integration.h"

#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "harness/config/config.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/registry.h"
#include "harness/text/pyset.h"

#include <memory>

namespace gb::runner {

std::string resolve_device(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  if (requested == "auto") return gb::compat::cuda_available() ? "cuda" : "cpu";
  if (!gb::compat::cuda_available()) fail("device '{}' asked for, but CUDA is not available", requested);
  return requested;
}

std::unique_ptr<gb::text::PromptBuilder> make_prompt_builder(const gb::datasets::DatasetConfig& dataset,
                                                             const gb::datasets::ClassTable& classes,
                                                             const gb::TextTokenizer& tokenizer) {
  gb::text::PromptOptions o;
  o.add_background_token = dataset.add_background_token;
  o.add_missing_class = dataset.add_missing_class;
  o.protocol = dataset.protocol;
  return std::make_unique<gb::text::PromptBuilder>(classes.synonym_lists(), tokenizer, o);
}

PreparedPrompt build_prompt(const gb::text::PromptBuilder& builder, const gb::datasets::Sample& sample,
                            const std::string& caption, const gb::datasets::DatasetConfig& dataset) {
  const std::vector<int64_t> gt = dataset.protocol == gb::datasets::Protocol::paper
                                      ? gb::text::py_set_order(sample.gt_first_seen)
                                      : sample.gt_classes;
  gb::text::PromptResult r = builder.build(caption, gt);
  return {r.caption, std::move(r.groups)};
}

gb::datasets::DatasetConfig load_dataset_entry(const DatasetEntry& e) {
  // One reader for dataset configs: datasets/ owns the keys, the protocol defaults and their strict checks.
  const gb::Config cfg = e.config_path.empty() ? gb::Config::from_string("{}", "datasets[" + e.name + "]", e.overrides)
                                               : gb::Config::load(e.config_path, e.overrides);
  return gb::datasets::read_dataset_config(ConfigReader(cfg));
}

std::unique_ptr<gb::Backbone> make_backbone(const BackboneEntry& e, const std::string& device, uint64_t seed) {
  gb::bb::BackboneOptions bo = e.options;
  bo.device = device;
  bo.seed = seed;
  try {
    return gb::bb::make_backbone(e.kind, e.weights, bo);
  } catch (const gb::UserError& ex) {
    fail("backbone '{}': {}", e.name, ex.what());
  }
}

std::optional<gb::bb::MemoryPlanOptions> memory_plan_options(const BackboneEntry& e, const std::string& device,
                                                             const gb::CaptureSpec& spec, bool per_sample_forward) {
  if (!gb::bb::backbone_kind(e.kind).memory) return std::nullopt;
  gb::bb::BackboneOptions bo = e.options;
  bo.device = device;
  auto mo = gb::bb::memory_plan_options(e.kind, e.weights, bo);
  mo.spec = spec;
  mo.per_sample_forward = per_sample_forward;
  return mo;
}

int64_t planned_peak_bytes(const BackboneEntry& e, const std::string& device, const gb::CaptureSpec& spec,
                           int64_t batch, bool per_sample_forward) {
  const auto mo = memory_plan_options(e, device, spec, per_sample_forward);
  return mo ? gb::bb::plan_memory(*mo, batch).peak() : 0;
}

gb::CaptureSpec required_capture(const std::vector<Variant>& variants) {
  std::vector<std::unique_ptr<gb::baselines::PlanSegmentor>> segmentors;
  std::vector<const gb::baselines::PlanSegmentor*> all;
  for (const auto& v : variants) {
    segmentors.push_back(std::make_unique<gb::baselines::PlanSegmentor>(
        gb::baselines::load_method_plan(v.method_file, v.method_overrides), v.method_file));
    all.push_back(segmentors.back().get());
  }
  return gb::baselines::union_capture(all);
}

bool wants_prompt_preencoding(const BackboneEntry& e) {
  return e.options.text_encoder == gb::bb::TextEncoderResidency::free;
}

bool option_affects_results(const std::string& key) { return key != "tokenizer" && key != "text_encoder"; }

nlohmann::json backbone_hash_entry(const BackboneEntry& b) {
  nlohmann::json options = yaml_to_json(b.options_yaml);
  if (options.is_object())  // a tokenizer path or where the text encoder lives does not change results
    for (auto it = options.begin(); it != options.end();)
      it = option_affects_results(it.key()) ? std::next(it) : options.erase(it);
  return {{"name", b.name}, {"kind", b.kind}, {"dtype", b.dtype}, {"options", options}};
}

}  // namespace gb::runner
