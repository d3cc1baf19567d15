#include "harness/backbones/flux_transformer.h"

#include "harness/backbones/joint_attention.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/nn.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

namespace gb::bb {

FluxConfig FluxConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  FluxConfig c;
  c.out_channels = -1;
  c.guidance_embeds = false;  // diffusers' default when the key is absent
  json_get(j, "patch_size", c.patch_size, path);
  json_get(j, "in_channels", c.in_channels, path);
  json_get(j, "out_channels", c.out_channels, path);
  if (c.out_channels < 0) c.out_channels = c.in_channels;
  json_get(j, "num_layers", c.num_layers, path);
  json_get(j, "num_single_layers", c.num_single_layers, path);
  json_get(j, "attention_head_dim", c.attention_head_dim, path);
  json_get(j, "num_attention_heads", c.num_attention_heads, path);
  json_get(j, "joint_attention_dim", c.joint_attention_dim, path);
  json_get(j, "pooled_projection_dim", c.pooled_projection_dim, path);
  json_get(j, "guidance_embeds", c.guidance_embeds, path);
  json_get(j, "axes_dims_rope", c.axes_dims_rope, path);
  int64_t sum = std::accumulate(c.axes_dims_rope.begin(), c.axes_dims_rope.end(), int64_t(0));
  if (sum != c.attention_head_dim)
    fail_file(path, "axes_dims_rope sum to {} but attention_head_dim is {}", sum, c.attention_head_dim);
  for (int64_t a : c.axes_dims_rope)
    if (a <= 0 || a % 2) fail_file(path, "axes_dims_rope entries must be positive and even");
  if (c.patch_size != 1)
    fail_file(path, "patch_size {} is not supported (Flux packs 2x2 latents, patch_size 1)", c.patch_size);
  return c;
}

std::pair<at::Tensor, at::Tensor> flux_rope_tables(const at::Tensor& ids, const std::vector<int64_t>& axes,
                                                   double theta) {
  if (ids.dim() != 2 || ids.size(1) != static_cast<int64_t>(axes.size()))
    fail("Flux position ids must be [S, {}], got {}", axes.size(), shape_str(ids.sizes()));
  at::Tensor pos = ids.to(at::kFloat);
  std::vector<at::Tensor> coss, sins;
  for (size_t a = 0; a < axes.size(); ++a) {
    const int64_t d = axes[a];
    auto f64 = at::TensorOptions().dtype(at::kDouble).device(ids.device());
    at::Tensor freqs = 1.0 / at::pow(theta, at::arange(0, d, 2, f64).narrow(0, 0, d / 2) / static_cast<double>(d));
    at::Tensor ang = at::outer(pos.select(1, a).to(at::kDouble), freqs);  // float32 positions, float64 product
    coss.push_back(ang.cos().repeat_interleave(2, 1).to(at::kFloat));
    sins.push_back(ang.sin().repeat_interleave(2, 1).to(at::kFloat));
  }
  return {at::cat(coss, -1), at::cat(sins, -1)};
}

at::Tensor flux_apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  auto sizes = x.sizes().vec();
  at::Tensor pairs = x.reshape({sizes[0], sizes[1], sizes[2], sizes[3] / 2, 2});
  at::Tensor re = pairs.select(-1, 0), im = pairs.select(-1, 1);
  at::Tensor rotated = at::stack({-im, re}, -1).flatten(3);
  return (x.to(at::kFloat) * cos + rotated.to(at::kFloat) * sin).to(x.scalar_type());
}

at::Tensor flux_pack_latents(const at::Tensor& z) {
  const int64_t B = z.size(0), C = z.size(1), H = z.size(2), W = z.size(3);
  if (H % 2 || W % 2) fail("Flux latents must have even height and width, got {}x{}", H, W);
  return z.view({B, C, H / 2, 2, W / 2, 2}).permute({0, 2, 4, 1, 3, 5}).reshape({B, (H / 2) * (W / 2), C * 4});
}

