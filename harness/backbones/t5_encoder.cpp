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

at::Tensor t5_relative_position_bucket(const at::Tensor& relative_position, int64_t num_buckets, int64_t max_distance) {
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

at::Tensor T5Linear::operator()(const at::Tensor& x) const { return q8.defined() ? q8(x) : at::linear(x, w); }

int64_t T5Linear::nbytes() const { return q8.defined() ? q8.nbytes() : static_cast<int64_t>(w.nbytes()); }

T5Encoder::T5Encoder(const WeightStore& ws, T5Config config, bool int8)
    : config_(std::move(config)), dtype_(ws.dtype()), int8_(int8) {
  const auto& c = config_;
  const int64_t d = c.d_model, inner = c.inner_dim();
  if (ws.has("shared.weight")) {
    embed_ = ws.get("shared.weight", {c.vocab_size, d});
    ws.ignore("encoder.embed_tokens.weight");
  } else {
    embed_ = ws.get("encoder.embed_tokens.weight", {c.vocab_size, d});
  }
  auto enc = ws.sub("encoder");
  // transformers + bitsandbytes: every nn.Linear except `wo` (_keep_in_fp32_modules) becomes Linear8bitLt and
  // is quantized from the torch_dtype weight when it is moved to the GPU.
  auto lin = [&](const WeightStore& s, const std::string& key, std::vector<int64_t> shape) {
    T5Linear l;
    at::Tensor w = s.get(key, std::move(shape));
    if (int8_) l.q8 = Int8Linear(w, kLlmInt8Threshold);
    else l.w = w;
    return l;
  };
  blocks_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    auto l0 = enc.sub("block." + std::to_string(i) + ".layer.0");
    auto l1 = enc.sub("block." + std::to_string(i) + ".layer.1");
    Block& b = blocks_[i];
    b.ln0 = l0.get("layer_norm.weight", {d});
    b.q = lin(l0, "SelfAttention.q.weight", {inner, d});
    b.k = lin(l0, "SelfAttention.k.weight", {inner, d});
    b.v = lin(l0, "SelfAttention.v.weight", {inner, d});
    b.o = lin(l0, "SelfAttention.o.weight", {d, inner});
    if (i == 0)
      rel_bias_ =
          l0.get("SelfAttention.relative_attention_bias.weight", {c.relative_attention_num_buckets, c.num_heads});
    b.ln1 = l1.get("layer_norm.weight", {d});
    b.wi_0 = lin(l1, "DenseReluDense.wi_0.weight", {c.d_ff, d});
    b.wi_1 = lin(l1, "DenseReluDense.wi_1.weight", {c.d_ff, d});
    b.wo = l1.get_as("DenseReluDense.wo.weight", {d, c.d_ff}, at::kFloat);  // _keep_in_fp32_modules = ["wo"]
  }
  final_ln_ = enc.get("final_layer_norm.weight", {d});
}

std::unique_ptr<T5Encoder> T5Encoder::load(const std::string& root, const std::string& component, at::ScalarType dtype,
                                           at::Device device, bool int8) {
  auto cfg = T5Config::from_json((std::filesystem::path(root) / component / "config.json").string());
  return load_component(root, component, dtype, device, "",
                        [&](const WeightStore& ws) { return std::make_unique<T5Encoder>(ws, cfg, int8); });
}

std::unique_ptr<T5Encoder> T5Encoder::load_for_backbone(const std::string& root, const std::string& component,
                                                        const T5Config& config, at::ScalarType dtype, at::Device device,
                                                        const std::string& variant, bool offload, bool int8) {
  auto t5 = load_component(root, component, dtype, offload ? at::Device(at::kCPU) : device, variant,
                           [&](const WeightStore& ws) { return std::make_unique<T5Encoder>(ws, config, int8); });
  if (offload && device.is_cuda()) t5 = std::make_unique<T5Encoder>(t5->to(at::kCPU, /*pin=*/true));
  return t5;
}

template <typename F>
void T5Encoder::for_each_weight(F&& f) {
  f(embed_);
  f(rel_bias_);
  f(final_ln_);
  for (Block& b : blocks_) {
    for (at::Tensor* t : {&b.ln0, &b.ln1, &b.wo}) f(*t);
    for (T5Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.wi_0, &b.wi_1}) {
      f(l->w);
      l->q8.for_each_tensor(f);  // CB, SCB
    }
  }
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

