#pragma once
// FluxTransformer2DModel (diffusers v0.32.2 models/transformers/transformer_flux.py with FluxAttnProcessor2_0),
// the FLUX.1-dev denoiser (spec backbones.md §5). Parameter names are the checkpoint keys of
// `transformer/diffusion_pytorch_model-*.safetensors`: x_embedder, context_embedder,
// time_text_embed.{timestep,guidance,text}_embedder, transformer_blocks.{i}.{norm1,norm1_context,attn,ff,ff_context},
// single_transformer_blocks.{j}.{norm,attn,proj_mlp,proj_out}, norm_out.linear, proj_out.
//
// Capture (the paper's FluxAttnStoreProcessor, P-attn / P-fe flux branch): block id `vit-block{k}`, k = 0..18 for
// the double blocks and 19 + j for single block j. One joint softmax P over [text | image] keys per layer:
//   vit-block{k}-cross-map               [B, H, N, T]  P[:, :, T:, :T]  (image queries x text keys, not renormalised)
//   vit-block{k}-self-map                [B, H, N, N]  P[:, :, T:, T:]  ([B, 1, N, N] head mean when the spec asks)
//   vit-block{k}-attn-out                [B, C, r, r]  double: to_out.0 output; single: (P·v) image rows
//   vit-block{k}-cross-special-value     [B, H, N, d]  image-stream v after the head split (double only)
//   vit-block{k}-cross-special-post-value [B, N, H*d]  (P·v) image rows before to_out.0 (double only)
//   vit-block{k}-cross-special-weight    [B, C, H*d]   to_out.0.weight (double only)
// The softmax is computed a group of heads at a time so the transient P stays bounded; only the captured slices
// are kept. Layers with nothing to capture run the fused attention (gb::compat::scaled_dot_product_attention).
#include "harness/backbones/nn.h"
#include "harness/backbones/weights.h"
#include "harness/core/backbone.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gb::bb {

class CaptureRecorder;

struct FluxConfig {
  int64_t patch_size = 1;
  int64_t in_channels = 64;
  int64_t out_channels = 64;  // null in config.json -> in_channels
  int64_t num_layers = 19;
  int64_t num_single_layers = 38;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 24;
  int64_t joint_attention_dim = 4096;
  int64_t pooled_projection_dim = 768;
  bool guidance_embeds = true;
  std::vector<int64_t> axes_dims_rope{16, 56, 56};
  double rope_theta = 10000;  // FluxPosEmbed(theta=10000), not in config.json
  double mlp_ratio = 4.0;     // FluxSingleTransformerBlock default

  // black-forest-labs/FLUX.1-dev transformer/config.json (spec §0 HFX, snapshot 0ef5fff: 19 double + 38 single
  // blocks, 24 x 128, in_channels 64, joint_attention_dim 4096, pooled 768, guidance_embeds true, axes 16/56/56).
  static FluxConfig dev() { return {}; }
  static FluxConfig from_json(const std::string& path);
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t total_blocks() const { return num_layers + num_single_layers; }
};

// FluxPosEmbed: per axis ω_j = θ^(-2j/d) (float64), angle = pos·ω, cos/sin repeat-interleaved x2, axes
// concatenated -> (cos, sin) float32 [S, sum(axes)]. ids [S, n_axes] (float).
std::pair<at::Tensor, at::Tensor> flux_rope_tables(const at::Tensor& ids, const std::vector<int64_t>& axes,
                                                   double theta);
// apply_rotary_emb(use_real, unbind -1): pairs (2j, 2j+1) rotated, computed in fp32, cast back. x [B, H, S, d].
at::Tensor flux_apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// Pipeline helpers (FluxImg2ImgPipeline._pack_latents / _prepare_latent_image_ids).
at::Tensor flux_pack_latents(const at::Tensor& latents);  // [B, C, H, W] -> [B, (H/2)(W/2), 4C]
at::Tensor flux_latent_image_ids(int64_t h2, int64_t w2, at::TensorOptions opts);  // [h2*w2, 3] = (0, row, col)

// Every capturable key with its per-sample shape for `image_tokens` packed tokens and `text_len` T5 tokens.
std::vector<LayerInfo> flux_capture_layers(const FluxConfig& c, int64_t image_tokens, int64_t text_len);

struct FluxInputs {
  at::Tensor latents;                // [B, N, in_channels] packed
  at::Tensor timestep;               // [B] = t / 1000 (the pipeline divides; the model multiplies back)
  at::Tensor guidance;               // [B] guidance scale, or undefined when !guidance_embeds
  at::Tensor encoder_hidden_states;  // [B, T, joint_attention_dim]
  at::Tensor pooled_projections;     // [B, pooled_projection_dim]
  at::Tensor img_ids;                // [N, 3]
  at::Tensor txt_ids;                // [T, 3]
};

class FluxTransformer {
 public:
  FluxTransformer(const WeightStore& ws, FluxConfig config);
  static std::unique_ptr<FluxTransformer> load(const std::string& root, at::ScalarType dtype, at::Device device,
                                               const std::string& variant = "");

  // One forward; with `need_output` false it stops after the last block the recorder wants anything from and
  // returns an undefined tensor. Otherwise returns the prediction [B, N, patch² · out_channels].
  at::Tensor operator()(const FluxInputs& in, CaptureRecorder* recorder, bool need_output = true) const;

  const FluxConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  // Upper bound on the elements of one transient score/probability chunk (heads are grouped to stay below it;
  // at least one head per chunk). Default kDefaultChunkElements = 2^28 (0.5 GB in 16-bit; the memory plan's too).
  static constexpr int64_t kDefaultChunkElements = int64_t(1) << 28;
  void set_attention_chunk_elements(int64_t n) { chunk_elements_ = n; }

 private:
  struct Attn {
    Linear to_q, to_k, to_v, add_q, add_k, add_v, to_out, to_add_out;
    RMSNorm norm_q, norm_k, norm_added_q, norm_added_k;
  };
  struct Double {
    Linear norm1, norm1_context;  // AdaLayerNormZero linears (6C)
    Attn attn;
    FeedForward ff, ff_context;
  };
  struct Single {
    Linear norm;  // AdaLayerNormZeroSingle (3C)
    Attn attn;
    Linear proj_mlp, proj_out;
  };

  FluxConfig config_;
  at::ScalarType dtype_;
  int64_t chunk_elements_ = kDefaultChunkElements;
  Linear x_embedder_, context_embedder_;
  TimestepEmbedding t_embedder_, g_embedder_;
  Linear text_1_, text_2_;
  std::vector<Double> doubles_;
  std::vector<Single> singles_;
  Linear norm_out_, proj_out_;
};

}  // namespace gb::bb
