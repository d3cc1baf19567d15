#pragma once
// SD3Transformer2DModel (diffusers v0.32.2 models/transformers/transformer_sd3.py, attention.py
// JointTransformerBlock, attention_processor.py JointAttnProcessor2_0, normalization.py AdaLayerNormZero /
// SD35AdaLayerNormZeroX / AdaLayerNormContinuous), the Stable Diffusion 3.5 Medium and Large denoiser. Parameter
// names are the checkpoint keys of `transformer/diffusion_pytorch_model*.safetensors`: pos_embed.{proj, pos_embed}
// (the sin-cos table is a stored buffer, cropped to the runtime grid), time_text_embed.{timestep_embedder,
// text_embedder.linear_{1,2}}, context_embedder, transformer_blocks.{i}.{norm1, norm1_context, attn, attn2, ff,
// ff_context}, norm_out.linear, proj_out.
//
// MMDiT: every block runs one joint attention over [image | text] (image first, the reverse of Flux), QK RMSNorm
// when qk_norm = "rms_norm"; the last block is context_pre_only (its text stream ends there: AdaLayerNormContinuous
// on the context, no to_add_out, no ff_context). SD3.5 Medium's dual_attention_layers add an image-only attention
// (`attn2`, modulated by the extra shift/scale/gate of SD35AdaLayerNormZeroX) after the joint one.
//
// Captures, named and sliced as Flux's (flux_transformer.h) so every method applies unchanged; block id
// `vit-block{i}`, i = 0..num_layers-1, one joint softmax P per block over [image (N) | text (T)] keys:
//   vit-block{i}-cross-map                [B, H, N, T]  P[:, :, :N, N:]  image queries x text keys, not renormalised
//   vit-block{i}-self-map                 [B, H, N, N]  P[:, :, :N, :N]  ([B, 1, N, N] head mean when asked)
//   vit-block{i}-attn-out                 [B, C, r, r]  to_out.0 output of the image rows (before the gate)
//   vit-block{i}-cross-special-value      [B, H, N, d]  image-stream v after the head split
//   vit-block{i}-cross-special-post-value [B, N, H*d]   (P·v) image rows before to_out.0
//   vit-block{i}-cross-special-weight     [B, C, H*d]   to_out.0.weight
// The dual (image-only) attention is not captured: it has no text keys, and its self map would be a second
// image x image map per block under the same name. The softmax of a captured block is explicit (the model dtype,
// as the paper's Flux processor computes it), a group of heads at a time; other blocks use the fused attention.
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

struct Sd3Config {  // transformer/config.json
  int64_t sample_size = 128;
  int64_t patch_size = 2;
  int64_t in_channels = 16;
  int64_t num_layers = 18;
  int64_t attention_head_dim = 64;
  int64_t num_attention_heads = 18;
  int64_t joint_attention_dim = 4096;
  int64_t caption_projection_dim = 1152;
  int64_t pooled_projection_dim = 2048;
  int64_t out_channels = 16;
  int64_t pos_embed_max_size = 96;
  std::vector<int64_t> dual_attention_layers;
  std::string qk_norm;  // "" or "rms_norm"

  // stabilityai/stable-diffusion-3.5-medium transformer/config.json: 24 layers of 24 x 64, dual attention in
  // layers 0-12, caption projection 1536, pos_embed_max_size 384, qk_norm rms_norm.
  static Sd3Config sd35_medium();
  // stabilityai/stable-diffusion-3.5-large transformer/config.json: 38 layers of 38 x 64, caption projection
  // 2432, pos_embed_max_size 192, qk_norm rms_norm, no dual attention.
  static Sd3Config sd35_large();
  static Sd3Config from_json(const std::string& path);
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  bool dual(int64_t layer) const;
};

// Every capturable key with its per-sample shape for `image_tokens` patches and `text_len` text tokens.
std::vector<LayerInfo> sd3_capture_layers(const Sd3Config& c, int64_t image_tokens, int64_t text_len);

struct Sd3Inputs {
  at::Tensor latents;                // [B, in_channels, H, W] (noised)
  at::Tensor timestep;               // [B] fp32, the scheduler's σ·1000
  at::Tensor encoder_hidden_states;  // [B, T, joint_attention_dim] (CLIP-L|G padded, then T5)
  at::Tensor pooled_projections;     // [B, pooled_projection_dim]
};

class Sd3Transformer {
 public:
  Sd3Transformer(const WeightStore& ws, Sd3Config config);
  static std::unique_ptr<Sd3Transformer> load(const std::string& root, at::ScalarType dtype, at::Device device,
                                              const std::string& variant = "");

  // One forward. With `need_output` false it stops after the last block the recorder wants anything from and
  // returns an undefined tensor; otherwise the prediction [B, out_channels, H, W].
  at::Tensor operator()(const Sd3Inputs& in, CaptureRecorder* recorder, bool need_output = true) const;

  const Sd3Config& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  // Scores per head group of a captured block (the memory plan's too).
  static constexpr int64_t kDefaultChunkElements = int64_t(1) << 28;
  void set_attention_chunk_elements(int64_t n) { chunk_elements_ = n; }

 private:
  struct Attn {
    Linear to_q, to_k, to_v, to_out;
    Linear add_q, add_k, add_v, to_add_out;
    RMSNorm norm_q, norm_k, norm_added_q, norm_added_k;
  };
  struct Block {
    Linear norm1;          // AdaLayerNormZero (6C) or SD35AdaLayerNormZeroX (9C)
    Linear norm1_context;  // AdaLayerNormZero (6C), or AdaLayerNormContinuous (2C) in the last block
    Attn attn;
    Attn attn2;  // dual attention layers only (image-only, no added projections)
    FeedForward ff, ff_context;
    bool dual = false, context_pre_only = false;
  };
  at::Tensor qk(const RMSNorm& n, const at::Tensor& x) const;

  Sd3Config config_;
  at::ScalarType dtype_;
  int64_t chunk_elements_ = kDefaultChunkElements;
  Conv2d patch_proj_;
  at::Tensor pos_table_;  // [1, max², C] as stored
  TimestepEmbedding t_embedder_;
  Linear text_1_, text_2_, context_embedder_;
  std::vector<Block> blocks_;
  Linear norm_out_, proj_out_;
};

}  // namespace gb::bb
