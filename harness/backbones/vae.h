#pragma once
// AutoencoderKL encoder (diffusers v0.32.2 models/autoencoders/autoencoder_kl.py, vae.py; spec §1.6):
// conv_in -> DownEncoderBlock2D x N -> UNetMidBlock2D (resnet, 1-head attention, resnet) -> GN -> SiLU ->
// conv_out -> [quant_conv] -> DiagonalGaussian. The decoder is not built (its keys are ignored).
// Serves SD1.5 / SDXL / PixArt (4 channels, quant_conv) and Flux (16 channels, shift_factor, no quant_conv).
#include "harness/backbones/nn.h"

#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

struct VaeConfig {  // vae/config.json
  int64_t in_channels = 3;
  int64_t latent_channels = 4;
  std::vector<int64_t> block_out_channels{128, 256, 512, 512};
  int64_t layers_per_block = 2;
  int64_t norm_num_groups = 32;
  std::string act_fn = "silu";
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;  // Flux 0.1159
  bool use_quant_conv = true;
  bool mid_block_add_attention = true;
  bool force_upcast = true;  // the SDXL pipeline runs the VAE in fp32 when set

  static VaeConfig sd15();  // H15 vae/config.json
  static VaeConfig sdxl();  // HXL-vae (scaling 0.13025)
  static VaeConfig flux();  // FLUX.1-dev vae/config.json (16 latent channels, no quant_conv, shift 0.1159)
  static VaeConfig from_json(const std::string& path);
};

class VaeEncoder {
 public:
  // `ws` is the vae component root (keys encoder.*, quant_conv.*); decoder.* and post_quant_conv.* are ignored.
  VaeEncoder(const VaeConfig& config, const WeightStore& ws);
  const VaeConfig& config() const { return config_; }
  // [B, 3, H, W] in [-1, 1] -> moments [B, 2z, H/8, W/8] (mean | logvar, after quant_conv when used).
  at::Tensor moments(const at::Tensor& images) const;
  // Posterior sample mean + std·noise (noise [B, z, h, w], cast to the moments dtype), diffusers
  // DiagonalGaussianDistribution.sample with logvar clamped to [-30, 20].
  at::Tensor sample(const at::Tensor& images, const at::Tensor& noise) const;
  // (sample.to(out_dtype) - shift_factor) · scaling_factor, as the pipelines' prepare_latents (SDXL casts the
  // fp32 sample to fp16 before scaling).
  at::Tensor latents(const at::Tensor& images, const at::Tensor& noise, at::ScalarType out_dtype) const;

 private:
  struct DownBlock {
    std::vector<ResnetBlock2D> resnets;
    std::optional<Downsample2D> downsample;
  };
  VaeConfig config_;
  Conv2d conv_in_, conv_out_, quant_conv_;
  std::vector<DownBlock> down_;
  ResnetBlock2D mid_res0_, mid_res1_;
  GroupNorm mid_attn_norm_;
  Attention mid_attn_;
  GroupNorm norm_out_;
};

}  // namespace gb::bb
