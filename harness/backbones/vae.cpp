#include "harness/backbones/vae.h"

#include "harness/backbones/json_config.h"
#include "harness/core/errors.h"

namespace gb::bb {

VaeConfig VaeConfig::sd15() { return VaeConfig{}; }

VaeConfig VaeConfig::sdxl() {
  VaeConfig c;
  c.scaling_factor = 0.13025;
  return c;
}

VaeConfig VaeConfig::flux() {
  VaeConfig c = sd15();
  c.latent_channels = 16;
  c.use_quant_conv = false;
  c.scaling_factor = 0.3611;
  c.shift_factor = 0.1159;
  return c;
}

VaeConfig VaeConfig::sd3() {
  VaeConfig c = flux();
  c.scaling_factor = 1.5305;
  c.shift_factor = 0.0609;
  return c;
}

VaeConfig VaeConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  VaeConfig c;
  json_get(j, "in_channels", c.in_channels, path);
  json_get(j, "latent_channels", c.latent_channels, path);
  json_get(j, "block_out_channels", c.block_out_channels, path);
  json_get(j, "layers_per_block", c.layers_per_block, path);
  json_get(j, "norm_num_groups", c.norm_num_groups, path);
  json_get(j, "act_fn", c.act_fn, path);
  json_get(j, "scaling_factor", c.scaling_factor, path);
  double shift = 0;
  if (j.contains("shift_factor") && !j["shift_factor"].is_null()) {
    json_get(j, "shift_factor", shift, path);
    c.shift_factor = shift;
  }
  json_get(j, "use_quant_conv", c.use_quant_conv, path);
  json_get(j, "use_post_quant_conv", c.use_post_quant_conv, path);
  json_get(j, "out_channels", c.out_channels, path);
  json_get(j, "mid_block_add_attention", c.mid_block_add_attention, path);
  json_get(j, "force_upcast", c.force_upcast, path);
  if (c.act_fn != "silu") fail_file(path, "act_fn '{}' is not supported (only silu)", c.act_fn);
  if (j.contains("down_block_types")) {
    for (const auto& t : j["down_block_types"])
      if (t != "DownEncoderBlock2D") fail_file(path, "down block type {} is not supported", t.dump());
  }
  if (j.contains("up_block_types")) {
    for (const auto& t : j["up_block_types"])
      if (t != "UpDecoderBlock2D") fail_file(path, "up block type {} is not supported", t.dump());
  }
  if (j.contains("latents_mean") && !j["latents_mean"].is_null())
    fail_file(path, "latents_mean/latents_std normalisation is not supported");
  if (c.block_out_channels.empty()) fail_file(path, "block_out_channels is empty");
  return c;
}

VaeMidBlock::VaeMidBlock(const WeightStore& mid, int64_t c, int64_t g, bool with_attn) : with_attention(with_attn) {
  const double eps = 1e-6;
  res0 = ResnetBlock2D(mid.sub("resnets.0"), c, c, 0, g, eps);
  if (with_attention) {
    auto a = mid.sub("attentions.0");
    // Legacy names (diffusers < 0.14 files, D-mu _convert_deprecated_attention_blocks).
    for (const char* p : {"weight", "bias"}) {
      std::string s = p;
      a.add_alias("to_q." + s, "query." + s);
      a.add_alias("to_k." + s, "key." + s);
      a.add_alias("to_v." + s, "value." + s);
      a.add_alias("to_out.0." + s, "proj_attn." + s);
    }
    attn_norm = GroupNorm(a.sub("group_norm"), g, c, eps);
    attn = Attention(a, c, c, 1, c, true, true);
  }
  res1 = ResnetBlock2D(mid.sub("resnets.1"), c, c, 0, g, eps);
}

at::Tensor VaeMidBlock::operator()(const at::Tensor& x) const {
  at::Tensor undefined;
  auto h = res0(x, undefined);
  if (with_attention) {
    int64_t b = h.size(0), c = h.size(1), hh = h.size(2), ww = h.size(3);
    auto tokens = attn_norm(h).view({b, c, hh * ww}).transpose(1, 2);
    // upcast_softmax=True in the stock processor; SDPA computes the softmax in an accurate accumulator.
    auto a = attn(tokens, at::Tensor(), nullptr);
    h = a.transpose(1, 2).reshape({b, c, hh, ww}) + h;
  }
  return res1(h, undefined);
}

