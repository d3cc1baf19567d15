#include "harness/backbones/pixart_transformer.h"

#include "harness/backbones/json_config.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace gb::bb {

PixArtConfig PixArtConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  PixArtConfig c;
  c.out_channels = -1;
  c.caption_channels = 0;
  json_get(j, "num_attention_heads", c.num_attention_heads, path);
  json_get(j, "attention_head_dim", c.attention_head_dim, path);
  json_get(j, "in_channels", c.in_channels, path);
  json_get(j, "out_channels", c.out_channels, path);
  if (c.out_channels < 0) c.out_channels = c.in_channels;
  json_get(j, "num_layers", c.num_layers, path);
  json_get(j, "cross_attention_dim", c.cross_attention_dim, path);
  json_get(j, "attention_bias", c.attention_bias, path);
  json_get(j, "sample_size", c.sample_size, path);
  json_get(j, "patch_size", c.patch_size, path);
  json_get(j, "activation_fn", c.activation_fn, path);
  json_get(j, "num_embeds_ada_norm", c.num_embeds_ada_norm, path);
  json_get(j, "upcast_attention", c.upcast_attention, path);
  json_get(j, "norm_type", c.norm_type, path);
  json_get(j, "norm_elementwise_affine", c.norm_elementwise_affine, path);
  json_get(j, "norm_eps", c.norm_eps, path);
  c.interpolation_scale = std::max<double>(static_cast<double>(c.sample_size / 64), 1.0);
  json_get(j, "interpolation_scale", c.interpolation_scale, path);
  c.use_additional_conditions = c.sample_size == 128;
  json_get(j, "use_additional_conditions", c.use_additional_conditions, path);
  json_get(j, "caption_channels", c.caption_channels, path);
  if (c.norm_type != "ada_norm_single")
    fail_file(path, "norm_type '{}' is not supported (PixArt uses ada_norm_single)", c.norm_type);
  if (c.activation_fn != "gelu-approximate")
    fail_file(path, "activation_fn '{}' is not supported (PixArt uses gelu-approximate)", c.activation_fn);
  if (c.norm_elementwise_affine) fail_file(path, "norm_elementwise_affine true is not supported");
  if (c.use_additional_conditions && (c.num_attention_heads * c.attention_head_dim) % 3 != 0)
    fail_file(path,
              "use_additional_conditions needs an inner dimension divisible by 3 (the size embeddings are "
              "inner_dim / 3 wide), got {}",
              c.num_attention_heads * c.attention_head_dim);
  if (c.caption_channels <= 0) fail_file(path, "caption_channels is required (PixArt projects T5 captions)");
  if (c.upcast_attention) fail_file(path, "upcast_attention true is not supported");
  return c;
}

at::Tensor pixart_sincos_pos_embed(int64_t dim, int64_t h, int64_t w, double base_size, double interpolation_scale) {
  if (dim % 4 != 0) fail("sin-cos position table needs an embedding dimension divisible by 4, got {}", dim);
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  // Positions in float32 as diffusers computes them, then the products in float64.
  at::Tensor gh = at::arange(h, f32) / (static_cast<double>(h) / base_size) / interpolation_scale;
  at::Tensor gw = at::arange(w, f32) / (static_cast<double>(w) / base_size) / interpolation_scale;
  at::Tensor col = gw.unsqueeze(0).expand({h, w}).reshape({-1}).to(at::kDouble);  // meshgrid(w, h, "xy")[0]
  at::Tensor row = gh.unsqueeze(1).expand({h, w}).reshape({-1}).to(at::kDouble);
  const int64_t half = dim / 2;
  at::Tensor omega = at::arange(half / 2, at::TensorOptions().dtype(at::kDouble)) / (half / 2.0);
  omega = 1.0 / at::pow(10000.0, omega);
  auto one_d = [&](const at::Tensor& pos) {
    at::Tensor out = at::outer(pos, omega);
    return at::cat({at::sin(out), at::cos(out)}, 1);
  };
  return at::cat({one_d(col), one_d(row)}, 1).to(at::kFloat);
}

