// The memory model of the SD1.5, SD 2.1 and SDXL backbones (sd_backbone.cpp): UNet, VAE (SDXL: fp32 when force_upcast),
// CLIP-L (+ OpenCLIP-bigG), all resident.
#include "harness/backbones/memory_parts.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/core/errors.h"

namespace gb::bb {

namespace {

class SdMemoryModel : public MemoryModel {
 public:
  SdMemoryModel(SdVariant variant, const std::optional<std::string>& folder)
      : variant_(variant), sdxl_(variant == SdVariant::sdxl), folder_(folder) {
    const bool f = folder.has_value(), sdxl = sdxl_;
    unet_ = f ? UNetConfig::from_json(component_file(*folder, "unet")) : sd_default_unet(variant);
    vae_ = f ? VaeConfig::from_json(component_file(*folder, "vae")) : (sdxl ? VaeConfig::sdxl() : VaeConfig::sd15());
    clip_ = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder")) : sd_default_text_encoder(variant);
    if (sdxl)
      clip2_ = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder_2")) : ClipTextConfig::bigg();
    text_len_ = clip_.max_position_embeddings;
  }

  std::vector<ComponentWeights> weights(at::ScalarType dtype, bool) const override {
    const mem::Make unet = [&](const WeightStore& ws) { UNet2DConditionModel m(unet_, ws); };
    const mem::Make vae = [&](const WeightStore& ws) { VaeEncoder m(vae_, ws); };
    const mem::Make clip = [&](const WeightStore& ws) { ClipTextModel m(clip_, ws); };
    const mem::Make clip2 = [&](const WeightStore& ws) { ClipTextModel m(clip2_, ws); };
    if (folder_) {
      mem::check_headers(*folder_, "unet", dtype, unet);
      mem::check_headers(*folder_, "vae", dtype, vae);
      mem::check_headers(*folder_, "text_encoder", dtype, clip);
      if (sdxl_) mem::check_headers(*folder_, "text_encoder_2", dtype, clip2);
    }
    // CLIP stays resident (the backbone takes text_encoder: keep only).
    std::vector<ComponentWeights> out{mem::component("unet", dtype, unet, false),
                                      mem::component("vae", vae_dtype(dtype), vae, false),
                                      mem::component("text_encoder", dtype, clip, false)};
    if (sdxl_) out.push_back(mem::component("text_encoder_2", dtype, clip2, false));
    return out;
  }

  at::ScalarType vae_dtype(at::ScalarType dtype) const override {
    return sdxl_ && vae_.force_upcast ? at::kFloat : dtype;  // the SDXL img2img pipeline's upcast
  }

  int64_t size_multiple() const override { return vae_.scale_factor() << (unet_.block_out_channels.size() - 1); }

  int64_t text_length() const override { return text_len_; }
  void set_text_length(int64_t) override {
    fail("{}: the text length is CLIP's max_position_embeddings ({})", to_string(variant_), text_len_);
  }

  MemoryPhase text_phase(int64_t B, at::ScalarType dt, bool) const override {
    return sdxl_ ? mem::clip_text_phase(clip2_, B, dt, "text_encoder_2 (bigG)", device())
                 : mem::clip_text_phase(clip_, B, dt, "text_encoder (CLIP)", device());
  }

  MemoryPhase vae_phase(int64_t B, int64_t S, at::ScalarType vdt, at::ScalarType dt) const override {
    return mem::vae_encode_phase(vae_, B, S, vdt, dt, text_len_, 0, device());  // the CLIP states come after the VAE
  }

  // Transformer2D blocks keep their input x, the tokens and the normed tokens alive.
  std::vector<MemoryUnit> denoiser_units(const std::vector<LayerInfo>& layers, const CaptureSpec& spec, int64_t B,
                                         int64_t, at::ScalarType dt, at::ScalarType store) const override {
    return mem::attention_units(unet_block_ids(unet_), layers, spec, B, dt, store, 3, 3, device(), false,
                                unet_.upcast_attention);
  }

  std::vector<MemoryTerm> denoiser_persistent(int64_t B, int64_t S, at::ScalarType dt) const override {
    const int64_t s = mem::esize(dt);
    const int64_t lat = S / vae_.scale_factor();
    const auto& u = unet_;
    int64_t skips = u.block_out_channels[0] * lat * lat, r = lat;
    for (size_t i = 0; i < u.block_out_channels.size(); ++i) {
      skips += u.layers_per_block * u.block_out_channels[i] * r * r;
      if (i + 1 < u.block_out_channels.size()) r /= 2, skips += u.block_out_channels[i] * r * r;
    }
    return {{"UNet skip connections", B * skips * s},
            {"latents + text conditioning", B * (u.in_channels * lat * lat + text_len_ * u.cross_attention_dim) * s}};
  }

 private:
  SdVariant variant_;
  bool sdxl_;
  std::optional<std::string> folder_;
  UNetConfig unet_;
  VaeConfig vae_;
  ClipTextConfig clip_, clip2_;
  int64_t text_len_ = 77;
};

}  // namespace

std::unique_ptr<MemoryModel> sd_memory_model(SdVariant variant, const std::optional<std::string>& folder) {
  return std::make_unique<SdMemoryModel>(variant, folder);
}

}  // namespace gb::bb
