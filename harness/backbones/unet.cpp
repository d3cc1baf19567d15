#include "harness/backbones/unet.h"

#include "harness/backbones/json_config.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"

namespace gb::bb {

UNetConfig UNetConfig::sd15() { return UNetConfig{}; }

UNetConfig UNetConfig::sdxl() {
  UNetConfig c;
  c.sample_size = 128;
  c.down_block_types = {"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"};
  c.up_block_types = {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"};
  c.block_out_channels = {320, 640, 1280};
  c.cross_attention_dim = 2048;
  c.transformer_layers_per_block = {1, 2, 10};
  c.num_attention_heads = {5, 10, 20};
  c.use_linear_projection = true;
  c.addition_embed_type = "text_time";
  c.addition_time_embed_dim = 256;
  c.projection_class_embeddings_input_dim = 2816;
  return c;
}

UNetConfig UNetConfig::sd21() {
  UNetConfig c = sd21_base();
  c.sample_size = 96;
  c.upcast_attention = true;
  return c;
}

UNetConfig UNetConfig::sd21_base() {
  UNetConfig c;
  c.cross_attention_dim = 1024;
  c.num_attention_heads = {5, 10, 20, 20};  // config.json attention_head_dim (diffusers reads it as heads)
  c.use_linear_projection = true;
  return c;
}

UNetConfig UNetConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  UNetConfig c;
  json_get(j, "in_channels", c.in_channels, path);
  json_get(j, "out_channels", c.out_channels, path);
  json_get(j, "sample_size", c.sample_size, path);
  json_get(j, "flip_sin_to_cos", c.flip_sin_to_cos, path);
  json_get(j, "freq_shift", c.freq_shift, path);
  json_get(j, "down_block_types", c.down_block_types, path);
  json_get(j, "mid_block_type", c.mid_block_type, path);
  json_get(j, "up_block_types", c.up_block_types, path);
  json_get(j, "block_out_channels", c.block_out_channels, path);
  if (j.contains("layers_per_block") && !j["layers_per_block"].is_number_integer())
    fail_file(path, "layers_per_block must be an integer (per-block lists are not supported)");
  json_get(j, "layers_per_block", c.layers_per_block, path);
  json_get(j, "downsample_padding", c.downsample_padding, path);
  json_get(j, "mid_block_scale_factor", c.mid_block_scale_factor, path);
  json_get(j, "norm_num_groups", c.norm_num_groups, path);
  json_get(j, "norm_eps", c.norm_eps, path);
  json_get(j, "cross_attention_dim", c.cross_attention_dim, path);
  json_get(j, "use_linear_projection", c.use_linear_projection, path);
  json_get(j, "upcast_attention", c.upcast_attention, path);
  json_get(j, "addition_embed_type", c.addition_embed_type, path);
  json_get(j, "addition_time_embed_dim", c.addition_time_embed_dim, path);
  json_get(j, "projection_class_embeddings_input_dim", c.projection_class_embeddings_input_dim, path);
  const size_t n = c.block_out_channels.size();
  if (n == 0 || c.down_block_types.size() != n || c.up_block_types.size() != n)
    fail_file(path, "block_out_channels, down_block_types and up_block_types must have the same length");
  c.transformer_layers_per_block = json_int_or_list(j, "transformer_layers_per_block", n, 1, path);
  if (j.contains("reverse_transformer_layers_per_block") && !j["reverse_transformer_layers_per_block"].is_null()) {
    const auto& r = j["reverse_transformer_layers_per_block"];
    if (r.is_array() && !r.empty() && r[0].is_array())
      fail_file(path, "reverse_transformer_layers_per_block as nested lists is not supported");
    c.reverse_transformer_layers_per_block = json_int_or_list(j, "reverse_transformer_layers_per_block", n, 1, path);
  }
  // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (the latter really is heads).
  if (j.contains("num_attention_heads") && !j["num_attention_heads"].is_null())
    c.num_attention_heads = json_int_or_list(j, "num_attention_heads", n, 8, path);
  else c.num_attention_heads = json_int_or_list(j, "attention_head_dim", n, 8, path);
  for (const auto& t : c.down_block_types)
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D") fail_file(path, "down block type '{}' is not supported", t);
  for (const auto& t : c.up_block_types)
    if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D") fail_file(path, "up block type '{}' is not supported", t);
  if (c.mid_block_type != "UNetMidBlock2DCrossAttn")
    fail_file(path, "mid block type '{}' is not supported", c.mid_block_type);
  if (!c.addition_embed_type.empty() && c.addition_embed_type != "text_time")
    fail_file(path, "addition_embed_type '{}' is not supported", c.addition_embed_type);
  auto unsupported = [&](const char* key, auto ok) {
    if (j.contains(key) && !j[key].is_null() && !ok(j[key]))
      fail_file(path, "{} = {} is not supported", key, j[key].dump());
  };
  unsupported("class_embed_type", [](const nlohmann::json&) { return false; });
  unsupported("encoder_hid_dim", [](const nlohmann::json&) { return false; });
  unsupported("time_embedding_type", [](const nlohmann::json& v) { return v == "positional"; });
  unsupported("resnet_time_scale_shift", [](const nlohmann::json& v) { return v == "default"; });
  unsupported("act_fn", [](const nlohmann::json& v) { return v == "silu"; });
  unsupported("only_cross_attention", [](const nlohmann::json& v) { return v == false; });
  unsupported("dual_cross_attention", [](const nlohmann::json& v) { return v == false; });
  unsupported("cross_attention_dim", [](const nlohmann::json& v) { return v.is_number_integer(); });
  unsupported("conv_in_kernel", [](const nlohmann::json& v) { return v == 3; });
  unsupported("conv_out_kernel", [](const nlohmann::json& v) { return v == 3; });
  unsupported("attention_type", [](const nlohmann::json& v) { return v == "default"; });
  unsupported("time_cond_proj_dim", [](const nlohmann::json&) { return false; });
  unsupported("mid_block_only_cross_attention", [](const nlohmann::json& v) { return v == false; });
  unsupported("center_input_sample", [](const nlohmann::json& v) { return v == false; });
  unsupported("num_class_embeds", [](const nlohmann::json&) { return false; });
  unsupported("time_embedding_dim", [](const nlohmann::json&) { return false; });
  unsupported("timestep_post_act", [](const nlohmann::json&) { return false; });
  unsupported("time_embedding_act_fn", [](const nlohmann::json&) { return false; });
  unsupported("class_embeddings_concat", [](const nlohmann::json& v) { return v == false; });
  unsupported("cross_attention_norm", [](const nlohmann::json&) { return false; });
  unsupported("dropout", [](const nlohmann::json& v) { return v.is_number() && v.get<double>() == 0.0; });
  if (c.mid_block_scale_factor != 1.0) fail_file(path, "mid_block_scale_factor != 1 is not supported");
  for (size_t i = 0; i < n; ++i)
    if (c.num_attention_heads[i] <= 0 || c.block_out_channels[i] % c.num_attention_heads[i] != 0)
      fail_file(path, "block_out_channels[{}] = {} is not divisible by {} heads", i, c.block_out_channels[i],
                c.num_attention_heads[i]);
  return c;
}

namespace {

std::vector<int64_t> reversed_layers(const UNetConfig& c) {
  if (!c.reverse_transformer_layers_per_block.empty()) return c.reverse_transformer_layers_per_block;
  return {c.transformer_layers_per_block.rbegin(), c.transformer_layers_per_block.rend()};
}

// Calls f(block_id_prefix "…-vit-block{B}", level resolution divisor, channels, heads) in forward order.
template <typename F>
void for_each_transformer_block(const UNetConfig& c, F f) {
  const int64_t n = static_cast<int64_t>(c.block_out_channels.size());
  for (int64_t i = 0; i < n; ++i) {
    if (c.down_block_types[i] != "CrossAttnDownBlock2D") continue;
    for (int64_t r = 0; r < c.layers_per_block; ++r)
      for (int64_t b = 0; b < c.transformer_layers_per_block[i]; ++b)
        f(fmt::format("down-level{}-repeat{}-vit-block{}", i, r, b), int64_t(1) << i, c.block_out_channels[i],
          c.num_attention_heads[i]);
  }
  for (int64_t b = 0; b < c.transformer_layers_per_block.back(); ++b)
    f(fmt::format("mid-vit-block{}", b), int64_t(1) << (n - 1), c.block_out_channels.back(),
      c.num_attention_heads.back());
  auto rev = reversed_layers(c);
  for (int64_t i = 0; i < n; ++i) {
    if (c.up_block_types[i] != "CrossAttnUpBlock2D") continue;
    for (int64_t r = 0; r < c.layers_per_block + 1; ++r)
      for (int64_t b = 0; b < rev[i]; ++b)
        f(fmt::format("up-level{}-repeat{}-vit-block{}", i, r, b), int64_t(1) << (n - 1 - i),
          c.block_out_channels[n - 1 - i], c.num_attention_heads[n - 1 - i]);
  }
}

}  // namespace

std::vector<std::string> unet_block_ids(const UNetConfig& config) {
  std::vector<std::string> out;
  for_each_transformer_block(config, [&](const std::string& id, int64_t, int64_t, int64_t) { out.push_back(id); });
  return out;
}

std::vector<LayerInfo> unet_capture_layers(const UNetConfig& config, int64_t latent_size, int64_t text_len) {
  std::vector<LayerInfo> out;
  for_each_transformer_block(config, [&](const std::string& id, int64_t div, int64_t c, int64_t h) {
    const int64_t r = latent_size / div, p = r * r, d = c / h;
    for (auto kind : {AttentionKind::self, AttentionKind::cross}) {
      const int64_t nk = kind == AttentionKind::cross ? text_len : p;
      const std::string b = attention_block(id, kind);
      out.push_back({capture_key(b, CaptureTensor::map), {h, p, nk}});
      out.push_back({capture_key(b, CaptureTensor::q), {c, r, r}});
      out.push_back({capture_key(b, CaptureTensor::special_value), {h, nk, d}});
      out.push_back({capture_key(b, CaptureTensor::special_post_value), {p, c}});
      out.push_back({capture_key(b, CaptureTensor::special_weight), {c, c}});
    }
  });
  return out;
}

UNet2DConditionModel::Transformer2D UNet2DConditionModel::make_transformer(const WeightStore& ws, int64_t channels,
                                                                           int64_t heads, int64_t layers,
                                                                           const std::string& id_prefix) const {
  Transformer2D t;
  t.linear = config_.use_linear_projection;
  t.norm = GroupNorm(ws.sub("norm"), config_.norm_num_groups, channels, 1e-6);
  if (t.linear) {
    t.proj_in_linear = Linear(ws.sub("proj_in"), channels, channels);
    t.proj_out_linear = Linear(ws.sub("proj_out"), channels, channels);
  } else {
    t.proj_in_conv = Conv2d(ws.sub("proj_in"), channels, channels, 1);
    t.proj_out_conv = Conv2d(ws.sub("proj_out"), channels, channels, 1);
  }
  const int64_t hd = channels / heads;
  for (int64_t b = 0; b < layers; ++b) {
    auto bw = ws.sub("transformer_blocks." + std::to_string(b));
    std::string id = id_prefix + "-vit-block" + std::to_string(b);
    TransformerBlock blk;
    blk.norm1 = LayerNorm(bw.sub("norm1"), channels, 1e-5);
    blk.norm2 = LayerNorm(bw.sub("norm2"), channels, 1e-5);
    blk.norm3 = LayerNorm(bw.sub("norm3"), channels, 1e-5);
    blk.attn1 = Attention(bw.sub("attn1"), channels, channels, heads, hd, false, true,
                          attention_block(id, AttentionKind::self));
    blk.attn2 = Attention(bw.sub("attn2"), channels, config_.cross_attention_dim, heads, hd, false, true,
                          attention_block(id, AttentionKind::cross));
    blk.attn1.upcast = blk.attn2.upcast = config_.upcast_attention;
    blk.ff = FeedForward(bw.sub("ff"), channels, 4 * channels, channels, FeedForward::Kind::GEGLU);
    t.blocks.push_back(std::move(blk));
  }
  return t;
}

at::Tensor UNet2DConditionModel::Transformer2D::operator()(const at::Tensor& x, const at::Tensor& ctx,
                                                           CaptureRecorder* rec) const {
  const int64_t b = x.size(0), c = x.size(1), hh = x.size(2), ww = x.size(3);
  auto h = norm(x);
  if (!linear) {
    h = proj_in_conv(h).permute({0, 2, 3, 1}).reshape({b, hh * ww, c});
  } else {
    h = proj_in_linear(h.permute({0, 2, 3, 1}).reshape({b, hh * ww, c}));
  }
  for (const auto& blk : blocks) {
    h = blk.attn1(blk.norm1(h), at::Tensor(), rec) + h;
    h = blk.attn2(blk.norm2(h), ctx, rec) + h;
    h = blk.ff(blk.norm3(h)) + h;
  }
  if (!linear) {
    h = proj_out_conv(h.reshape({b, hh, ww, c}).permute({0, 3, 1, 2}).contiguous());
  } else {
    h = proj_out_linear(h).reshape({b, hh, ww, c}).permute({0, 3, 1, 2}).contiguous();
  }
  return h + x;
}

UNet2DConditionModel::UNet2DConditionModel(const UNetConfig& config, const WeightStore& ws) : config_(config) {
  const auto& boc = config.block_out_channels;
  const int64_t n = static_cast<int64_t>(boc.size());
  const int64_t g = config.norm_num_groups;
  const double eps = config.norm_eps;
  time_embed_dim_ = boc[0] * 4;
  time_embedding_ = TimestepEmbedding(ws.sub("time_embedding"), boc[0], time_embed_dim_);
  if (config.is_sdxl())
    add_embedding_ =
        TimestepEmbedding(ws.sub("add_embedding"), config.projection_class_embeddings_input_dim, time_embed_dim_);
  conv_in_ = Conv2d(ws.sub("conv_in"), config.in_channels, boc[0], 3, 1, 1);

  int64_t out = boc[0];
  for (int64_t i = 0; i < n; ++i) {
    int64_t in = out;
    out = boc[i];
    auto bw = ws.sub("down_blocks." + std::to_string(i));
    Block blk;
    bool cross = config.down_block_types[i] == "CrossAttnDownBlock2D";
    for (int64_t r = 0; r < config.layers_per_block; ++r) {
      blk.resnets.emplace_back(bw.sub("resnets." + std::to_string(r)), r == 0 ? in : out, out, time_embed_dim_, g, eps);
      if (cross)
        blk.attentions.push_back(make_transformer(bw.sub("attentions." + std::to_string(r)), out,
                                                  config.num_attention_heads[i], config.transformer_layers_per_block[i],
                                                  fmt::format("down-level{}-repeat{}", i, r)));
    }
    if (i + 1 < n) blk.down = Downsample2D(bw.sub("downsamplers.0"), out, config.downsample_padding);
    down_.push_back(std::move(blk));
  }

  auto mw = ws.sub("mid_block");
  const int64_t cm = boc.back();
  mid_.resnets.emplace_back(mw.sub("resnets.0"), cm, cm, time_embed_dim_, g, eps);
  mid_.attentions.push_back(make_transformer(mw.sub("attentions.0"), cm, config.num_attention_heads.back(),
                                             config.transformer_layers_per_block.back(), "mid"));
  mid_.resnets.emplace_back(mw.sub("resnets.1"), cm, cm, time_embed_dim_, g, eps);

  auto rev_layers = reversed_layers(config);
  std::vector<int64_t> rboc(boc.rbegin(), boc.rend());
  std::vector<int64_t> rheads(config.num_attention_heads.rbegin(), config.num_attention_heads.rend());
  out = rboc[0];
  for (int64_t i = 0; i < n; ++i) {
    int64_t prev = out;
    out = rboc[i];
    int64_t in = rboc[std::min(i + 1, n - 1)];
    auto bw = ws.sub("up_blocks." + std::to_string(i));
    Block blk;
    bool cross = config.up_block_types[i] == "CrossAttnUpBlock2D";
    const int64_t layers = config.layers_per_block + 1;
    for (int64_t r = 0; r < layers; ++r) {
      int64_t skip = r == layers - 1 ? in : out;
      int64_t rin = r == 0 ? prev : out;
      blk.resnets.emplace_back(bw.sub("resnets." + std::to_string(r)), rin + skip, out, time_embed_dim_, g, eps);
      if (cross)
        blk.attentions.push_back(make_transformer(bw.sub("attentions." + std::to_string(r)), out, rheads[i],
                                                  rev_layers[i], fmt::format("up-level{}-repeat{}", i, r)));
    }
    if (i + 1 < n) blk.up = Upsample2D(bw.sub("upsamplers.0"), out);
    up_.push_back(std::move(blk));
  }
  norm_out_ = GroupNorm(ws.sub("conv_norm_out"), g, boc[0], eps);
  conv_out_ = Conv2d(ws.sub("conv_out"), boc[0], config.out_channels, 3, 1, 1);
}

at::Tensor UNet2DConditionModel::forward(const UNetInputs& in, CaptureRecorder* rec, bool stop_when_captured) const {
  const auto& x0 = in.latents;
  const int64_t b = x0.size(0);
  const int64_t n = static_cast<int64_t>(down_.size());
  if (x0.size(2) % (int64_t(1) << (n - 1)) != 0 || x0.size(3) % (int64_t(1) << (n - 1)) != 0)
    fail("UNet: latent size {}x{} is not a multiple of {}", x0.size(2), x0.size(3), int64_t(1) << (n - 1));
  auto ts = in.timestep.reshape({-1});
  if (ts.size(0) == 1 && b > 1) ts = ts.expand({b});
  auto t_emb = timestep_embedding(ts, config_.block_out_channels[0], config_.flip_sin_to_cos, config_.freq_shift)
                   .to(x0.scalar_type());
  auto emb = time_embedding_(t_emb);
  if (config_.is_sdxl()) {
    if (!in.text_embeds.defined() || !in.time_ids.defined())
      fail("SDXL UNet needs text_embeds and time_ids (added conditioning)");
    auto time_embeds = timestep_embedding(in.time_ids.flatten(), config_.addition_time_embed_dim,
                                          config_.flip_sin_to_cos, config_.freq_shift)
                           .reshape({b, -1});
    auto add_embeds = at::cat({in.text_embeds, time_embeds.to(in.text_embeds.scalar_type())}, -1).to(emb.scalar_type());
    emb = emb + add_embedding_(add_embeds);
  }
  const auto& ctx = in.encoder_hidden_states;
  auto done = [&] { return stop_when_captured && rec && rec->unrecorded().empty(); };

  auto h = conv_in_(x0);
  std::vector<at::Tensor> skips{h};
  for (const auto& blk : down_) {
    for (size_t r = 0; r < blk.resnets.size(); ++r) {
      h = blk.resnets[r](h, emb);
      if (!blk.attentions.empty()) h = blk.attentions[r](h, ctx, rec);
      skips.push_back(h);
    }
    if (blk.down) {
      h = (*blk.down)(h);
      skips.push_back(h);
    }
  }
  h = mid_.resnets[0](h, emb);
  h = mid_.attentions[0](h, ctx, rec);
  h = mid_.resnets[1](h, emb);
  for (const auto& blk : up_) {
    if (done()) return at::Tensor();
    for (size_t r = 0; r < blk.resnets.size(); ++r) {
      h = at::cat({h, skips.back()}, 1);
      skips.pop_back();
      h = blk.resnets[r](h, emb);
      if (!blk.attentions.empty()) h = blk.attentions[r](h, ctx, rec);
    }
    if (blk.up) h = (*blk.up)(h);
  }
  if (done()) return at::Tensor();
  return conv_out_(at::silu(norm_out_(h)));
}

}  // namespace gb::bb
