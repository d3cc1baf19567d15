#include "harness/backbones/sd3_transformer.h"

#include "harness/backbones/joint_attention.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/nn.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace gb::bb {

Sd3Config Sd3Config::sd35_medium() {
  Sd3Config c;
  c.num_layers = 24;
  c.num_attention_heads = 24;
  c.caption_projection_dim = 1536;
  c.pos_embed_max_size = 384;
  c.dual_attention_layers = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  c.qk_norm = "rms_norm";
  return c;
}

Sd3Config Sd3Config::sd35_large() {
  Sd3Config c;
  c.num_layers = 38;
  c.num_attention_heads = 38;
  c.caption_projection_dim = 2432;
  c.pos_embed_max_size = 192;
  c.qk_norm = "rms_norm";
  return c;
}

bool Sd3Config::dual(int64_t layer) const {
  return std::find(dual_attention_layers.begin(), dual_attention_layers.end(), layer) != dual_attention_layers.end();
}

Sd3Config Sd3Config::from_json(const std::string& path) {
  auto j = read_json_file(path);
  Sd3Config c;
  c.out_channels = -1;
  json_get(j, "sample_size", c.sample_size, path);
  json_get(j, "patch_size", c.patch_size, path);
  json_get(j, "in_channels", c.in_channels, path);
  json_get(j, "num_layers", c.num_layers, path);
  json_get(j, "attention_head_dim", c.attention_head_dim, path);
  json_get(j, "num_attention_heads", c.num_attention_heads, path);
  json_get(j, "joint_attention_dim", c.joint_attention_dim, path);
  json_get(j, "caption_projection_dim", c.caption_projection_dim, path);
  json_get(j, "pooled_projection_dim", c.pooled_projection_dim, path);
  json_get(j, "out_channels", c.out_channels, path);
  if (c.out_channels < 0) c.out_channels = c.in_channels;
  json_get(j, "pos_embed_max_size", c.pos_embed_max_size, path);
  json_get(j, "dual_attention_layers", c.dual_attention_layers, path);
  json_get(j, "qk_norm", c.qk_norm, path);
  if (!c.qk_norm.empty() && c.qk_norm != "rms_norm")
    fail_file(path, "qk_norm '{}' is not supported (null or rms_norm)", c.qk_norm);
  if (c.caption_projection_dim != c.inner_dim())
    fail_file(path,
              "caption_projection_dim {} must equal num_attention_heads x attention_head_dim = {} (the joint "
              "attention's added projections take the projected context)",
              c.caption_projection_dim, c.inner_dim());
  if (c.pos_embed_max_size <= 0) fail_file(path, "pos_embed_max_size must be set (SD3 stores its position table)");
  for (int64_t l : c.dual_attention_layers)
    if (l < 0 || l >= c.num_layers) fail_file(path, "dual_attention_layers names layer {} of {}", l, c.num_layers);
  return c;
}

Sd3Transformer::Sd3Transformer(const WeightStore& ws, Sd3Config config)
    : config_(std::move(config)), dtype_(ws.dtype()) {
  const auto& c = config_;
  const int64_t C = c.inner_dim(), hd = c.attention_head_dim, p = c.patch_size;
  const bool qk = c.qk_norm == "rms_norm";
  patch_proj_ = Conv2d(ws.sub("pos_embed.proj"), c.in_channels, C, p, p, 0, true);
  pos_table_ = ws.get("pos_embed.pos_embed", {1, c.pos_embed_max_size * c.pos_embed_max_size, C});
  auto tte = ws.sub("time_text_embed");
  t_embedder_ = TimestepEmbedding(tte.sub("timestep_embedder"), 256, C);
  text_1_ = Linear(tte.sub("text_embedder.linear_1"), c.pooled_projection_dim, C);
  text_2_ = Linear(tte.sub("text_embedder.linear_2"), C, C);
  context_embedder_ = Linear(ws.sub("context_embedder"), c.joint_attention_dim, c.caption_projection_dim);
  blocks_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    auto b = ws.sub("transformer_blocks." + std::to_string(i));
    Block& blk = blocks_[i];
    blk.dual = c.dual(i);
    blk.context_pre_only = i == c.num_layers - 1;
    blk.norm1 = Linear(b.sub("norm1.linear"), C, (blk.dual ? 9 : 6) * C);
    blk.norm1_context = Linear(b.sub("norm1_context.linear"), C, (blk.context_pre_only ? 2 : 6) * C);
    auto a = b.sub("attn");
    blk.attn.to_q = Linear(a.sub("to_q"), C, C);
    blk.attn.to_k = Linear(a.sub("to_k"), C, C);
    blk.attn.to_v = Linear(a.sub("to_v"), C, C);
    blk.attn.to_out = Linear(a.sub("to_out.0"), C, C);
    blk.attn.add_q = Linear(a.sub("add_q_proj"), C, C);
    blk.attn.add_k = Linear(a.sub("add_k_proj"), C, C);
    blk.attn.add_v = Linear(a.sub("add_v_proj"), C, C);
    if (!blk.context_pre_only) blk.attn.to_add_out = Linear(a.sub("to_add_out"), C, C);
    if (qk) {
      blk.attn.norm_q = RMSNorm(a.sub("norm_q"), hd, 1e-6);
      blk.attn.norm_k = RMSNorm(a.sub("norm_k"), hd, 1e-6);
      blk.attn.norm_added_q = RMSNorm(a.sub("norm_added_q"), hd, 1e-6);
      blk.attn.norm_added_k = RMSNorm(a.sub("norm_added_k"), hd, 1e-6);
    }
    if (blk.dual) {
      auto a2 = b.sub("attn2");
      blk.attn2.to_q = Linear(a2.sub("to_q"), C, C);
      blk.attn2.to_k = Linear(a2.sub("to_k"), C, C);
      blk.attn2.to_v = Linear(a2.sub("to_v"), C, C);
      blk.attn2.to_out = Linear(a2.sub("to_out.0"), C, C);
      if (qk) {
        blk.attn2.norm_q = RMSNorm(a2.sub("norm_q"), hd, 1e-6);
        blk.attn2.norm_k = RMSNorm(a2.sub("norm_k"), hd, 1e-6);
      }
    }
    blk.ff = FeedForward(b.sub("ff"), C, 4 * C, C, FeedForward::Kind::GELUTanh, true);
    if (!blk.context_pre_only)
      blk.ff_context = FeedForward(b.sub("ff_context"), C, 4 * C, C, FeedForward::Kind::GELUTanh, true);
  }
  norm_out_ = Linear(ws.sub("norm_out.linear"), C, 2 * C);
  proj_out_ = Linear(ws.sub("proj_out"), C, p * p * c.out_channels);
}

