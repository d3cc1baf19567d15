#pragma once
// UNet2DConditionModel (diffusers v0.32.2 models/unets/unet_2d_condition.py, unet_2d_blocks.py,
// transformer_2d.py, attention.py; spec §2, §3) for the SD1.5 and SDXL configurations: CrossAttnDown/Up
// blocks with Transformer2DModel (conv or linear proj_in/out, transformer_layers_per_block), SDXL "text_time"
// added embeddings. Every BasicTransformerBlock's attn1/attn2 carries its paper capture id
// (`down-level{L}-repeat{R}-vit-block{B}-{self|cross}`, `mid-vit-block{B}-…`, `up-level{L}-repeat{R}-…`).
// SD 2.1 is the SD1.5 layout with linear projections, 1024-wide context, 64-wide heads and (768-v) upcast attention.
#include "harness/backbones/nn.h"
#include "harness/core/backbone.h"

#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

struct UNetConfig {  // unet/config.json
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  int64_t sample_size = 64;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                            "DownBlock2D"};
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";
  std::vector<std::string> up_block_types{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                          "CrossAttnUpBlock2D"};
  std::vector<int64_t> block_out_channels{320, 640, 1280, 1280};
  int64_t layers_per_block = 2;
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  int64_t cross_attention_dim = 768;
  std::vector<int64_t> transformer_layers_per_block{1, 1, 1, 1};
  std::vector<int64_t> reverse_transformer_layers_per_block;  // empty = reversed(transformer_layers_per_block)
  std::vector<int64_t> num_attention_heads{8, 8, 8, 8};       // diffusers: num_attention_heads or attention_head_dim
  bool use_linear_projection = false;
  bool upcast_attention = false;
  std::string addition_embed_type;  // "" or "text_time"
  int64_t addition_time_embed_dim = 0;
  int64_t projection_class_embeddings_input_dim = 0;

  static UNetConfig sd15();       // H15 unet/config.json
  static UNetConfig sdxl();       // HXL-unet
  static UNetConfig sd21();       // stabilityai/stable-diffusion-2-1 unet/config.json (768-v, upcast_attention)
  static UNetConfig sd21_base();  // stabilityai/stable-diffusion-2-1-base unet/config.json
  static UNetConfig from_json(const std::string& path);
  bool is_sdxl() const { return addition_embed_type == "text_time"; }
};

// Every capturable key with its shape (no batch dimension) for a latent of `latent_size`² and `text_len`
// context tokens, in forward order.
std::vector<LayerInfo> unet_capture_layers(const UNetConfig& config, int64_t latent_size, int64_t text_len);
// The paper block ids ("down-level1-repeat0-vit-block0-cross", ...) in forward order.
std::vector<std::string> unet_block_ids(const UNetConfig& config);

struct UNetInputs {
  at::Tensor latents;                // [B, 4, h, w] as fed to the UNet (noised, scaled)
  at::Tensor timestep;               // [B] (int64 for SD1.5, fp32 for SDXL)
  at::Tensor encoder_hidden_states;  // [B, T, cross_attention_dim]
  at::Tensor text_embeds;            // SDXL [B, 1280]
  at::Tensor time_ids;               // SDXL [B, 6]
};

class UNet2DConditionModel {
 public:
  UNet2DConditionModel(const UNetConfig& config, const WeightStore& ws);
  const UNetConfig& config() const { return config_; }
  // Runs the UNet. With `stop_when_captured`, returns an undefined tensor as soon as the recorder has every
  // requested key (the tail after the last captured attention is skipped); otherwise the noise prediction.
  at::Tensor forward(const UNetInputs& in, CaptureRecorder* recorder, bool stop_when_captured = false) const;

 private:
  struct TransformerBlock {
    LayerNorm norm1, norm2, norm3;
    Attention attn1, attn2;
    FeedForward ff;
  };
  struct Transformer2D {
    GroupNorm norm;
    Conv2d proj_in_conv, proj_out_conv;
    Linear proj_in_linear, proj_out_linear;
    bool linear = false;
    std::vector<TransformerBlock> blocks;
    at::Tensor operator()(const at::Tensor& x, const at::Tensor& ctx, CaptureRecorder* rec) const;
  };
  struct Block {
    std::vector<ResnetBlock2D> resnets;
    std::vector<Transformer2D> attentions;
    std::optional<Downsample2D> down;
    std::optional<Upsample2D> up;
  };
  Transformer2D make_transformer(const WeightStore& ws, int64_t channels, int64_t heads, int64_t layers,
                                 const std::string& id_prefix) const;

  UNetConfig config_;
  int64_t time_embed_dim_ = 0;
  TimestepEmbedding time_embedding_, add_embedding_;
  Conv2d conv_in_, conv_out_;
  GroupNorm norm_out_;
  std::vector<Block> down_, up_;
  Block mid_;
};

}  // namespace gb::bb