int64_t T5Encoder::weight_bytes(const T5Config& c, at::ScalarType dtype, bool int8) {
  const int64_t e = static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t d = c.d_model, inner = c.inner_dim();
  auto lin = [&](int64_t out, int64_t in) { return int8 ? out * in + 4 * out : out * in * e; };
  int64_t n = (c.vocab_size * d + c.relative_attention_num_buckets * c.num_heads + d) * e;
  const int64_t block = 2 * d * e + 3 * lin(inner, d) + lin(d, inner) + 2 * lin(c.d_ff, d) + d * c.d_ff * 4;
  return n + c.num_layers * block;
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

// T5's "gelu_new" as transformers' NewGELUActivation computes it: op by op in the input dtype,
// 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))). In 16-bit every step rounds, so it differs from the
// fused at::gelu(x, "tanh") (one rounding) by up to a few bf16 ulps; in fp32 by ~1e-7.
at::Tensor gelu_new(const at::Tensor& x) {
  const double c = std::sqrt(2.0 / 3.141592653589793);
  return (x * 0.5) * (at::tanh((x + at::pow(x, 3.0) * 0.044715) * c) + 1.0);
}
}  // namespace

at::Tensor T5Encoder::operator()(const at::Tensor& ids, const at::Tensor& mask) const {
  if (ids.dim() != 2) fail("T5 encoder: ids must be [B, L], got {} dims", ids.dim());
  if (mask.defined() && mask.sizes() != ids.sizes())
    fail("T5 encoder: mask shape must equal ids shape [{}, {}]", ids.size(0), ids.size(1));
  if (!int8_ || ids.size(0) <= 1) return encode(ids, mask);
  // LLM.int8 chooses outlier columns over all rows of a call: encode one sequence at a time, as the paper did.
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < ids.size(0); ++i)
    out.push_back(encode(ids.slice(0, i, i + 1), mask.defined() ? mask.slice(0, i, i + 1) : at::Tensor()));
  return at::cat(out, 0);
}

at::Tensor T5Encoder::encode(const at::Tensor& ids, const at::Tensor& mask) const {
  const auto& c = config_;
  const int64_t B = ids.size(0), L = ids.size(1), H = c.num_heads, dk = c.d_kv;
  auto dev = embed_.device();
  at::Tensor x = at::embedding(embed_, ids.to(dev).to(at::kLong));

  auto pos = at::arange(L, at::TensorOptions().dtype(at::kLong).device(dev));
  at::Tensor rel = pos.unsqueeze(0) - pos.unsqueeze(1);  // key - query
  at::Tensor bucket =
      t5_relative_position_bucket(rel, c.relative_attention_num_buckets, c.relative_attention_max_distance);
  at::Tensor bias = at::embedding(rel_bias_, bucket).permute({2, 0, 1}).unsqueeze(0);  // [1, H, L, L]
  if (mask.defined()) {
    if (mask.sizes() != ids.sizes()) fail("T5 encoder: mask shape must equal ids shape [{}, {}]", B, L);
    double mn = dtype_ == at::kHalf       ? -65504.0
                : dtype_ == at::kBFloat16 ? -3.3895313892515355e38
                                          : static_cast<double>(std::numeric_limits<float>::lowest());
    at::Tensor ext = (1.0 - mask.to(dev).to(dtype_).view({B, 1, 1, L})) * mn;
    bias = bias + ext;
  }
  for (const Block& b : blocks_) {
    at::Tensor h = norm(x, b.ln0);
    at::Tensor q = b.q(h).view({B, L, H, dk}).transpose(1, 2);
    at::Tensor k = b.k(h).view({B, L, H, dk}).transpose(1, 2);
    at::Tensor v = b.v(h).view({B, L, H, dk}).transpose(1, 2);
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) + bias;
    at::Tensor w = at::softmax(scores.to(at::kFloat), -1).to(scores.scalar_type());
    at::Tensor a = at::matmul(w, v).transpose(1, 2).reshape({B, L, H * dk});
    x = clamp_fp16(x + b.o(a));
    h = norm(x, b.ln1);
    at::Tensor g = gelu_new(b.wi_0(h)) * b.wi_1(h);
    x = clamp_fp16(x + at::linear(g.to(b.wo.scalar_type()), b.wo));
  }
  return norm(x, final_ln_).to(dtype_);
}

}  // namespace gb::bb