VaeEncoder::VaeEncoder(const VaeConfig& config, const WeightStore& ws) : config_(config) {
  ws.ignore_prefix("decoder.");
  ws.ignore_prefix("post_quant_conv.");
  auto enc = ws.sub("encoder");
  const auto& boc = config.block_out_channels;
  const int64_t g = config.norm_num_groups;
  const double eps = 1e-6;
  conv_in_ = Conv2d(enc.sub("conv_in"), config.in_channels, boc[0], 3, 1, 1);
  int64_t out = boc[0];
  for (size_t i = 0; i < boc.size(); ++i) {
    int64_t in = out;
    out = boc[i];
    auto blk = enc.sub("down_blocks." + std::to_string(i));
    DownBlock d;
    for (int64_t r = 0; r < config.layers_per_block; ++r)
      d.resnets.emplace_back(blk.sub("resnets." + std::to_string(r)), r == 0 ? in : out, out, 0, g, eps);
    if (i + 1 < boc.size()) d.downsample = Downsample2D(blk.sub("downsamplers.0"), out, 0);
    down_.push_back(std::move(d));
  }
  const int64_t c = boc.back();
  mid_ = VaeMidBlock(enc.sub("mid_block"), c, g, config.mid_block_add_attention);
  norm_out_ = GroupNorm(enc.sub("conv_norm_out"), g, c, eps);
  conv_out_ = Conv2d(enc.sub("conv_out"), c, 2 * config.latent_channels, 3, 1, 1);
  if (config.use_quant_conv)
    quant_conv_ = Conv2d(ws.sub("quant_conv"), 2 * config.latent_channels, 2 * config.latent_channels, 1);
}

at::Tensor VaeEncoder::moments(const at::Tensor& images) const {
  at::Tensor undefined;
  auto h = conv_in_(images);
  for (const auto& d : down_) {
    for (const auto& r : d.resnets) h = r(h, undefined);
    if (d.downsample) h = (*d.downsample)(h);
  }
  h = mid_(h);
  h = conv_out_(at::silu(norm_out_(h)));
  if (config_.use_quant_conv) h = quant_conv_(h);
  return h;
}

at::Tensor VaeEncoder::sample(const at::Tensor& images, const at::Tensor& noise) const {
  auto m = moments(images);
  auto parts = m.chunk(2, 1);
  auto mean = parts[0];
  auto logvar = at::clamp(parts[1], -30.0, 20.0);
  auto std = at::exp(0.5 * logvar);
  return mean + std * noise.to(mean.device(), mean.scalar_type());
}

at::Tensor VaeEncoder::latents(const at::Tensor& images, const at::Tensor& noise, at::ScalarType out_dtype) const {
  auto z = sample(images, noise).to(out_dtype);
  if (config_.shift_factor) z = z - *config_.shift_factor;
  return z * config_.scaling_factor;
}

VaeDecoder::VaeDecoder(const VaeConfig& config, const WeightStore& ws) : config_(config) {
  ws.ignore_prefix("encoder.");
  ws.ignore_prefix("quant_conv.");
  auto dec = ws.sub("decoder");
  const auto& boc = config.block_out_channels;
  const int64_t g = config.norm_num_groups;
  const double eps = 1e-6;
  const int64_t z = config.latent_channels;
  if (config.use_post_quant_conv) post_quant_conv_ = Conv2d(ws.sub("post_quant_conv"), z, z, 1);
  conv_in_ = Conv2d(dec.sub("conv_in"), z, boc.back(), 3, 1, 1);
  mid_ = VaeMidBlock(dec.sub("mid_block"), boc.back(), g, config.mid_block_add_attention);
  int64_t out = boc.back();
  const auto n = boc.size();
  for (size_t i = 0; i < n; ++i) {
    const int64_t in = out;
    out = boc[n - 1 - i];
    auto blk = dec.sub("up_blocks." + std::to_string(i));
    UpBlock u;
    for (int64_t r = 0; r < config.layers_per_block + 1; ++r)
      u.resnets.emplace_back(blk.sub("resnets." + std::to_string(r)), r == 0 ? in : out, out, 0, g, eps);
    if (i + 1 < n) u.upsample = Upsample2D(blk.sub("upsamplers.0"), out);
    up_.push_back(std::move(u));
  }
  norm_out_ = GroupNorm(dec.sub("conv_norm_out"), g, boc[0], eps);
  conv_out_ = Conv2d(dec.sub("conv_out"), boc[0], config.out_channels, 3, 1, 1);
}

at::Tensor VaeDecoder::unscale(const at::Tensor& latents) const {
  auto z = latents / config_.scaling_factor;
  if (config_.shift_factor) z = z + *config_.shift_factor;
  return z;
}

at::Tensor VaeDecoder::decode(const at::Tensor& z_in) const {
  at::Tensor undefined;
  auto z = config_.use_post_quant_conv ? post_quant_conv_(z_in) : z_in;
  auto h = conv_in_(z);
  h = mid_(h);
  for (const auto& u : up_) {
    for (const auto& r : u.resnets) h = r(h, undefined);
    if (u.upsample) h = (*u.upsample)(h);
  }
  return conv_out_(at::silu(norm_out_(h)));
}

at::Tensor vae_postprocess_uint8(const at::Tensor& images) {
  auto x = (images * 0.5 + 0.5).clamp(0, 1);
  x = x.to(at::kCPU).permute({0, 2, 3, 1}).to(at::kFloat);
  return at::round(x * 255).to(at::kByte).contiguous();
}

}  // namespace gb::bb