PixArtTransformer::PixArtTransformer(const WeightStore& ws, PixArtConfig config)
    : config_(std::move(config)), dtype_(ws.dtype()) {
  const auto& c = config_;
  const int64_t C = c.inner_dim();
  const int64_t p = c.patch_size;
  patch_proj_ = Conv2d(ws.sub("pos_embed.proj"), c.in_channels, C, p, p, 0, true);
  t_embedder_ = TimestepEmbedding(ws.sub("adaln_single.emb.timestep_embedder"), 256, C);
  if (c.use_additional_conditions) {
    resolution_embedder_ = TimestepEmbedding(ws.sub("adaln_single.emb.resolution_embedder"), 256, C / 3);
    aspect_ratio_embedder_ = TimestepEmbedding(ws.sub("adaln_single.emb.aspect_ratio_embedder"), 256, C / 3);
  }
  adaln_linear_ = Linear(ws.sub("adaln_single.linear"), C, 6 * C);
  caption_1_ = Linear(ws.sub("caption_projection.linear_1"), c.caption_channels, C);
  caption_2_ = Linear(ws.sub("caption_projection.linear_2"), C, C);
  blocks_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    auto b = ws.sub("transformer_blocks." + std::to_string(i));
    Block& blk = blocks_[i];
    std::string id = vit_block(i);
    blk.scale_shift_table = b.get("scale_shift_table", {6, C});
    blk.norm1 = LayerNorm(b.sub("norm1"), C, c.norm_eps, /*affine=*/false);
    blk.norm2 = LayerNorm(b.sub("norm2"), C, c.norm_eps, /*affine=*/false);
    blk.attn1 = Attention(b.sub("attn1"), C, C, c.num_attention_heads, c.attention_head_dim, c.attention_bias, true,
                          attention_block(id, AttentionKind::self));
    blk.attn2 = Attention(b.sub("attn2"), C, c.cross_attention_dim, c.num_attention_heads, c.attention_head_dim,
                          c.attention_bias, true, attention_block(id, AttentionKind::cross));
    blk.ff = FeedForward(b.sub("ff"), C, 4 * C, C, FeedForward::Kind::GELUTanh, true);
  }
  scale_shift_table_ = ws.get("scale_shift_table", {2, C});
  norm_out_ = LayerNorm(ws.sub("norm_out"), C, 1e-6, /*affine=*/false);
  proj_out_ = Linear(ws.sub("proj_out"), C, p * p * c.out_channels);
}

std::unique_ptr<PixArtTransformer> PixArtTransformer::load(const std::string& root, at::ScalarType dtype,
                                                           at::Device device, const std::string& variant) {
  auto cfg = PixArtConfig::from_json((std::filesystem::path(root) / "transformer" / "config.json").string());
  return load_component(root, "transformer", dtype, device, variant,
                        [&](const WeightStore& ws) { return std::make_unique<PixArtTransformer>(ws, cfg); });
}

