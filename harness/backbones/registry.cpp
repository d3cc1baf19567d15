#include "harness/backbones/registry.h"

#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/sd3_backbone.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/backbones/synthetic_backbone.h"
#include "harness/config/config.h"
#include "harness/core/errors.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>

namespace gb::bb {

std::vector<TokenIdInput> t5_clip_token_id_inputs(const CheckpointFolder& f, const std::string& t5_component,
                                                  int64_t t5_length) {
  auto t = T5Config::from_json(f.file(t5_component));
  auto c = ClipTextConfig::from_json(f.file("text_encoder"));
  return {{"--token-ids", "T5 text encoder", t.vocab_size, t5_length, t.pad_token_id},
          {"--clip-token-ids", "CLIP text encoder", c.vocab_size, c.max_position_embeddings, c.vocab_size - 1}};
}

// ---- The registry: one line per kind. ----
const std::vector<BackboneKind>& backbone_kinds() {
  static const std::vector<BackboneKind> kinds = {
      sd15_backbone_kind(),         sd21_backbone_kind(),         sd21_base_backbone_kind(),
      sdxl_backbone_kind(),         pixart_sigma_backbone_kind(), pixart_sigma_512_backbone_kind(),
      pixart_alpha_backbone_kind(), flux_backbone_kind(),         sd35_medium_backbone_kind(),
      sd35_large_backbone_kind(),   synthetic_backbone_kind(),
  };
  return kinds;
}

std::string known_kinds(bool checkpoint_only) {
  std::string known;
  for (const auto& k : backbone_kinds())
    if (!checkpoint_only || k.needs_weights) known += (known.empty() ? "" : ", ") + k.kind;
  return known;
}

const BackboneKind& backbone_kind(const std::string& kind) {
  for (const auto& k : backbone_kinds())
    if (k.kind == kind) return k;
  fail("unknown backbone '{}' (known: {})", kind, known_kinds());
}

namespace {

template <typename T>
T param_value(const BackboneOptions& o, const std::string& key, const T& fallback) {
  auto it = o.params.find(key);
  if (it == o.params.end()) return fallback;
  try {
    return YAML::Load(it->second).as<T>();
  } catch (const YAML::Exception& e) {
    fail("option {}: '{}' is not a valid value ({})", key, it->second, e.what());
  }
}

// "a", "a or b", "a, b or c"
std::string or_list(const std::vector<TextEncoderResidency>& modes) {
  std::string s;
  for (size_t i = 0; i < modes.size(); ++i)
    s += (i == 0 ? "" : i + 1 == modes.size() ? " or " : ", ") + to_string(modes[i]);
  return s;
}

}  // namespace

int64_t param_or(const BackboneOptions& o, const std::string& key, int64_t fallback) {
  return param_value(o, key, fallback);
}
double param_or(const BackboneOptions& o, const std::string& key, double fallback) {
  return param_value(o, key, fallback);
}
std::string param_or(const BackboneOptions& o, const std::string& key, const std::string& fallback) {
  auto it = o.params.find(key);
  return it == o.params.end() ? fallback : it->second;
}
std::vector<double> param_or(const BackboneOptions& o, const std::string& key, const std::vector<double>& fallback) {
  return param_value(o, key, fallback);
}

TextEncoderResidency parse_text_encoder(const BackboneKind& kind, const std::string& value) {
  for (auto m : kind.text_encoder_modes)
    if (to_string(m) == value) return m;
  for (auto m : {TextEncoderResidency::keep, TextEncoderResidency::offload, TextEncoderResidency::free})
    if (to_string(m) == value) return m;  // a mode of other kinds: check_options says which
  fail("text_encoder must be {}, not '{}'", or_list(kind.text_encoder_modes), value);
}

void read_backbone_options(const BackboneKind& k, const ConfigReader& r, BackboneOptions& o) {
  if (k.takes("image_size"))
    if (auto v = r.get_optional<int64_t>("image_size")) {
      if (*v <= 0) r.fail_at("image_size", "must be positive");
      o.image_size = *v;
    }
  if (k.takes("timestep"))
    if (auto v = r.get_optional<int64_t>("timestep")) {
      if (*v < 0 || *v > 999) r.fail_at("timestep", "must be in [0, 999]");
      o.timestep = *v;
    }
  if (k.takes("variant")) o.variant = r.get_or<std::string>("variant", o.variant);
  if (k.takes("store_dtype") && r.get_optional<std::string>("store_dtype"))
    o.store_dtype = r.get_enum("store_dtype", dtype_names());
  if (k.takes("text_encoder"))
    if (auto v = r.get_optional<std::string>("text_encoder")) {
      try {
        o.text_encoder = parse_text_encoder(k, *v);
        BackboneOptions mode;
        mode.text_encoder = o.text_encoder;
        check_options(k, mode);
      } catch (const UserError& e) {
        r.fail_at("text_encoder", e.what());
      }
    }
  if (k.takes("t5_int8"))
    if (auto v = r.get_optional<bool>("t5_int8")) o.t5_int8 = *v;
  for (const auto& p : k.params) {
    if (!r.has(p.key) || r.node(p.key).IsNull()) continue;
    switch (p.type) {  // checked here (file:line), kept as written
      case BackboneParam::Type::integer: r.get<int64_t>(p.key); break;
      case BackboneParam::Type::number: r.get<double>(p.key); break;
      case BackboneParam::Type::numbers: r.get<std::vector<double>>(p.key); break;
      case BackboneParam::Type::text: o.params[p.key] = r.get<std::string>(p.key); continue;
    }
    o.params[p.key] = YAML::Dump(r.node(p.key));
  }
}

bool BackboneKind::takes(const std::string& option) const {
  return std::find(options.begin(), options.end(), option) != options.end();
}

void check_options(const BackboneKind& k, const BackboneOptions& o) {
  // Which kinds take an option, for the message ("t5_int8 is a flux option").
  auto takers = [](const std::string& option) {
    std::string s;
    for (const auto& x : backbone_kinds())
      if (x.takes(option)) s += (s.empty() ? "" : ", ") + x.kind;
    return s;
  };
  if (o.t5_int8 && !k.takes("t5_int8"))
    fail("{}: t5_int8 is a {} option (this backbone has no T5)", k.kind, takers("t5_int8"));
  const auto& modes = k.text_encoder_modes;
  if (std::find(modes.begin(), modes.end(), o.text_encoder) == modes.end()) {
    std::string others;
    for (const auto& x : backbone_kinds())
      if (std::find(x.text_encoder_modes.begin(), x.text_encoder_modes.end(), o.text_encoder) !=
          x.text_encoder_modes.end())
        others += (others.empty() ? "" : ", ") + x.kind;
    fail("{}: text_encoder must be {}, not '{}' (backbones that take it: {})", k.kind, or_list(modes),
         to_string(o.text_encoder), others);
  }
  auto refuse = [&](bool set, const char* option) {
    if (set && !k.takes(option)) fail("{}: option {} does not apply to this backbone", k.kind, option);
  };
  refuse(o.image_size.has_value(), "image_size");
  refuse(o.timestep.has_value(), "timestep");
  refuse(!o.variant.empty(), "variant");
  refuse(o.store_dtype.has_value(), "store_dtype");
  for (const auto& entry : o.params) {
    const std::string& key = entry.first;
    if (std::none_of(k.params.begin(), k.params.end(), [&](const BackboneParam& p) { return p.key == key; }))
      fail("{}: unknown option '{}'", k.kind, key);
  }
}

std::string detect_backbone_kind(const std::string& folder) {
  CheckpointFolder f(folder);
  std::vector<const BackboneKind*> hits;
  for (const auto& k : backbone_kinds())
    if (k.detect_from_weights && k.detect_from_weights(f)) hits.push_back(&k);
  if (hits.empty())
    fail_file(folder, "cannot detect the backbone kind from the weights (no unet/ or transformer/ of a known kind)");
  if (hits.size() > 1) fail_file(folder, "weights match several backbone kinds ({}, {})", hits[0]->kind, hits[1]->kind);
  const auto& kind = *hits[0];
  auto cls = f.pipeline_class();
  if (!cls.empty() &&
      std::find(kind.pipeline_classes.begin(), kind.pipeline_classes.end(), cls) == kind.pipeline_classes.end())
    fail_file((std::filesystem::path(folder) / "model_index.json").string(),
              "pipeline class '{}' disagrees with the weights, which are {}", cls, kind.kind);
  return kind.kind;
}

std::unique_ptr<Backbone> open_backbone(const std::string& folder, const BackboneOptions& options,
                                        const std::string& expected_kind) {
  auto kind = detect_backbone_kind(folder);
  if (!expected_kind.empty() && expected_kind != kind)
    fail_file(folder, "expected a {} checkpoint but the weights are {}", expected_kind, kind);
  const auto& k = backbone_kind(kind);
  check_options(k, options);
  return k.load(CheckpointFolder(folder), options);
}

std::unique_ptr<Backbone> make_backbone(const std::string& kind, const std::string& weights,
                                        const BackboneOptions& options) {
  const auto& k = backbone_kind(kind);
  if (!k.needs_weights) {
    if (!weights.empty()) fail("backbone {} takes no weights (got '{}')", kind, weights);
    check_options(k, options);
    return k.load(std::nullopt, options);
  }
  if (weights.empty()) fail("backbone {}: `weights:` (a diffusers checkpoint folder) is required", kind);
  return open_backbone(weights, options, kind);
}

}  // namespace gb::bb
