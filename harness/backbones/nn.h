#pragma once
// Primitives as small structs holding at::Tensor weights, built from a WeightStore so that parameter names
// are the checkpoint keys (ATen only, no torch::nn). Shapes are checked at load; forward is `operator()`.
// Semantics follow diffusers v0.32.2 (spec backbones.md §1).
#include "harness/backbones/weights.h"

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace gb::bb {

class CaptureRecorder;

struct Linear {
  at::Tensor weight, bias;  // [out, in], [out] or undefined
  Linear() = default;
  Linear(const WeightStore& ws, int64_t in, int64_t out, bool with_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct Conv2d {
  at::Tensor weight, bias;
  int64_t stride = 1, padding = 0;
  Conv2d() = default;
  Conv2d(const WeightStore& ws, int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         bool with_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct GroupNorm {
  at::Tensor weight, bias;
  int64_t groups = 32;
  double eps = 1e-5;
  GroupNorm() = default;
  GroupNorm(const WeightStore& ws, int64_t groups, int64_t channels, double eps);
  at::Tensor operator()(const at::Tensor& x) const;  // [B, C, ...]
};

struct LayerNorm {
  at::Tensor weight, bias;  // undefined when not affine
  int64_t dim = 0;
  double eps = 1e-5;
  LayerNorm() = default;
  LayerNorm(const WeightStore& ws, int64_t dim, double eps, bool affine = true, bool with_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

// x · rsqrt(mean(x²) + eps) with the mean in fp32, times weight (the result cast to the weight dtype first
// when it is 16-bit, D-norm RMSNorm).
struct RMSNorm {
  at::Tensor weight;
  double eps = 1e-6;
  RMSNorm() = default;
  RMSNorm(const WeightStore& ws, int64_t dim, double eps);
  at::Tensor operator()(const at::Tensor& x) const;
};

enum class Activation { SiLU, GELU, GELUTanh, QuickGELU };
at::Tensor activate(const at::Tensor& x, Activation a);

// diffusers FeedForward: net.0 (GEGLU proj, or GELU/GELU-tanh proj) -> net.2 Linear.
struct FeedForward {
  enum class Kind { GEGLU, GELU, GELUTanh };
  Kind kind = Kind::GEGLU;
  Linear proj_in;   // net.0.proj: [2*inner, dim] for GEGLU, [inner, dim] otherwise
  Linear proj_out;  // net.2: [dim_out, inner]
  FeedForward() = default;
  FeedForward(const WeightStore& ws, int64_t dim, int64_t inner, int64_t dim_out, Kind kind, bool bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

// Sinusoidal embedding (D-emb get_timestep_embedding), fp32 [N, dim]: layout [sin | cos], swapped to
// [cos | sin] when flip_sin_to_cos.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double shift,
                              double scale = 1.0, double max_period = 10000.0);

// linear_1 -> SiLU -> linear_2.
struct TimestepEmbedding {
  Linear linear_1, linear_2;
  TimestepEmbedding() = default;
  TimestepEmbedding(const WeightStore& ws, int64_t in, int64_t dim);
  at::Tensor operator()(const at::Tensor& x) const;
};

// ResnetBlock2D, time_embedding_norm "default", output_scale_factor 1. temb_channels 0 = no time embedding
// (VAE).
struct ResnetBlock2D {
  GroupNorm norm1, norm2;
  Conv2d conv1, conv2, conv_shortcut;
  Linear time_emb_proj;
  bool has_temb = false, has_shortcut = false;
  ResnetBlock2D() = default;
  ResnetBlock2D(const WeightStore& ws, int64_t in, int64_t out, int64_t temb_channels, int64_t groups, double eps);
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& temb) const;
};

// UNet: conv 3x3 stride 2 padding 1. VAE (padding 0): zero-pad (0,1,0,1) then conv stride 2.
struct Downsample2D {
  Conv2d conv;
  bool pad_right_bottom = false;
  Downsample2D() = default;
  Downsample2D(const WeightStore& ws, int64_t channels, int64_t padding);
  at::Tensor operator()(const at::Tensor& x) const;
};

// Nearest x2 then conv 3x3 padding 1.
struct Upsample2D {
  Conv2d conv;
  Upsample2D() = default;
  Upsample2D(const WeightStore& ws, int64_t channels);
  at::Tensor operator()(const at::Tensor& x) const;
};

// softmax(q kᵀ · scale + mask) in the dtype of q (no upcast, as the paper's AttnStoreProcessor):
// q [B, H, Nq, d], k [B, H, Nk, d] -> P [B, H, Nq, Nk]. The scores use baddbmm(α = scale) like diffusers.
at::Tensor attention_probs(const at::Tensor& q, const at::Tensor& k, double scale, const at::Tensor& mask = {});

// diffusers Attention with the paper's capture path. Heads split channels contiguously (c = h·hd + d).
// With a recorder that wants the block's map, the explicit softmax runs and P is stored; otherwise
// gb::compat::scaled_dot_product_attention (fused on LibTorch 2.x). q, special-value, special-post-value and
// special-weight are recorded from either path.
struct Attention {
  Linear to_q, to_k, to_v, to_out;  // to_out.0
  int64_t heads = 1, head_dim = 0;
  std::string capture_id;  // paper block id ("...-vit-block0-cross"); empty = never captured
  // diffusers Attention(upcast_attention=True) (SD 2.1 768-v): on the explicit (map-capturing) route q·kᵀ and the
  // softmax in fp32, the probabilities cast back to the compute dtype before they meet the values
  // (Attention.get_attention_scores); the fused route ignores it, as AttnProcessor2_0 does.
  bool upcast = false;
  Attention() = default;
  Attention(const WeightStore& ws, int64_t query_dim, int64_t context_dim, int64_t heads, int64_t head_dim,
            bool qkv_bias, bool out_bias, std::string capture_id = "");
  // x [B, N, Cq]; context [B, T, Cctx] or undefined for self-attention; mask additive, broadcastable to
  // [B, H, N, T].
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& context, CaptureRecorder* recorder,
                        const at::Tensor& mask = {}) const;
};

// [B, N, H*d] <-> [B, H, N, d]
at::Tensor split_heads(const at::Tensor& x, int64_t heads);
at::Tensor merge_heads(const at::Tensor& x);

// LayerNorm over the last dimension without affine parameters (diffusers' nn.LayerNorm(elementwise_affine=False)
// in the AdaLN blocks of the MMDiT transformers).
at::Tensor plain_layer_norm(const at::Tensor& x, double eps = 1e-6);

}  // namespace gb::bb
