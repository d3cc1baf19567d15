#pragma once
// The Stable Diffusion v1.5, 2.1 (768-v and base) and SDXL backbones (gb::Backbone): CLIP text encoding, VAE
// posterior sample, the paper's one noising step and one UNet forward with attention capture (spec §2, §3, §6, §7).
// SD 2.1 runs as GDF's version '2-1' does (StableDiffusionImg2ImgPipeline with an EulerDiscreteScheduler built from
// the folder's scheduler config): OpenCLIP-H last_hidden_state (the 23-layer checkpoint's final-LN output),
// Euler noising at the same strength as SD1.5.
//
// Randomness: two draws per image, in the paper's order (VAE posterior ε, then diffusion ε), each from a CPU
// generator seeded by noise_seed(batch seed, image id), in fp32 and then cast — so a capture does not depend
// on batch composition, order, device or sharding.
#include "harness/backbones/clip_text.h"
#include "harness/backbones/registry.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/schedulers.h"
#include "harness/backbones/unet.h"
#include "harness/backbones/vae.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

// Denoiser conditioning from token ids.
struct SdTextConditioning {
  at::Tensor encoder_hidden_states;  // [B, 77, 768] (SD1.5) or [B, 77, 2048] (SDXL)
  at::Tensor text_embeds;            // SDXL pooled, projected bigG [B, 1280]
};

enum class SdVariant { sd15, sd21, sd21_base, sdxl };
const char* to_string(SdVariant v);  // the kind: "sd15", "sd21", "sd21-base", "sdxl"

class StableDiffusionBackbone : public Backbone {
 public:
  StableDiffusionBackbone(const CheckpointFolder& folder, const BackboneOptions& options, SdVariant variant);

  std::string kind() const override { return to_string(variant_); }
  SdVariant variant() const { return variant_; }
  std::vector<LayerInfo> list_layers() const override;
  const TextTokenizer& tokenizer() const override;
  Capture capture(const BackboneBatch& batch, const CaptureSpec& spec) override;

  // The same pass from token ids (tokenizer-1 ids [B, 77]; SDXL's tokenizer_2 ids are derived by padding
  // with 0 after the first EOS, as its "!" pad token does).
  Capture capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& ids,
                      const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec);

  // The pass from preprocessed pixels [B, 3, S, S] (float, [-1, 1]) with explicit noise draws
  // (noise_vae [B, z, h, w], noise [B, 4, h, w]); capture_ids() draws them per image id and calls this.
  Capture capture_with_noise(const at::Tensor& pixels, const at::Tensor& ids, const at::Tensor& noise_vae,
                             const at::Tensor& noise, const CaptureSpec& spec);

  SdTextConditioning encode_text(const at::Tensor& ids) const;
  // One UNet call on prepared inputs (the sampling loop, harness/generation), recording `spec` into `cap`;
  // returns the noise prediction.
  at::Tensor denoise(const UNetInputs& in, const CaptureSpec& spec, Capture& cap) const;
  const ClipTextModel& text_encoder() const { return *text1_; }
  const ClipTextModel* text_encoder_2() const { return text2_.get(); }
  const UNet2DConditionModel& unet() const { return *unet_; }
  const VaeEncoder& vae() const { return *vae_; }
  const NoisingPlan& noising() const { return plan_; }
  int64_t image_size() const { return image_size_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  at::ScalarType vae_dtype() const { return vae_dtype_; }

 private:
  SdVariant variant_;
  bool sdxl_;
  BackboneOptions options_;
  at::Device device_;
  at::ScalarType dtype_, vae_dtype_;
  int64_t image_size_;
  std::unique_ptr<UNet2DConditionModel> unet_;
  std::unique_ptr<VaeEncoder> vae_;
  std::unique_ptr<ClipTextModel> text1_, text2_;
  SchedulerConfig scheduler_;
  NoisingPlan plan_;
  std::string noising_error_;  // why the folder's scheduler cannot do the capture noising ("" = it can)
  std::shared_ptr<const TextTokenizer> tokenizer_;
  std::set<std::string> layer_names_;
};

// The folder's tokenizer/ (vocab.json + merges.txt, pad token from special_tokens_map.json), or null when the
// folder has none.
std::shared_ptr<const TextTokenizer> load_folder_tokenizer(const CheckpointFolder& folder, int64_t max_length);

// Registry entries (registry.cpp) and their memory model (sd_memory.cpp).
BackboneKind sd15_backbone_kind();
BackboneKind sd21_backbone_kind();
BackboneKind sd21_base_backbone_kind();
BackboneKind sdxl_backbone_kind();
std::unique_ptr<MemoryModel> sd_memory_model(SdVariant variant, const std::optional<std::string>& folder);
// The published configs of a variant (its memory model and list-layers without a folder).
UNetConfig sd_default_unet(SdVariant v);
ClipTextConfig sd_default_text_encoder(SdVariant v);
// The folder's scheduler as the variant's pipeline builds it (SD 2.1: EulerDiscreteScheduler from its config).
SchedulerConfig sd_scheduler_config(const CheckpointFolder& folder, SdVariant v);

}  // namespace gb::bb
