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
  json_get(j, "mid_block_add_attention", c.mid_block_add_attention, path);
  json_get(j, "force_upcast", c.force_upcast, path);
  if (c.act_fn != "silu") fail_file(path, "act_fn '{}' is not supported (only silu)", c.act_fn);
  if (j.contains("down_block_types")) {
    for (const auto& t : j["down_block_types"])
      if (t != "DownEncoderBlock2D") fail_file(path, "down block type {} is not supported", t.dump());
  }
  if (c.block_out_channels.empty()) fail_file(path, "block_out_channels is empty");
  return c;
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
  auto mid = enc.sub("mid_block");
  const int64_t c = boc.back();
  mid_res0_ = ResnetBlock2D(mid.sub("resnets.0"), c, c, 0, g, eps);
  if (config.mid_block_add_attention) {
    auto attn = mid.sub("attentions.0");
    // Legacy names (diffusers < 0.14 files, D-mu _convert_deprecated_attention_blocks).
    for (const char* p : {"weight", "bias"}) {
      std::string s = p;
      attn.add_alias("to_q." + s, "query." + s);
      attn.add_alias("to_k." + s, "key." + s);
      attn.add_alias("to_v." + s, "value." + s);
      attn.add_alias("to_out.0." + s, "proj_attn." + s);
    }
    mid_attn_norm_ = GroupNorm(attn.sub("group_norm"), g, c, eps);
    mid_attn_ = Attention(attn, c, c, 1, c, true, true);
  }
  mid_res1_ = ResnetBlock2D(mid.sub("resnets.1"), c, c, 0, g, eps);
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
  h = mid_res0_(h, undefined);
  if (config_.mid_block_add_attention) {
    int64_t b = h.size(0), c = h.size(1), hh = h.size(2), ww = h.size(3);
    auto tokens = mid_attn_norm_(h).view({b, c, hh * ww}).transpose(1, 2);
    // upcast_softmax=True in the stock processor; SDPA computes the softmax in an accurate accumulator.
    auto a = mid_attn_(tokens, at::Tensor(), nullptr);
    h = a.transpose(1, 2).reshape({b, c, hh, ww}) + h;
  }
  h = mid_res1_(h, undefined);
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

}  // namespace gb::bb