std::unique_ptr<Sd3Transformer> Sd3Transformer::load(const std::string& root, at::ScalarType dtype, at::Device device,
                                                     const std::string& variant) {
  auto cfg = Sd3Config::from_json((std::filesystem::path(root) / "transformer" / "config.json").string());
  return load_component(root, "transformer", dtype, device, variant,
                        [&](const WeightStore& ws) { return std::make_unique<Sd3Transformer>(ws, cfg); });
}

namespace {
at::Tensor modulate(const at::Tensor& xn, const at::Tensor& shift, const at::Tensor& scale) {
  return xn * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}
}  // namespace

at::Tensor Sd3Transformer::qk(const RMSNorm& n, const at::Tensor& x) const { return n.weight.defined() ? n(x) : x; }

at::Tensor Sd3Transformer::operator()(const Sd3Inputs& in, CaptureRecorder* rec, bool need_output) const {
  const auto& c = config_;
  const int64_t C = c.inner_dim(), H = c.num_attention_heads, p = c.patch_size;
  if (in.latents.dim() != 4 || in.latents.size(1) != c.in_channels)
    fail("SD3: latents must be [B, {}, H, W], got {}", c.in_channels, shape_str(in.latents.sizes()));
  const int64_t B = in.latents.size(0), lh = in.latents.size(2), lw = in.latents.size(3);
  if (lh % p || lw % p) fail("SD3: latent size {}x{} is not a multiple of the patch size {}", lh, lw, p);
  const int64_t gh = lh / p, gw = lw / p, N = gh * gw;
  if (gh > c.pos_embed_max_size || gw > c.pos_embed_max_size)
    fail("SD3: a {}x{} patch grid exceeds pos_embed_max_size {}", gh, gw, c.pos_embed_max_size);
  if (in.encoder_hidden_states.dim() != 3 || in.encoder_hidden_states.size(0) != B ||
      in.encoder_hidden_states.size(2) != c.joint_attention_dim)
    fail("SD3: encoder_hidden_states must be [{}, T, {}], got {}", B, c.joint_attention_dim,
         shape_str(in.encoder_hidden_states.sizes()));
  if (in.pooled_projections.dim() != 2 || in.pooled_projections.size(1) != c.pooled_projection_dim)
    fail("SD3: pooled_projections must be [{}, {}], got {}", B, c.pooled_projection_dim,
         shape_str(in.pooled_projections.sizes()));
  const int64_t T = in.encoder_hidden_states.size(1);
  auto dev = patch_proj_.weight.device();

  int64_t last = c.num_layers - 1;
  if (!need_output) {
    last = -1;
    for (int64_t i = 0; i < c.num_layers; ++i)
      if (joint_block_wanted(rec, vit_block(i), true)) last = i;
    if (last < 0) return {};
  }

  // PatchEmbed with pos_embed_max_size: the stored table cropped to the centre of the grid, added in the hidden dtype.
  at::Tensor x = patch_proj_(in.latents.to(dev).to(dtype_)).flatten(2).transpose(1, 2);  // [B, N, C]
  const int64_t M = c.pos_embed_max_size, top = (M - gh) / 2, left = (M - gw) / 2;
  at::Tensor pos = pos_table_.reshape({1, M, M, C}).narrow(1, top, gh).narrow(2, left, gw).reshape({1, N, C});
  x = (x + pos).to(dtype_);

  // CombinedTimestepTextProjEmbeddings: sinusoid of the fp32 timestep, embedded in the hidden dtype, plus the
  // pooled text projection (linear, SiLU, linear).
  at::Tensor temb =
      t_embedder_(timestep_embedding(in.timestep.to(dev).reshape({-1}).to(at::kFloat), 256, true, 0).to(dtype_));
  temb = temb + text_2_(at::silu(text_1_(in.pooled_projections.to(dev).to(dtype_))));
  if (temb.size(0) == 1 && B > 1) temb = temb.expand({B, C});
  at::Tensor ctx = context_embedder_(in.encoder_hidden_states.to(dev).to(dtype_));
  const at::Tensor silu_temb = at::silu(temb);

  for (int64_t i = 0; i <= last; ++i) {
    const Block& blk = blocks_[i];
    const std::string id = vit_block(i);
    auto m = blk.norm1(silu_temb).chunk(blk.dual ? 9 : 6, 1);
    const at::Tensor xn0 = plain_layer_norm(x);
    const at::Tensor xn = modulate(xn0, m[0], m[1]);
    at::Tensor cn;
    std::vector<at::Tensor> mc;
    if (blk.context_pre_only) {
      auto ss = blk.norm1_context(silu_temb.to(ctx.scalar_type())).chunk(2, 1);  // (scale, shift)
      cn = modulate(plain_layer_norm(ctx), ss[1], ss[0]);
    } else {
      mc = blk.norm1_context(silu_temb).chunk(6, 1);
      cn = modulate(plain_layer_norm(ctx), mc[0], mc[1]);
    }
    const Attn& a = blk.attn;
    at::Tensor q = qk(a.norm_q, split_heads(a.to_q(xn), H)), k = qk(a.norm_k, split_heads(a.to_k(xn), H)),
               v = split_heads(a.to_v(xn), H);
    if (rec) rec->record(capture_key(attention_block(id, AttentionKind::cross), CaptureTensor::special_value), v);
    at::Tensor eq = qk(a.norm_added_q, split_heads(a.add_q(cn), H)),
               ek = qk(a.norm_added_k, split_heads(a.add_k(cn), H));
    at::Tensor ev = split_heads(a.add_v(cn), H);
    at::Tensor o = joint_attend(at::cat({q, eq}, 2), at::cat({k, ek}, 2), at::cat({v, ev}, 2), JointLayout{0, N, N, T},
                                id, rec, chunk_elements_);
    at::Tensor o_img = o.narrow(1, 0, N);
    if (rec) {
      rec->record(capture_key(attention_block(id, AttentionKind::cross), CaptureTensor::special_post_value), o_img);
      rec->record_weight(capture_key(attention_block(id, AttentionKind::cross), CaptureTensor::special_weight),
                         a.to_out.weight, B);
    }
    at::Tensor attn_x = a.to_out(o_img);
    if (rec && rec->wants_key(attention_output_key(id))) rec->record_tokens_as_grid(attention_output_key(id), attn_x);
    x = x + m[2].unsqueeze(1) * attn_x;
    if (blk.dual) {
      const Attn& a2 = blk.attn2;
      const at::Tensor xn2 = modulate(xn0, m[6], m[7]);
      at::Tensor q2 = qk(a2.norm_q, split_heads(a2.to_q(xn2), H)), k2 = qk(a2.norm_k, split_heads(a2.to_k(xn2), H));
      at::Tensor o2 = compat::scaled_dot_product_attention(q2, k2, split_heads(a2.to_v(xn2), H), std::nullopt,
                                                           1.0 / std::sqrt(static_cast<double>(c.attention_head_dim)));
      o2 = o2.transpose(1, 2).reshape({B, N, C}).to(q2.scalar_type());
      x = x + m[8].unsqueeze(1) * a2.to_out(o2);
    }
    x = x + m[5].unsqueeze(1) * blk.ff(modulate(plain_layer_norm(x), m[3], m[4]));
    if (!blk.context_pre_only) {
      ctx = ctx + mc[2].unsqueeze(1) * a.to_add_out(o.narrow(1, N, T));
      ctx = ctx + mc[5].unsqueeze(1) * blk.ff_context(modulate(plain_layer_norm(ctx), mc[3], mc[4]));
    }
  }
  if (!need_output) return {};

  auto so = norm_out_(silu_temb.to(x.scalar_type())).chunk(2, 1);  // AdaLayerNormContinuous: (scale, shift)
  x = proj_out_(modulate(plain_layer_norm(x), so[1], so[0]));      // [B, N, p*p*out]
  x = x.reshape({B, gh, gw, p, p, c.out_channels}).permute({0, 5, 1, 3, 2, 4});  // nhwpqc -> nchpwq
  return x.reshape({B, c.out_channels, gh * p, gw * p});
}

std::vector<LayerInfo> sd3_capture_layers(const Sd3Config& c, int64_t N, int64_t T) {
  std::vector<LayerInfo> out;
  for (int64_t i = 0; i < c.num_layers; ++i)
    append_joint_block_layers(out, vit_block(i), c.num_attention_heads, N, T, c.attention_head_dim, true);
  return out;
}

}  // namespace gb::bb
