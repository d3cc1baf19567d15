#include "harness/backbones/nn.h"

#include "harness/backbones/recorder.h"
#include "harness/core/torch_compat.h"

#include <cmath>

namespace gb::bb {

Linear::Linear(const WeightStore& ws, int64_t in, int64_t out, bool with_bias) {
  weight = ws.get("weight", {out, in});
  if (with_bias) bias = ws.get("bias", {out});
}
at::Tensor Linear::operator()(const at::Tensor& x) const { return at::linear(x, weight, bias); }

Conv2d::Conv2d(const WeightStore& ws, int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t padding_,
               bool with_bias)
    : stride(stride_), padding(padding_) {
  weight = ws.get("weight", {out, in, kernel, kernel});
  if (with_bias) bias = ws.get("bias", {out});
}
at::Tensor Conv2d::operator()(const at::Tensor& x) const {
  return at::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
}

GroupNorm::GroupNorm(const WeightStore& ws, int64_t groups_, int64_t channels, double eps_)
    : groups(groups_), eps(eps_) {
  weight = ws.get("weight", {channels});
  bias = ws.get("bias", {channels});
}
at::Tensor GroupNorm::operator()(const at::Tensor& x) const { return at::group_norm(x, groups, weight, bias, eps); }

LayerNorm::LayerNorm(const WeightStore& ws, int64_t dim_, double eps_, bool affine, bool with_bias)
    : dim(dim_), eps(eps_) {
  if (affine) {
    weight = ws.get("weight", {dim});
    if (with_bias) bias = ws.get("bias", {dim});
  }
}
at::Tensor LayerNorm::operator()(const at::Tensor& x) const { return at::layer_norm(x, {dim}, weight, bias, eps); }

RMSNorm::RMSNorm(const WeightStore& ws, int64_t dim, double eps_) : eps(eps_) { weight = ws.get("weight", {dim}); }
at::Tensor RMSNorm::operator()(const at::Tensor& x) const {
  auto variance = x.to(at::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  auto h = x * at::rsqrt(variance + eps);
  if (weight.scalar_type() == at::kHalf || weight.scalar_type() == at::kBFloat16) h = h.to(weight.scalar_type());
  return h * weight;
}

at::Tensor activate(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::SiLU: return at::silu(x);
    case Activation::GELU: return at::gelu(x);
    case Activation::GELUTanh: return at::gelu(x, "tanh");
    case Activation::QuickGELU: return x * at::sigmoid(x * 1.702);
  }
  return x;
}

FeedForward::FeedForward(const WeightStore& ws, int64_t dim, int64_t inner, int64_t dim_out, Kind kind_, bool bias)
    : kind(kind_) {
  proj_in = Linear(ws.sub("net.0.proj"), dim, kind == Kind::GEGLU ? 2 * inner : inner, bias);
  proj_out = Linear(ws.sub("net.2"), inner, dim_out, bias);
}
at::Tensor FeedForward::operator()(const at::Tensor& x) const {
  at::Tensor h = proj_in(x);
  switch (kind) {
    case Kind::GEGLU: {
      auto parts = h.chunk(2, -1);
      h = parts[0] * at::gelu(parts[1]);
      break;
    }
    case Kind::GELU: h = at::gelu(h); break;
    case Kind::GELUTanh: h = at::gelu(h, "tanh"); break;
  }
  return proj_out(h);
}

at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double shift,
                              double scale, double max_period) {
  int64_t half = dim / 2;
  auto opts = at::TensorOptions().dtype(at::kFloat).device(timesteps.device());
  auto exponent = at::arange(0, half, opts) * static_cast<float>(-std::log(max_period));
  exponent = exponent / static_cast<float>(half - shift);
  auto freqs = at::exp(exponent);
  auto emb = timesteps.reshape({-1, 1}).to(at::kFloat) * freqs.unsqueeze(0);
  if (scale != 1.0) emb = emb * static_cast<float>(scale);
  emb = at::cat({at::sin(emb), at::cos(emb)}, -1);
  if (flip_sin_to_cos) emb = at::cat({emb.narrow(1, half, half), emb.narrow(1, 0, half)}, -1);
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1, 0, 0});
  return emb;
}

TimestepEmbedding::TimestepEmbedding(const WeightStore& ws, int64_t in, int64_t dim) {
  linear_1 = Linear(ws.sub("linear_1"), in, dim);
  linear_2 = Linear(ws.sub("linear_2"), dim, dim);
}
at::Tensor TimestepEmbedding::operator()(const at::Tensor& x) const { return linear_2(at::silu(linear_1(x))); }

