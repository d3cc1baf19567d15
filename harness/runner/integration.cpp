#include "harness/runner/integration.h"

#include "harness/config/config.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"
#include "harness/backbones/factory.h"
#include "harness/backbones/memory_plan.h"
#include "harness/runner/synthetic_backbone.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/text/pyset.h"

#include <optional>
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

std::optional<at::ScalarType> parse_dtype(const std::string& name, const std::string& what, const std::string& v) {
  if (v.empty()) return std::nullopt;
  if (v == "fp16") return at::kHalf;
  if (v == "bf16") return at::kBFloat16;
  if (v == "fp32") return at::kFloat;
  fail("backbone '{}': {} must be fp16, bf16 or fp32, not '{}'", name, what, v);
}

// BackboneOptions of a checkpoint backbone entry (device left at its default).
gb::bb::BackboneOptions checkpoint_options(const BackboneEntry& e) {
  gb::bb::BackboneOptions bo;
  bo.dtype = parse_dtype(e.name, "dtype", e.dtype);
  const YAML::Node& o = e.options;
  // No `options:` (or `options:` with nothing after it) means the defaults. A default-constructed YAML::Node is
  // a *defined* null node, so `!o` alone does not catch it.
  if (!o || o.IsNull()) return bo;
  if (!o.IsMap()) fail("backbone '{}': options must be a mapping", e.name);
  static const std::set<std::string> known = {"image_size", "timestep", "variant", "store_dtype", "text_encoder", "t5_int8"};
  for (const auto& kv : o)
    if (!known.count(kv.first.Scalar()))
      fail("backbone '{}': unknown option '{}' (image_size, timestep, variant, store_dtype, text_encoder, t5_int8)",
           e.name, kv.first.Scalar());
  try {
    if (o["image_size"]) bo.image_size = o["image_size"].as<int64_t>();
    if (o["timestep"]) bo.timestep = o["timestep"].as<int64_t>();
    if (o["variant"]) bo.variant = o["variant"].as<std::string>();
    if (o["store_dtype"]) bo.store_dtype = parse_dtype(e.name, "options.store_dtype", o["store_dtype"].as<std::string>());
    if (o["t5_int8"]) bo.t5_int8 = o["t5_int8"].as<bool>();
    if (o["text_encoder"]) {
      try {
        bo.text_encoder = gb::bb::parse_text_encoder_residency(o["text_encoder"].as<std::string>());
      } catch (const gb::UserError& ex) {
        fail("backbone '{}': options.{}", e.name, ex.what());
      }
    }
  } catch (const YAML::Exception& ex) {
    fail("backbone '{}': bad option value: {}", e.name, ex.what());
  }
  if (bo.image_size && *bo.image_size <= 0) fail("backbone '{}': options.image_size must be positive", e.name);
  if (bo.timestep && (*bo.timestep < 0 || *bo.timestep > 999))
    fail("backbone '{}': options.timestep must be in [0, 999]", e.name);
  return bo;
}

}  // namespace

std::unique_ptr<gb::Backbone> make_backbone(const BackboneEntry& e, const std::string& device, uint64_t seed) {
  if (e.kind == "synthetic") {
    SyntheticBackboneConfig c = SyntheticBackboneConfig::sd15_like();
    c.seed = seed;
    std::string merges, text_encoder = "keep";
    const YAML::Node& o = e.options;
    try {
      if (o && !o.IsNull() && !o.IsMap()) fail("backbone '{}': options must be a mapping", e.name);
      static const std::set<std::string> known = {"tokenizer", "heads", "head_dim", "sos_logit", "sos_pixel_amplitude",
                                                  "content_gain", "filler_logit", "value_noise", "self_beta",
                                                  "self_sigma", "self_floor", "distractor_sharpness", "head_reliability",
                                                  "text_encoder"};
      if (o && o.IsMap())
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
      opt_key(o, "text_encoder", text_encoder);
      if (text_encoder != "keep" && text_encoder != "free")
        fail("backbone '{}': the synthetic backbone's text_encoder is keep or free, not '{}'", e.name, text_encoder);
    } catch (const YAML::Exception& ex) {
      fail("backbone '{}': bad synthetic option: {}", e.name, ex.what());
    }
    if (merges.empty())
      fail("backbone '{}': the synthetic backbone needs options.tokenizer (a CLIP merges file)", e.name);
    std::shared_ptr<const gb::TextTokenizer> tok = gb::text::ClipTokenizer::from_merges(merges);
    auto bb = std::make_unique<SyntheticBackbone>(c, tok, device);
    bb->require_prepared_prompts(text_encoder == "free");
    return bb;
  }
  if (e.weights.empty()) fail("backbone '{}': `weights:` (a diffusers checkpoint folder) is required", e.name);
  gb::bb::BackboneOptions bo = checkpoint_options(e);
  bo.device = device;
  return gb::bb::open_backbone(e.weights, bo, e.kind);
}

int64_t planned_peak_bytes(const BackboneEntry& e, const std::string& kind, const gb::CaptureSpec& spec,
                           int64_t batch) {
  if (kind == "synthetic") return 0;
  const gb::bb::BackboneOptions bo = checkpoint_options(e);
  gb::bb::MemoryPlanOptions mo;
  mo.kind = kind;
  if (!e.weights.empty()) mo.folder = e.weights;
  mo.dtype = bo.dtype;
  mo.store_dtype = bo.store_dtype;
  mo.image_size = bo.image_size;
  mo.text_encoder = bo.text_encoder;
  mo.t5_int8 = bo.t5_int8;
  mo.spec = spec;
  return gb::bb::plan_memory(mo, batch).peak();
}

bool wants_prompt_preencoding(const BackboneEntry& e) {
  if (e.kind == "synthetic") {
    const YAML::Node& o = e.options;
    return o && o.IsMap() && o["text_encoder"] && o["text_encoder"].Scalar() == "free";
  }
  return checkpoint_options(e).text_encoder == gb::bb::TextEncoderResidency::free;
}

bool option_affects_results(const std::string& key) { return key != "tokenizer" && key != "text_encoder"; }

}  // namespace gb::runner
