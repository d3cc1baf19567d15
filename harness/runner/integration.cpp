#include "harness/runner/integration.h"

#include "harness/config/config.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"
#include "harness/backbones/factory.h"
#include "harness/runner/synthetic_backbone.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/text/pyset.h"

#include <set>

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
  o.protocol = dataset.protocol == gb::datasets::Protocol::Paper ? gb::text::PromptProtocol::paper
                                                                 : gb::text::PromptProtocol::standard;
  return std::make_unique<gb::text::PromptBuilder>(classes.synonym_lists(), tokenizer, o);
}

PreparedPrompt build_prompt(const gb::text::PromptBuilder& builder, const gb::datasets::Sample& sample,
                            const std::string& caption, const gb::datasets::DatasetConfig& dataset) {
  const std::vector<int64_t> gt = dataset.protocol == gb::datasets::Protocol::Paper
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

namespace {

template <typename T>
void opt_key(const YAML::Node& n, const char* key, T& out) {
  if (n && n[key]) out = n[key].as<T>();
}

}  // namespace

std::unique_ptr<gb::Backbone> make_backbone(const BackboneEntry& e, const std::string& device, uint64_t seed) {
  if (e.kind == "synthetic") {
    SyntheticBackboneConfig c = SyntheticBackboneConfig::sd15_like();
    c.seed = seed;
    std::string merges;
    const YAML::Node& o = e.options;
    try {
      if (o && !o.IsMap()) fail("backbone '{}': options must be a mapping", e.name);
      static const std::set<std::string> known = {"tokenizer", "heads", "head_dim", "sos_logit", "sos_pixel_amplitude",
                                                  "content_gain", "filler_logit", "value_noise", "self_beta",
                                                  "self_sigma", "self_floor", "distractor_sharpness", "head_reliability"};
      if (o)
        for (const auto& kv : o)
          if (!known.count(kv.first.Scalar())) fail("backbone '{}': unknown synthetic option '{}'", e.name, kv.first.Scalar());
      opt_key(o, "tokenizer", merges);
      opt_key(o, "heads", c.heads);
      opt_key(o, "head_dim", c.head_dim);
      opt_key(o, "sos_logit", c.sos_logit);
      opt_key(o, "sos_pixel_amplitude", c.sos_pixel_amplitude);
      opt_key(o, "content_gain", c.content_gain);
      opt_key(o, "filler_logit", c.filler_logit);
      opt_key(o, "value_noise", c.value_noise);
      opt_key(o, "self_beta", c.self_beta);
      opt_key(o, "self_sigma", c.self_sigma);
      opt_key(o, "self_floor", c.self_floor);
      opt_key(o, "distractor_sharpness", c.distractor_sharpness);
      opt_key(o, "head_reliability", c.head_reliability);
    } catch (const YAML::Exception& ex) {
      fail("backbone '{}': bad synthetic option: {}", e.name, ex.what());
    }
    if (merges.empty())
      fail("backbone '{}': the synthetic backbone needs options.tokenizer (a CLIP merges file)", e.name);
    std::shared_ptr<const gb::TextTokenizer> tok = gb::text::ClipTokenizer::from_merges(merges);
    return std::make_unique<SyntheticBackbone>(c, tok, device);
  }
  if (e.weights.empty()) fail("backbone '{}': `weights:` (a diffusers checkpoint folder) is required", e.name);
  gb::bb::BackboneOptions bo;
  bo.device = device;
  if (e.dtype == "fp16") bo.dtype = at::kHalf;
  else if (e.dtype == "bf16") bo.dtype = at::kBFloat16;
  else if (e.dtype == "fp32") bo.dtype = at::kFloat;
  else if (!e.dtype.empty()) fail("backbone '{}': dtype must be fp16, bf16 or fp32", e.name);
  return gb::bb::open_backbone(e.weights, bo, e.kind);
}

}  // namespace gb::runner
