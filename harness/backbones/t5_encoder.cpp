#include "harness/backbones/t5_encoder.h"

#include "harness/backbones/json_config.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"

#include <cmath>
#include <filesystem>
#include <limits>

namespace gb::bb {

T5Config T5Config::from_json(const std::string& path) {
  auto j = read_json_file(path);
  T5Config c;
  for (const char* k : {"d_model", "d_kv", "d_ff", "num_layers", "num_heads"})
    if (!j.contains(k)) fail_file(path, "required field '{}' is missing", k);
  json_get(j, "vocab_size", c.vocab_size, path);
  json_get(j, "d_model", c.d_model, path);
  json_get(j, "d_kv", c.d_kv, path);
  json_get(j, "d_ff", c.d_ff, path);
  json_get(j, "num_layers", c.num_layers, path);
  json_get(j, "num_heads", c.num_heads, path);
  json_get(j, "relative_attention_num_buckets", c.relative_attention_num_buckets, path);
  json_get(j, "relative_attention_max_distance", c.relative_attention_max_distance, path);
  json_get(j, "layer_norm_epsilon", c.layer_norm_epsilon, path);
  c.feed_forward_proj = "relu";  // transformers' default
  json_get(j, "feed_forward_proj", c.feed_forward_proj, path);
  json_get(j, "pad_token_id", c.pad_token_id, path);
  json_get(j, "eos_token_id", c.eos_token_id, path);
  std::string act = "gelu_new";
  json_get(j, "dense_act_fn", act, path);
  if (c.feed_forward_proj != "gated-gelu")
    fail_file(path, "feed_forward_proj '{}' is not supported (T5 v1.1 uses 'gated-gelu')", c.feed_forward_proj);
  if (act != "gelu_new") fail_file(path, "dense_act_fn '{}' is not supported (T5 v1.1 uses 'gelu_new')", act);
  if (c.relative_attention_num_buckets < 4 || c.relative_attention_max_distance < 2)
    fail_file(path, "relative attention buckets/max_distance too small");
  return c;
}

at::Tensor t5_relative_position_bucket(const at::Tensor& relative_position, int64_t num_buckets,
                                       int64_t max_distance) {
  const int64_t half = num_buckets / 2;
  at::Tensor buckets = relative_position.gt(0).to(at::kLong) * half;
  at::Tensor n = relative_position.abs();
  const int64_t max_exact = half / 2;
  at::Tensor is_small = n.lt(max_exact);
  // float32 throughout, as transformers: log(n / max_exact) / log(max_distance / max_exact) * (half - max_exact)
  at::Tensor large = at::log(n.to(at::kFloat) / static_cast<double>(max_exact)) /
                     std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                     static_cast<double>(half - max_exact);
  large = large.to(at::kLong) + max_exact;
  large = at::minimum(large, at::full_like(large, half - 1));
  return buckets + at::where(is_small, n, large);
}

T5Encoder::T5Encoder(const WeightStore& ws, T5Config config) : config_(std::move(config)), dtype_(ws.dtype()) {
  const auto& c = config_;
  const int64_t d = c.d_model, inner = c.inner_dim();
  if (ws.has("shared.weight")) {
    embed_ = ws.get("shared.weight", {c.vocab_size, d});
    ws.ignore("encoder.embed_tokens.weight");
  } else {
    embed_ = ws.get("encoder.embed_tokens.weight", {c.vocab_size, d});
  }
  auto enc = ws.sub("encoder");
  blocks_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    auto l0 = enc.sub("block." + std::to_string(i) + ".layer.0");
    auto l1 = enc.sub("block." + std::to_string(i) + ".layer.1");
    Block& b = blocks_[i];
    b.ln0 = l0.get("layer_norm.weight", {d});
    b.q = l0.get("SelfAttention.q.weight", {inner, d});
    b.k = l0.get("SelfAttention.k.weight", {inner, d});
    b.v = l0.get("SelfAttention.v.weight", {inner, d});
    b.o = l0.get("SelfAttention.o.weight", {d, inner});
    if (i == 0)
      rel_bias_ = l0.get("SelfAttention.relative_attention_bias.weight", {c.relative_attention_num_buckets, c.num_heads});
    b.ln1 = l1.get("layer_norm.weight", {d});
    b.wi_0 = l1.get("DenseReluDense.wi_0.weight", {c.d_ff, d});
    b.wi_1 = l1.get("DenseReluDense.wi_1.weight", {c.d_ff, d});
    b.wo = l1.get_as("DenseReluDense.wo.weight", {d, c.d_ff}, at::kFloat);  // _keep_in_fp32_modules = ["wo"]
  }
  final_ln_ = enc.get("final_layer_norm.weight", {d});
}