at::Tensor flux_latent_image_ids(int64_t h2, int64_t w2, at::TensorOptions opts) {
  at::Tensor ids = at::zeros({h2, w2, 3}, opts);
  ids.select(2, 1).add_(at::arange(h2, opts).unsqueeze(1));
  ids.select(2, 2).add_(at::arange(w2, opts).unsqueeze(0));
  return ids.reshape({h2 * w2, 3});
}

FluxTransformer::FluxTransformer(const WeightStore& ws, FluxConfig config)
    : config_(std::move(config)), dtype_(ws.dtype()) {
  const auto& c = config_;
  const int64_t C = c.inner_dim(), hd = c.attention_head_dim;
  x_embedder_ = Linear(ws.sub("x_embedder"), c.in_channels, C);
  context_embedder_ = Linear(ws.sub("context_embedder"), c.joint_attention_dim, C);
  auto tte = ws.sub("time_text_embed");
  t_embedder_ = TimestepEmbedding(tte.sub("timestep_embedder"), 256, C);
  if (c.guidance_embeds) g_embedder_ = TimestepEmbedding(tte.sub("guidance_embedder"), 256, C);
  text_1_ = Linear(tte.sub("text_embedder.linear_1"), c.pooled_projection_dim, C);
  text_2_ = Linear(tte.sub("text_embedder.linear_2"), C, C);
  auto make_attn = [&](const WeightStore& a, bool joint) {
    Attn at_;
    at_.to_q = Linear(a.sub("to_q"), C, C);
    at_.to_k = Linear(a.sub("to_k"), C, C);
    at_.to_v = Linear(a.sub("to_v"), C, C);
    at_.norm_q = RMSNorm(a.sub("norm_q"), hd, 1e-6);
    at_.norm_k = RMSNorm(a.sub("norm_k"), hd, 1e-6);
    if (joint) {
      at_.add_q = Linear(a.sub("add_q_proj"), C, C);
      at_.add_k = Linear(a.sub("add_k_proj"), C, C);
      at_.add_v = Linear(a.sub("add_v_proj"), C, C);
      at_.norm_added_q = RMSNorm(a.sub("norm_added_q"), hd, 1e-6);
      at_.norm_added_k = RMSNorm(a.sub("norm_added_k"), hd, 1e-6);
      at_.to_out = Linear(a.sub("to_out.0"), C, C);
      at_.to_add_out = Linear(a.sub("to_add_out"), C, C);
    }
    return at_;
  };
  doubles_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    auto b = ws.sub("transformer_blocks." + std::to_string(i));
    Double& d = doubles_[i];
    d.norm1 = Linear(b.sub("norm1.linear"), C, 6 * C);
    d.norm1_context = Linear(b.sub("norm1_context.linear"), C, 6 * C);
    d.attn = make_attn(b.sub("attn"), true);
    d.ff = FeedForward(b.sub("ff"), C, 4 * C, C, FeedForward::Kind::GELUTanh, true);
    d.ff_context = FeedForward(b.sub("ff_context"), C, 4 * C, C, FeedForward::Kind::GELUTanh, true);
  }
  const int64_t mlp = static_cast<int64_t>(C * c.mlp_ratio);
  singles_.resize(c.num_single_layers);
  for (int64_t j = 0; j < c.num_single_layers; ++j) {
    auto b = ws.sub("single_transformer_blocks." + std::to_string(j));
    Single& s = singles_[j];
    s.norm = Linear(b.sub("norm.linear"), C, 3 * C);
    s.attn = make_attn(b.sub("attn"), false);
    s.proj_mlp = Linear(b.sub("proj_mlp"), C, mlp);
    s.proj_out = Linear(b.sub("proj_out"), C + mlp, C);
  }
  norm_out_ = Linear(ws.sub("norm_out.linear"), C, 2 * C);
  proj_out_ = Linear(ws.sub("proj_out"), C, c.patch_size * c.patch_size * c.out_channels);
}

std::unique_ptr<FluxTransformer> FluxTransformer::load(const std::string& root, at::ScalarType dtype, at::Device device,
                                                       const std::string& variant) {
  auto cfg = FluxConfig::from_json((std::filesystem::path(root) / "transformer" / "config.json").string());
  return load_component(root, "transformer", dtype, device, variant,
                        [&](const WeightStore& ws) { return std::make_unique<FluxTransformer>(ws, cfg); });
}