ResnetBlock2D::ResnetBlock2D(const WeightStore& ws, int64_t in, int64_t out, int64_t temb_channels, int64_t groups,
                             double eps) {
  norm1 = GroupNorm(ws.sub("norm1"), groups, in, eps);
  conv1 = Conv2d(ws.sub("conv1"), in, out, 3, 1, 1);
  if (temb_channels > 0) {
    has_temb = true;
    time_emb_proj = Linear(ws.sub("time_emb_proj"), temb_channels, out);
  }
  norm2 = GroupNorm(ws.sub("norm2"), groups, out, eps);
  conv2 = Conv2d(ws.sub("conv2"), out, out, 3, 1, 1);
  if (in != out) {
    has_shortcut = true;
    conv_shortcut = Conv2d(ws.sub("conv_shortcut"), in, out, 1, 1, 0);
  }
}
at::Tensor ResnetBlock2D::operator()(const at::Tensor& x, const at::Tensor& temb) const {
  auto h = conv1(at::silu(norm1(x)));
  if (has_temb) h = h + time_emb_proj(at::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2(at::silu(norm2(h)));
  return (has_shortcut ? conv_shortcut(x) : x) + h;
}

Downsample2D::Downsample2D(const WeightStore& ws, int64_t channels, int64_t padding) {
  pad_right_bottom = padding == 0;
  conv = Conv2d(ws.sub("conv"), channels, channels, 3, 2, padding);
}
at::Tensor Downsample2D::operator()(const at::Tensor& x) const {
  return conv(pad_right_bottom ? at::constant_pad_nd(x, {0, 1, 0, 1}, 0) : x);
}

Upsample2D::Upsample2D(const WeightStore& ws, int64_t channels) {
  conv = Conv2d(ws.sub("conv"), channels, channels, 3, 1, 1);
}
at::Tensor Upsample2D::operator()(const at::Tensor& x) const {
  return conv(at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2}));
}

at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  int64_t b = x.size(0), n = x.size(1), c = x.size(2);
  return x.view({b, n, heads, c / heads}).transpose(1, 2);
}
at::Tensor merge_heads(const at::Tensor& x) {
  int64_t b = x.size(0), h = x.size(1), n = x.size(2), d = x.size(3);
  return x.transpose(1, 2).reshape({b, n, h * d});
}
at::Tensor plain_layer_norm(const at::Tensor& x, double eps) { return at::layer_norm(x, {x.size(-1)}, {}, {}, eps); }

at::Tensor attention_probs(const at::Tensor& q, const at::Tensor& k, double scale, const at::Tensor& mask) {
  int64_t b = q.size(0), h = q.size(1), nq = q.size(2), d = q.size(3), nk = k.size(2);
  auto q3 = q.reshape({b * h, nq, d});
  auto k3 = k.reshape({b * h, nk, d}).transpose(1, 2);
  at::Tensor scores;
  if (mask.defined()) {
    auto base = mask.to(q.scalar_type()).expand({b, h, nq, nk}).reshape({b * h, nq, nk});
    scores = at::baddbmm(base, q3, k3, 1.0, scale);
  } else {
    scores = at::baddbmm(at::empty({b * h, nq, nk}, q.options()), q3, k3, 0.0, scale);
  }
  return at::softmax(scores, -1).view({b, h, nq, nk});
}

Attention::Attention(const WeightStore& ws, int64_t query_dim, int64_t context_dim, int64_t heads_, int64_t head_dim_,
                     bool qkv_bias, bool out_bias, std::string capture_id_)
    : heads(heads_), head_dim(head_dim_), capture_id(std::move(capture_id_)) {
  int64_t inner = heads * head_dim;
  to_q = Linear(ws.sub("to_q"), query_dim, inner, qkv_bias);
  to_k = Linear(ws.sub("to_k"), context_dim, inner, qkv_bias);
  to_v = Linear(ws.sub("to_v"), context_dim, inner, qkv_bias);
  to_out = Linear(ws.sub("to_out.0"), inner, query_dim, out_bias);
}

at::Tensor Attention::operator()(const at::Tensor& x, const at::Tensor& context, CaptureRecorder* recorder,
                                 const at::Tensor& mask) const {
  const at::Tensor& ctx = context.defined() ? context : x;
  auto q = to_q(x);
  auto k = to_k(ctx);
  auto v = to_v(ctx);
  AttentionWants w;
  if (recorder && !capture_id.empty()) w = recorder->wants(capture_id);
  if (w.q) recorder->record_tokens_as_grid(capture_key(capture_id, CaptureTensor::q), q);
  auto qh = split_heads(q, heads), kh = split_heads(k, heads), vh = split_heads(v, heads);
  if (w.special_value) recorder->record(capture_key(capture_id, CaptureTensor::special_value), vh);
  double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  at::Tensor o;
  if (w.map) {
    // The explicit route is diffusers' Attention.get_attention_scores, which upcasts when upcast_attention; the
    // fused route (AttnProcessor2_0) ignores upcast_attention.
    auto p = upcast && qh.scalar_type() != at::kFloat
                 ? attention_probs(qh.to(at::kFloat), kh.to(at::kFloat), scale, mask).to(qh.scalar_type())
                 : attention_probs(qh, kh, scale, mask);
    recorder->record_map(capture_id, p);
    o = at::matmul(p, vh);
  } else {
    o = compat::scaled_dot_product_attention(qh, kh, vh,
                                             mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, scale);
  }
  auto merged = merge_heads(o);
  if (w.post_value) recorder->record(capture_key(capture_id, CaptureTensor::special_post_value), merged);
  if (w.weight)
    recorder->record_weight(capture_key(capture_id, CaptureTensor::special_weight), to_out.weight, x.size(0));
  return to_out(merged);
}

}  // namespace gb::bb