std::unique_ptr<T5Encoder> T5Encoder::load(const std::string& root, const std::string& component,
                                           at::ScalarType dtype, at::Device device) {
  auto cfg = T5Config::from_json((std::filesystem::path(root) / component / "config.json").string());
  auto ws = WeightStore::open_component(root, component, dtype, device);
  auto enc = std::make_unique<T5Encoder>(ws, cfg);
  ws.finish();
  return enc;
}

template <typename F>
void T5Encoder::for_each_weight(F&& f) {
  f(embed_);
  f(rel_bias_);
  f(final_ln_);
  for (Block& b : blocks_)
    for (at::Tensor* t : {&b.ln0, &b.q, &b.k, &b.v, &b.o, &b.ln1, &b.wi_0, &b.wi_1, &b.wo}) f(*t);
}

at::Device T5Encoder::device() const { return embed_.device(); }

T5Encoder T5Encoder::to(at::Device device, bool pin) const {
  T5Encoder out(*this);
  const bool do_pin = pin && device.is_cpu() && compat::cuda_available();
  out.for_each_weight([&](at::Tensor& t) {
    if (!t.defined()) return;
    if (t.device() != device) t = t.to(t.options().device(device));
    if (do_pin && !t.is_pinned()) t = t.pin_memory();
  });
  return out;
}

int64_t T5Encoder::weight_bytes() const {
  int64_t n = 0;
  const_cast<T5Encoder*>(this)->for_each_weight([&](at::Tensor& t) {
    if (t.defined()) n += static_cast<int64_t>(t.nbytes());
  });
  return n;
}

at::Tensor T5Encoder::norm(const at::Tensor& x, const at::Tensor& w) const {
  at::Tensor var = x.to(at::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor y = x * at::rsqrt(var + config_.layer_norm_epsilon);
  if (w.scalar_type() == at::kHalf || w.scalar_type() == at::kBFloat16) y = y.to(w.scalar_type());
  return w * y;
}

namespace {
// transformers clamps an fp16 stream to finfo.max (- 1000 when it already holds inf) after each sub-layer.
at::Tensor clamp_fp16(const at::Tensor& x) {
  if (x.scalar_type() != at::kHalf) return x;
  double mx = 65504.0;
  if (at::isinf(x).any().item<bool>()) mx -= 1000.0;
  return x.clamp(-mx, mx);
}
}  // namespace

at::Tensor T5Encoder::operator()(const at::Tensor& ids, const at::Tensor& mask) const {
  const auto& c = config_;
  if (ids.dim() != 2) fail("T5 encoder: ids must be [B, L], got {} dims", ids.dim());
  const int64_t B = ids.size(0), L = ids.size(1), H = c.num_heads, dk = c.d_kv;
  auto dev = embed_.device();
  at::Tensor x = at::embedding(embed_, ids.to(dev).to(at::kLong));

  auto pos = at::arange(L, at::TensorOptions().dtype(at::kLong).device(dev));
  at::Tensor rel = pos.unsqueeze(0) - pos.unsqueeze(1);  // key - query
  at::Tensor bucket = t5_relative_position_bucket(rel, c.relative_attention_num_buckets,
                                                  c.relative_attention_max_distance);
  at::Tensor bias = at::embedding(rel_bias_, bucket).permute({2, 0, 1}).unsqueeze(0);  // [1, H, L, L]
  if (mask.defined()) {
    if (mask.sizes() != ids.sizes()) fail("T5 encoder: mask shape must equal ids shape [{}, {}]", B, L);
    double mn = dtype_ == at::kHalf    ? -65504.0
                : dtype_ == at::kBFloat16 ? -3.3895313892515355e38
                                          : static_cast<double>(std::numeric_limits<float>::lowest());
    at::Tensor ext = (1.0 - mask.to(dev).to(dtype_).view({B, 1, 1, L})) * mn;
    bias = bias + ext;
  }
  for (const Block& b : blocks_) {
    at::Tensor h = norm(x, b.ln0);
    at::Tensor q = at::linear(h, b.q).view({B, L, H, dk}).transpose(1, 2);
    at::Tensor k = at::linear(h, b.k).view({B, L, H, dk}).transpose(1, 2);
    at::Tensor v = at::linear(h, b.v).view({B, L, H, dk}).transpose(1, 2);
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) + bias;
    at::Tensor w = at::softmax(scores.to(at::kFloat), -1).to(scores.scalar_type());
    at::Tensor a = at::matmul(w, v).transpose(1, 2).reshape({B, L, H * dk});
    x = clamp_fp16(x + at::linear(a, b.o));
    h = norm(x, b.ln1);
    at::Tensor g = at::gelu(at::linear(h, b.wi_0), "tanh") * at::linear(h, b.wi_1);
    x = clamp_fp16(x + at::linear(g.to(b.wo.scalar_type()), b.wo));
  }
  return norm(x, final_ln_).to(dtype_);
}

}  // namespace gb::bb
