#pragma once
// AutoencoderKL (diffusers v0.32.2 models/autoencoders/autoencoder_kl.py, vae.py; spec §1.6).
// Encoder: conv_in -> DownEncoderBlock2D x N -> UNetMidBlock2D (resnet, 1-head attention, resnet) -> GN -> SiLU ->
// conv_out -> [quant_conv] -> DiagonalGaussian (VaeEncoder; decoder keys ignored).
// Decoder: [post_quant_conv] -> conv_in -> UNetMidBlock2D -> UpDecoderBlock2D x N (layers_per_block + 1 resnets,
// nearest x2 + conv except the last) -> GN -> SiLU -> conv_out (VaeDecoder; encoder keys ignored).
// Serves SD1.5 / SDXL / PixArt (4 channels, quant_conv) and Flux (16 channels, shift_factor, no quant_convs).
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
  bool use_post_quant_conv = true;
  int64_t out_channels = 3;
  bool mid_block_add_attention = true;
  bool force_upcast = true;  // the SDXL pipeline runs the VAE in fp32 when set

  static VaeConfig sd15();  // H15 vae/config.json
  static VaeConfig sdxl();  // HXL-vae (scaling 0.13025)
  static VaeConfig flux();  // FLUX.1-dev vae/config.json (16 latent channels, no quant_conv, shift 0.1159)
  // stable-diffusion-3.5-{medium,large} vae/config.json (Flux's graph; scaling 1.5305, shift 0.0609)
  static VaeConfig sd3();
  static VaeConfig from_json(const std::string& path);

  // Pixels per latent along a side, 2^(levels - 1) (diffusers' pipelines' vae_scale_factor).
  int64_t scale_factor() const { return int64_t(1) << (block_out_channels.size() - 1); }
};

// UNetMidBlock2D of the VAE: resnet, optional 1-head self-attention with residual, resnet (eps 1e-6).
struct VaeMidBlock {
  ResnetBlock2D res0, res1;
  GroupNorm attn_norm;
  Attention attn;
  bool with_attention = true;
  VaeMidBlock() = default;
  VaeMidBlock(const WeightStore& mid, int64_t channels, int64_t groups, bool with_attention);
  at::Tensor operator()(const at::Tensor& x) const;
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
  VaeMidBlock mid_;
  GroupNorm norm_out_;
};

class VaeDecoder {
 public:
  // `ws` is the vae component root (keys decoder.*, post_quant_conv.*); encoder.* and quant_conv.* are ignored.
  VaeDecoder(const VaeConfig& config, const WeightStore& ws);
  const VaeConfig& config() const { return config_; }
  // AutoencoderKL.decode: z [B, z, h, w] (already unscaled by the pipeline) -> images [B, 3, 8h, 8w] (about [-1, 1]).
  at::Tensor decode(const at::Tensor& z) const;
  // The pipelines' unscaling before decode: z / scaling_factor (+ shift_factor for Flux).
  at::Tensor unscale(const at::Tensor& latents) const;

 private:
  struct UpBlock {
    std::vector<ResnetBlock2D> resnets;
    std::optional<Upsample2D> upsample;
  };
  VaeConfig config_;
  Conv2d post_quant_conv_, conv_in_, conv_out_;
  VaeMidBlock mid_;
  std::vector<UpBlock> up_;
  GroupNorm norm_out_;
};

// VaeImageProcessor.postprocess(output_type="pil"/"np") with do_denormalize: (x / 2 + 0.5).clamp(0, 1) in the
// decoder's dtype, then float32, * 255, round half to even, uint8. [B, 3, H, W] -> [B, H, W, 3] uint8 on the CPU.
at::Tensor vae_postprocess_uint8(const at::Tensor& images);

}  // namespace gb::bb