at::Tensor PixArtTransformer::operator()(const PixArtInputs& in, CaptureRecorder* rec, bool need_output) const {
  const auto& c = config_;
  const int64_t C = c.inner_dim(), p = c.patch_size;
  if (in.latents.dim() != 4 || in.latents.size(1) != c.in_channels)
    fail("PixArt: latents must be [B, {}, H, W], got {}", c.in_channels, shape_str(in.latents.sizes()));
  const int64_t B = in.latents.size(0), gh = in.latents.size(2) / p, gw = in.latents.size(3) / p;
  if (in.latents.size(2) % p || in.latents.size(3) % p) fail("PixArt: latent size must be a multiple of {}", p);
  if (in.encoder_hidden_states.dim() != 3 || in.encoder_hidden_states.size(0) != B ||
      in.encoder_hidden_states.size(2) != c.caption_channels)
    fail("PixArt: encoder_hidden_states must be [{}, T, {}], got {}", B, c.caption_channels,
         shape_str(in.encoder_hidden_states.sizes()));
  const int64_t T = in.encoder_hidden_states.size(1);
  auto dev = patch_proj_.weight.device();

  // Last block the recorder wants anything from (for early stopping when only captures are needed).
  int64_t last = c.num_layers - 1;
  if (!need_output) {
    last = -1;
    for (int64_t i = 0; i < c.num_layers; ++i) {
      std::string id = vit_block(i);
      if (rec && (rec->wants(attention_block(id, AttentionKind::self)).any() ||
                  rec->wants(attention_block(id, AttentionKind::cross)).any()))
        last = i;
    }
    if (last < 0) return {};
  }

  // Caption mask -> additive bias (1 - m) * -10000 in the hidden dtype, broadcast over heads and queries.
  at::Tensor bias;
  if (in.encoder_attention_mask.defined()) {
    if (in.encoder_attention_mask.sizes() != at::IntArrayRef({B, T}))
      fail("PixArt: encoder_attention_mask must be [{}, {}], got {}", B, T,
           shape_str(in.encoder_attention_mask.sizes()));
    bias = ((1 - in.encoder_attention_mask.to(dev).to(dtype_)) * -10000.0).view({B, 1, 1, T});
  }

  // Patch embedding + sin-cos table for the runtime grid (base size = sample_size / patch_size).
  at::Tensor x = patch_proj_(in.latents.to(dev).to(dtype_)).flatten(2).transpose(1, 2);  // [B, N, C]
  at::Tensor pos = pixart_sincos_pos_embed(C, gh, gw, static_cast<double>(c.sample_size / p), c.interpolation_scale);
  x = (x + pos.to(dev).unsqueeze(0)).to(dtype_);

  // adaLN-single: embedded timestep and its 6-way modulation.
  at::Tensor t_emb = t_embedder_(timestep_embedding(in.timestep.to(dev).reshape({-1}), 256, true, 0).to(dtype_));
  if (t_emb.size(0) == 1 && B > 1) t_emb = t_emb.expand({B, C});
  if (c.use_additional_conditions) {
    // PixArtAlphaCombinedTimestepSizeEmbeddings: sinusoid of each value (fp32), cast to the hidden dtype, embedded,
    // resolution [B, 2·C/3] and aspect ratio [B, C/3] concatenated and added to the timestep embedding.
    if (!in.resolution.defined() || !in.aspect_ratio.defined())
      fail("PixArt: this transformer uses additional conditions (resolution, aspect_ratio) but none were given");
    if (in.resolution.numel() != 2 * B || in.aspect_ratio.numel() != B)
      fail("PixArt: resolution must be [{}, 2] and aspect_ratio [{}, 1], got {} and {}", B, B,
           shape_str(in.resolution.sizes()), shape_str(in.aspect_ratio.sizes()));
    auto size_emb = [&](const TimestepEmbedding& e, const at::Tensor& v) {
      return e(timestep_embedding(v.to(dev).flatten(), 256, true, 0).to(dtype_)).reshape({B, -1});
    };
    t_emb =
        t_emb +
        at::cat({size_emb(resolution_embedder_, in.resolution), size_emb(aspect_ratio_embedder_, in.aspect_ratio)}, 1);
  }
  at::Tensor tmod = adaln_linear_(at::silu(t_emb)).view({B, 6, C});

  at::Tensor ctx = caption_2_(at::gelu(caption_1_(in.encoder_hidden_states.to(dev).to(dtype_)), "tanh"));

  for (int64_t i = 0; i <= last; ++i) {
    const Block& blk = blocks_[i];
    auto mods = (blk.scale_shift_table.unsqueeze(0) + tmod).chunk(6, 1);  // each [B, 1, C]
    const auto &shift_msa = mods[0], &scale_msa = mods[1], &gate_msa = mods[2];
    const auto &shift_mlp = mods[3], &scale_mlp = mods[4], &gate_mlp = mods[5];
    at::Tensor h = blk.norm1(x) * (1 + scale_msa) + shift_msa;
    x = x + gate_msa * blk.attn1(h, at::Tensor(), rec);
    x = x + blk.attn2(x, ctx, rec, bias);  // no norm before the cross-attention (ada_norm_single)
    h = blk.norm2(x) * (1 + scale_mlp) + shift_mlp;
    x = x + gate_mlp * blk.ff(h);
  }
  if (!need_output) return {};

  auto ss = (scale_shift_table_.unsqueeze(0) + t_emb.unsqueeze(1)).chunk(2, 1);
  x = norm_out_(x) * (1 + ss[1]) + ss[0];
  x = proj_out_(x);                                                              // [B, N, p*p*out]
  x = x.reshape({B, gh, gw, p, p, c.out_channels}).permute({0, 5, 1, 3, 2, 4});  // n c h p w q
  return x.reshape({B, c.out_channels, gh * p, gw * p});
}

std::vector<LayerInfo> pixart_capture_layers(const PixArtConfig& c, int64_t latent_h, int64_t latent_w,
                                             int64_t text_len) {
  const int64_t C = c.inner_dim(), H = c.num_attention_heads, d = c.attention_head_dim;
  const int64_t gh = latent_h / c.patch_size, gw = latent_w / c.patch_size, N = gh * gw;
  std::vector<LayerInfo> out;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    for (auto kind : {AttentionKind::cross, AttentionKind::self}) {
      const std::string id = attention_block(vit_block(i), kind);
      const int64_t nk = kind == AttentionKind::cross ? text_len : N;
      out.push_back({capture_key(id, CaptureTensor::map), {H, N, nk}});
      if (gh == gw) out.push_back({capture_key(id, CaptureTensor::q), {C, gh, gw}});
      out.push_back({capture_key(id, CaptureTensor::special_value), {H, nk, d}});
      out.push_back({capture_key(id, CaptureTensor::special_post_value), {N, C}});
      out.push_back({capture_key(id, CaptureTensor::special_weight), {C, C}});
    }
  }
  return out;
}

}  // namespace gb::bb
