// The memory model of the PixArt backbones (pixart_backbone.cpp): transformer, fp32 VAE, T5 (`wo` fp32;
// parked or freed under text_encoder offload/free), the prompts padded to the pipeline's length with a mask.
#include "harness/backbones/memory_parts.h"
#include "harness/backbones/pixart_backbone.h"

namespace gb::bb {

namespace {

class PixArtMemoryModel : public MemoryModel {
 public:
  PixArtMemoryModel(PixArtVariant variant, const std::optional<std::string>& folder)
      : folder_(folder), text_len_(pixart_text_length(variant)) {
    const bool f = folder.has_value();
    pixart_ = f ? PixArtConfig::from_json(component_file(*folder, "transformer")) : pixart_default_config(variant);
    vae_ = f ? VaeConfig::from_json(component_file(*folder, "vae")) : VaeConfig::sdxl();
    t5_ = f ? T5Config::from_json(component_file(*folder, "text_encoder")) : T5Config::v1_1_xxl();
  }

  std::vector<ComponentWeights> weights(at::ScalarType dtype, bool t5_int8) const override {
    const mem::Make transformer = [&](const WeightStore& ws) { PixArtTransformer m(ws, pixart_); };
    const mem::Make vae = [&](const WeightStore& ws) { VaeEncoder m(vae_, ws); };
    if (folder_) {
      mem::check_headers(*folder_, "transformer", dtype, transformer);
      mem::check_headers(*folder_, "vae", dtype, vae);
      mem::check_headers(*folder_, "text_encoder", dtype, [&](const WeightStore& ws) { T5Encoder m(ws, t5_); });
    }
    return {mem::component("transformer", dtype, transformer, false),
            mem::component("vae", vae_dtype(dtype), vae, false),
            mem::t5_component("text_encoder", t5_, dtype, t5_int8)};
  }

  at::ScalarType vae_dtype(at::ScalarType) const override { return at::kFloat; }  // G-pix prepare_latents: fp32

  int64_t size_multiple() const override { return vae_.scale_factor() * pixart_.patch_size; }

  int64_t text_length() const override { return text_len_; }
  void set_text_length(int64_t n) override { text_len_ = n; }

  MemoryPhase text_phase(int64_t B, at::ScalarType dt, bool t5_int8) const override {
    return mem::t5_text_phase(t5_, B, text_len_, dt, t5_int8, /*masked=*/true);
  }

  MemoryPhase vae_phase(int64_t B, int64_t S, at::ScalarType vdt, at::ScalarType dt) const override {
    return mem::vae_encode_phase(vae_, B, S, vdt, dt, text_len_, t5_.d_model, device());
  }

  // Self attention keeps x and the modulated h alive, cross attention x.
  std::vector<MemoryUnit> denoiser_units(const std::vector<LayerInfo>& layers, const CaptureSpec& spec, int64_t B,
                                         int64_t, at::ScalarType dt, at::ScalarType store) const override {
    std::vector<std::string> blocks;
    for (int64_t i = 0; i < pixart_.num_layers; ++i) blocks.push_back(vit_block(i));
    return mem::attention_units(blocks, layers, spec, B, dt, store, 2, 1, device(), true);
  }

  std::vector<MemoryTerm> denoiser_persistent(int64_t B, int64_t S, at::ScalarType dt) const override {
    const int64_t lat = S / vae_.scale_factor();
    const int64_t C = pixart_.inner_dim();
    return {{"latents, T5 states, caption projection",
             B * (pixart_.in_channels * lat * lat + text_len_ * (t5_.d_model + 2 * C)) * mem::esize(dt)}};
  }

 private:
  std::optional<std::string> folder_;
  PixArtConfig pixart_;
  VaeConfig vae_;
  T5Config t5_;
  int64_t text_len_;
};

}  // namespace

std::unique_ptr<MemoryModel> pixart_memory_model(PixArtVariant variant, const std::optional<std::string>& folder) {
  return std::make_unique<PixArtMemoryModel>(variant, folder);
}

}  // namespace gb::bb
