#pragma once
// PixArtTransformer2DModel (diffusers v0.32.2 models/transformers/pixart_transformer_2d.py), the PixArt-Sigma and
// PixArt-alpha denoiser (spec backbones.md §4). With use_additional_conditions (PixArt-XL-2-1024-MS) the adaLN-single
// embedding adds the micro-conditions: resolution (H, W) and aspect ratio H/W, each through the 256-channel sinusoid
// and a TimestepEmbedding to inner_dim / 3 (PixArtAlphaCombinedTimestepSizeEmbeddings). Parameter names are the
// checkpoint keys of `transformer/diffusion_pytorch_model.safetensors`:
//   pos_embed.proj, adaln_single.{emb.timestep_embedder.linear_{1,2}, linear}, caption_projection.linear_{1,2},
//   transformer_blocks.{i}.{scale_shift_table, attn1, attn2, ff}, scale_shift_table, proj_out.
// Capture ids (paper, P-fe "else" branch): attn1 = `vit-block{i}-self`, attn2 = `vit-block{i}-cross`.
#include "harness/backbones/nn.h"
#include "harness/backbones/weights.h"
#include "harness/core/backbone.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gb::bb {

class CaptureRecorder;

struct PixArtConfig {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 72;
  int64_t in_channels = 4;
  int64_t out_channels = 8;
  int64_t num_layers = 28;
  int64_t cross_attention_dim = 1152;
  bool attention_bias = true;
  int64_t sample_size = 128;
  int64_t patch_size = 2;
  std::string activation_fn = "gelu-approximate";
  int64_t num_embeds_ada_norm = 1000;
  bool upcast_attention = false;
  std::string norm_type = "ada_norm_single";
  bool norm_elementwise_affine = false;
  double norm_eps = 1e-6;
  double interpolation_scale = 2;
  bool use_additional_conditions = false;
  int64_t caption_channels = 4096;

  // PixArt-alpha/PixArt-XL-2-1024-MS transformer/config.json: the Sigma graph with sample_size 128,
  // interpolation_scale 2 (the default max(128 / 64, 1)) and use_additional_conditions (the default for 128).
  static PixArtConfig alpha_xl_2_1024_ms() {
    PixArtConfig c;
    c.use_additional_conditions = true;
    return c;
  }
  // PixArt-alpha/PixArt-Sigma-XL-2-512-MS: sample_size 64, interpolation_scale 1.
  static PixArtConfig sigma_xl_2_512() {
    PixArtConfig c;
    c.sample_size = 64;
    c.interpolation_scale = 1;
    return c;
  }
  // PixArt-alpha/PixArt-Sigma-XL-2-1024-MS transformer/config.json (spec §0 HPS, official commit edfd592 and
  // snapshot e102b35 copies: 28 layers, 16 x 72, patch 2, sample 128, caption 4096, interpolation_scale 2,
  // use_additional_conditions false).
  static PixArtConfig sigma_xl_2_1024() { return {}; }
  // config.json; diffusers' defaults for absent fields (interpolation_scale = max(sample_size / 64, 1),
  // use_additional_conditions = sample_size == 128). Unsupported variants are a UserError naming the file.
  static PixArtConfig from_json(const std::string& path);
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
};

// The fixed 2-D sin-cos table of PatchEmbed for a grid of `h` x `w` patches (diffusers get_2d_sincos_pos_embed,
// output_type "pt"): float32 [h*w, dim], first half encodes the column, second half the row.
at::Tensor pixart_sincos_pos_embed(int64_t dim, int64_t h, int64_t w, double base_size, double interpolation_scale);

// Every capturable key with its per-sample shape for a latent of `latent_h` x `latent_w` and `text_len` caption
// tokens (`-q` only for square token grids, as the paper's store reshapes it to (C, √N, √N)).
std::vector<LayerInfo> pixart_capture_layers(const PixArtConfig& c, int64_t latent_h, int64_t latent_w,
                                             int64_t text_len);

struct PixArtInputs {
  at::Tensor latents;                 // [B, in_channels, H, W] (noised, as fed to the denoiser)
  at::Tensor timestep;                // [B] (the pipeline passes int64 100)
  at::Tensor encoder_hidden_states;   // [B, T, caption_channels] (T5 output)
  at::Tensor encoder_attention_mask;  // [B, T] {0,1}, or undefined
  at::Tensor resolution;              // [B, 2] (height, width) in the hidden dtype; use_additional_conditions only
  at::Tensor aspect_ratio;            // [B, 1] height / width; use_additional_conditions only
};

class PixArtTransformer {
 public:
  PixArtTransformer(const WeightStore& ws, PixArtConfig config);
  // <root>/transformer/{config.json, weights}; strict loading.
  static std::unique_ptr<PixArtTransformer> load(const std::string& root, at::ScalarType dtype, at::Device device,
                                                 const std::string& variant = "");

  // One forward. With `need_output` false it stops after the last block the recorder wants something from
  // and returns an undefined tensor; otherwise returns the model output [B, out_channels, H, W].
  at::Tensor operator()(const PixArtInputs& in, CaptureRecorder* recorder, bool need_output = true) const;

  const PixArtConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }

 private:
  struct Block {
    at::Tensor scale_shift_table;  // [6, C]
    LayerNorm norm1, norm2;
    Attention attn1, attn2;
    FeedForward ff;
  };
  PixArtConfig config_;
  at::ScalarType dtype_;
  Conv2d patch_proj_;
  TimestepEmbedding t_embedder_;
  TimestepEmbedding resolution_embedder_, aspect_ratio_embedder_;  // use_additional_conditions
  Linear adaln_linear_;
  Linear caption_1_, caption_2_;
  std::vector<Block> blocks_;
  at::Tensor scale_shift_table_;
  LayerNorm norm_out_;
  Linear proj_out_;
};

}  // namespace gb::bb