namespace {
at::Tensor clip16(const at::Tensor& x) { return x.scalar_type() == at::kHalf ? x.clamp(-65504, 65504) : x; }
}  // namespace

at::Tensor FluxTransformer::operator()(const FluxInputs& in, CaptureRecorder* rec, bool need_output) const {
  const auto& c = config_;
  const int64_t C = c.inner_dim(), H = c.num_attention_heads;
  if (in.latents.dim() != 3 || in.latents.size(2) != c.in_channels)
    fail("Flux: latents must be packed [B, N, {}], got {}", c.in_channels, shape_str(in.latents.sizes()));
  const int64_t B = in.latents.size(0), N = in.latents.size(1);
  if (in.encoder_hidden_states.dim() != 3 || in.encoder_hidden_states.size(0) != B ||
      in.encoder_hidden_states.size(2) != c.joint_attention_dim)
    fail("Flux: encoder_hidden_states must be [{}, T, {}], got {}", B, c.joint_attention_dim,
         shape_str(in.encoder_hidden_states.sizes()));
  const int64_t T = in.encoder_hidden_states.size(1);
  if (in.img_ids.dim() != 2 || in.img_ids.size(0) != N) fail("Flux: img_ids must be [{}, 3]", N);
  if (in.txt_ids.dim() != 2 || in.txt_ids.size(0) != T) fail("Flux: txt_ids must be [{}, 3]", T);
  if (c.guidance_embeds && !in.guidance.defined()) fail("Flux: this model embeds guidance; guidance is required");
  auto dev = x_embedder_.weight.device();

  int64_t last = c.total_blocks() - 1;
  if (!need_output) {
    last = -1;
    for (int64_t k = 0; k < c.total_blocks(); ++k)
      if (joint_block_wanted(rec, vit_block(k), k < c.num_layers)) last = k;
    if (last < 0) return {};
  }

  at::Tensor x = x_embedder_(in.latents.to(dev).to(dtype_));
  // timestep/guidance go through the hidden dtype (bf16 rounding in the paper's run) before x1000.
  at::Tensor t = in.timestep.to(dev).reshape({-1}).to(dtype_) * 1000;
  at::Tensor temb = t_embedder_(timestep_embedding(t, 256, true, 0).to(dtype_));
  if (c.guidance_embeds) {
    at::Tensor gd = in.guidance.to(dev).reshape({-1}).to(dtype_) * 1000;
    temb = temb + g_embedder_(timestep_embedding(gd, 256, true, 0).to(dtype_));
  }
  temb = temb + text_2_(at::silu(text_1_(in.pooled_projections.to(dev).to(dtype_))));
  if (temb.size(0) == 1 && B > 1) temb = temb.expand({B, C});
  at::Tensor ctx = context_embedder_(in.encoder_hidden_states.to(dev).to(dtype_));

  auto tables = flux_rope_tables(at::cat({in.txt_ids.to(dev), in.img_ids.to(dev)}, 0), c.axes_dims_rope, c.rope_theta);
  const at::Tensor& cos = tables.first;
  const at::Tensor& sin = tables.second;
  at::Tensor silu_temb = at::silu(temb);

  for (int64_t i = 0; i < c.num_layers && i <= last; ++i) {
    const Double& d = doubles_[i];
    const std::string id = vit_block(i);
    auto m = d.norm1(silu_temb).chunk(6, 1);
    auto mc = d.norm1_context(silu_temb).chunk(6, 1);
    at::Tensor xn = plain_layer_norm(x) * (1 + m[1].unsqueeze(1)) + m[0].unsqueeze(1);
    at::Tensor cn = plain_layer_norm(ctx) * (1 + mc[1].unsqueeze(1)) + mc[0].unsqueeze(1);
    const Attn& a = d.attn;
    at::Tensor q = a.norm_q(split_heads(a.to_q(xn), H)), k = a.norm_k(split_heads(a.to_k(xn), H)),
               v = split_heads(a.to_v(xn), H);
    if (rec) rec->record(capture_key(attention_block(id, AttentionKind::cross), CaptureTensor::special_value), v);
    at::Tensor eq = a.norm_added_q(split_heads(a.add_q(cn), H)), ek = a.norm_added_k(split_heads(a.add_k(cn), H));
    at::Tensor ev = split_heads(a.add_v(cn), H);
    q = flux_apply_rope(at::cat({eq, q}, 2), cos, sin);
    k = flux_apply_rope(at::cat({ek, k}, 2), cos, sin);
    at::Tensor o = joint_attend(q, k, at::cat({ev, v}, 2), JointLayout{T, N, 0, T}, id, rec, chunk_elements_);
    at::Tensor o_img = o.narrow(1, T, N);
    if (rec) {
      rec->record(capture_key(attention_block(id, AttentionKind::cross), CaptureTensor::special_post_value), o_img);
      rec->record_weight(capture_key(attention_block(id, AttentionKind::cross), CaptureTensor::special_weight),
                         a.to_out.weight, B);
    }
    at::Tensor attn_x = a.to_out(o_img);
    at::Tensor attn_c = a.to_add_out(o.narrow(1, 0, T));
    if (rec && rec->wants_key(attention_output_key(id))) rec->record_tokens_as_grid(attention_output_key(id), attn_x);

    x = x + m[2].unsqueeze(1) * attn_x;
    at::Tensor h = plain_layer_norm(x) * (1 + m[4].unsqueeze(1)) + m[3].unsqueeze(1);
    x = clip16(x + m[5].unsqueeze(1) * d.ff(h));
    ctx = ctx + mc[2].unsqueeze(1) * attn_c;
    h = plain_layer_norm(ctx) * (1 + mc[4].unsqueeze(1)) + mc[3].unsqueeze(1);
    ctx = clip16(ctx + mc[5].unsqueeze(1) * d.ff_context(h));
  }
  if (!need_output && last < c.num_layers) return {};

  at::Tensor s = at::cat({ctx, x}, 1);
  for (int64_t j = 0; j < c.num_single_layers && c.num_layers + j <= last; ++j) {
    const Single& b = singles_[j];
    const std::string id = vit_block(c.num_layers + j);
    auto m = b.norm(silu_temb).chunk(3, 1);
    at::Tensor sn = plain_layer_norm(s) * (1 + m[1].unsqueeze(1)) + m[0].unsqueeze(1);
    at::Tensor mlp = at::gelu(b.proj_mlp(sn), "tanh");
    const Attn& a = b.attn;
    at::Tensor q = flux_apply_rope(a.norm_q(split_heads(a.to_q(sn), H)), cos, sin);
    at::Tensor k = flux_apply_rope(a.norm_k(split_heads(a.to_k(sn), H)), cos, sin);
    at::Tensor o = joint_attend(q, k, split_heads(a.to_v(sn), H), JointLayout{T, N, 0, T}, id, rec, chunk_elements_);
    if (rec && rec->wants_key(attention_output_key(id)))
      rec->record_tokens_as_grid(attention_output_key(id), o.narrow(1, T, N));
    s = clip16(s + m[2].unsqueeze(1) * b.proj_out(at::cat({o, mlp}, 2)));
  }
  if (!need_output) return {};

  x = s.narrow(1, T, N);
  auto so = norm_out_(silu_temb.to(x.scalar_type())).chunk(2, 1);  // (scale, shift)
  x = plain_layer_norm(x) * (1 + so[0].unsqueeze(1)) + so[1].unsqueeze(1);
  return proj_out_(x);
}

std::vector<LayerInfo> flux_capture_layers(const FluxConfig& c, int64_t N, int64_t T) {
  std::vector<LayerInfo> out;
  for (int64_t k = 0; k < c.total_blocks(); ++k)
    append_joint_block_layers(out, vit_block(k), c.num_attention_heads, N, T, c.attention_head_dim, k < c.num_layers);
  return out;
}

}  // namespace gb::bb
