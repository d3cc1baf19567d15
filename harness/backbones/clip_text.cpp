#include "harness/backbones/clip_text.h"

#include "harness/backbones/json_config.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"

#include <cmath>
#include <limits>

namespace gb::bb {

ClipTextConfig ClipTextConfig::clip_l() { return ClipTextConfig{}; }

ClipTextConfig ClipTextConfig::bigg() {
  ClipTextConfig c;
  c.hidden_size = 1280;
  c.intermediate_size = 5120;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 20;
  c.hidden_act = "gelu";
  c.projection_dim = 1280;
  c.with_projection = true;
  return c;
}

ClipTextConfig ClipTextConfig::openclip_h() {
  ClipTextConfig c;
  c.hidden_size = 1024;
  c.intermediate_size = 4096;
  c.num_hidden_layers = 23;
  c.num_attention_heads = 16;
  c.hidden_act = "gelu";
  c.projection_dim = 512;
  return c;
}

namespace {
void read_text_fields(const nlohmann::json& j, ClipTextConfig& c, const std::string& path) {
  json_get(j, "vocab_size", c.vocab_size, path);
  json_get(j, "hidden_size", c.hidden_size, path);
  json_get(j, "intermediate_size", c.intermediate_size, path);
  json_get(j, "num_hidden_layers", c.num_hidden_layers, path);
  json_get(j, "num_attention_heads", c.num_attention_heads, path);
  json_get(j, "max_position_embeddings", c.max_position_embeddings, path);
  json_get(j, "hidden_act", c.hidden_act, path);
  json_get(j, "layer_norm_eps", c.layer_norm_eps, path);
  json_get(j, "projection_dim", c.projection_dim, path);
  json_get(j, "eos_token_id", c.eos_token_id, path);
}

void check_text_config(const ClipTextConfig& c, const std::string& path) {
  if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu")
    fail_file(path, "hidden_act '{}' is not supported (quick_gelu or gelu)", c.hidden_act);
  if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
    fail_file(path, "hidden_size {} is not divisible by num_attention_heads {}", c.hidden_size, c.num_attention_heads);
}
}  // namespace

ClipTextConfig ClipTextConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  ClipTextConfig c;
  read_text_fields(j, c, path);
  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"])
      if (a == "CLIPTextModelWithProjection") c.with_projection = true;
  }
  check_text_config(c, path);
  return c;
}

ClipTextConfig ClipTextConfig::from_clip_model_json(const std::string& path) {
  auto j = read_json_file(path);
  ClipTextConfig c;  // transformers CLIPTextConfig() defaults
  c.hidden_size = 512;
  c.intermediate_size = 2048;
  c.num_attention_heads = 8;
  c.eos_token_id = 49407;
  auto it = j.find("text_config");
  if (it == j.end() || !it->is_object()) fail_file(path, "no \"text_config\" object (not a CLIPModel config.json)");
  read_text_fields(*it, c, path);
  c.projection_dim = 512;
  json_get(j, "projection_dim", c.projection_dim, path);
  c.with_projection = true;
  check_text_config(c, path);
  return c;
}

ClipEncoderLayer::ClipEncoderLayer(const WeightStore& l, int64_t d, int64_t f, int64_t heads_, double eps,
                                   Activation act_)
    : heads(heads_), act(act_) {
  ln1 = LayerNorm(l.sub("layer_norm1"), d, eps);
  ln2 = LayerNorm(l.sub("layer_norm2"), d, eps);
  q = Linear(l.sub("self_attn.q_proj"), d, d);
  k = Linear(l.sub("self_attn.k_proj"), d, d);
  v = Linear(l.sub("self_attn.v_proj"), d, d);
  out = Linear(l.sub("self_attn.out_proj"), d, d);
  fc1 = Linear(l.sub("mlp.fc1"), d, f);
  fc2 = Linear(l.sub("mlp.fc2"), f, d);
}

at::Tensor ClipEncoderLayer::operator()(const at::Tensor& x, const at::Tensor& mask) const {
  auto h = ln1(x);
  auto qh = split_heads(q(h), heads), kh = split_heads(k(h), heads), vh = split_heads(v(h), heads);
  double scale = 1.0 / std::sqrt(static_cast<double>(x.size(-1) / heads));
  auto o = compat::scaled_dot_product_attention(qh, kh, vh,
                                                mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, scale);
  auto y = x + out(merge_heads(o));
  return y + fc2(activate(fc1(ln2(y)), act));
}

ClipTextModel::ClipTextModel(const ClipTextConfig& config, const WeightStore& ws)
    : config_(config), act_(config.hidden_act == "gelu" ? Activation::GELU : Activation::QuickGELU) {
  auto tm = ws.sub("text_model");
  const int64_t d = config.hidden_size, f = config.intermediate_size;
  token_embedding_ = tm.get("embeddings.token_embedding.weight", {config.vocab_size, d});
  position_embedding_ = tm.get("embeddings.position_embedding.weight", {config.max_position_embeddings, d});
  tm.ignore("embeddings.position_ids");
  for (int64_t i = 0; i < config.num_hidden_layers; ++i)
    layers_.emplace_back(tm.sub("encoder.layers." + std::to_string(i)), d, f, config.num_attention_heads,
                         config.layer_norm_eps, act_);
  final_ln_ = LayerNorm(tm.sub("final_layer_norm"), d, config.layer_norm_eps);
  if (config.with_projection) projection_ = Linear(ws.sub("text_projection"), d, config.projection_dim, false);
}

ClipTextOutput ClipTextModel::forward(const at::Tensor& ids_in, bool need_last) const {
  auto ids = ids_in.to(token_embedding_.device(), at::kLong);
  const int64_t t = ids.size(1);
  if (t > config_.max_position_embeddings)
    fail("CLIP text encoder: {} tokens exceed max_position_embeddings {}", t, config_.max_position_embeddings);
  auto x = at::embedding(token_embedding_, ids) + position_embedding_.narrow(0, 0, t).unsqueeze(0);
  // Causal mask as transformers builds it: the dtype's lowest value above the diagonal, 0 elsewhere.
  double lowest = x.scalar_type() == at::kHalf       ? -65504.0
                  : x.scalar_type() == at::kBFloat16 ? -3.3895313892515355e38
                  : x.scalar_type() == at::kDouble   ? std::numeric_limits<double>::lowest()
                                                     : static_cast<double>(std::numeric_limits<float>::lowest());
  auto mask = at::triu(at::full({t, t}, lowest, x.options()), 1);
  ClipTextOutput out;
  const int64_t n = config_.num_hidden_layers;
  for (int64_t i = 0; i + 1 < n; ++i) x = layers_[i](x, mask);
  out.penultimate = x;
  if (!need_last) return out;
  x = layers_[n - 1](x, mask);
  out.last_hidden_state = final_ln_(x);
  at::Tensor eos_pos =
      config_.eos_token_id == 2 ? ids.argmax(-1) : ids.eq(config_.eos_token_id).to(at::kInt).argmax(-1);
  const int64_t b = ids.size(0);
  auto flat_pos = at::arange(b, ids.options()) * t + eos_pos;
  out.pooled = out.last_hidden_state.reshape({b * t, -1}).index_select(0, flat_pos);
  if (config_.with_projection) out.text_embeds = projection_(out.pooled);
  return out;
}

}  // namespace gb::bb
