#pragma once
// The Stable Diffusion 3.5 backbones (gb::Backbone), Medium and Large, run as diffusers'
// StableDiffusion3Img2ImgPipeline would for one step at strength t/1000 (the way GDF runs Flux):
//   text   CLIP-L and CLIP-G (CLIPTextModelWithProjection): hidden_states[-2] of each, concatenated (768 + 1280),
//          zero-padded to T5's 4096 and followed by T5-XXL's 256 states (no mask): [B, 77 + 256, 4096];
//          pooled = cat(CLIP-L text_embeds, CLIP-G text_embeds) [B, 2048]. CLIP-G's ids are CLIP-L's with every
//          position after the first EOS set to 0 (tokenizer_2 pads with "!").
//   image  Pillow resize, VAE (16 channels, the pipeline dtype) posterior sample, (z - shift_factor)·scaling_factor.
//   noise  FlowMatchEulerDiscreteScheduler (shift from scheduler_config.json, 3.0 for SD3.5): set_timesteps(50),
//          t_start = int(50 - 50·t/1000), σ = sigmas[t_start]: σ ε + (1 - σ) z; the transformer gets σ·1000 (fp32).
//          Default t = 150, the paper's choice for its flow-matching backbone (Flux) through the pipeline's default
//          step count (docs/backbones.md). Default dtype on CUDA: bf16 (the SD3.5 model cards' torch_dtype).
//   model  one SD3Transformer2DModel forward with Flux-style captures (sd3_transformer.h).
// The cross maps' key axis is the joint text sequence: 77 CLIP positions, then 256 T5 positions (`tokenizer()`
// gives both, in that order).
#include "harness/backbones/clip_text.h"
#include "harness/backbones/dit_noising.h"
#include "harness/backbones/registry.h"
#include "harness/backbones/sd3_transformer.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/backbones/text_cache.h"
#include "harness/backbones/vae.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gb::bb {

enum class Sd3Variant { medium, large };
const char* to_string(Sd3Variant v);  // "sd35-medium", "sd35-large"

inline constexpr int64_t kSd3ClipLength = 77;  // the published CLIP encoders' max_position_embeddings
inline constexpr int64_t kSd3T5Length = 256;   // StableDiffusion3Img2ImgPipeline max_sequence_length
inline constexpr int64_t kSd3Steps = 50;       // its default num_inference_steps
inline constexpr int64_t kSd3DefaultT = 150;

struct Sd3Noising {
  int64_t t_start = 0;
  std::vector<float> sigmas;  // the scheduler's sigmas after set_timesteps (float32), without the appended 0
  float sigma = 0;            // sigmas[t_start]
  float timestep = 0;         // sigma · 1000 (float32), fed to the transformer as is
  at::Tensor apply(const at::Tensor& z, const at::Tensor& noise) const;  // σ ε + (1 − σ) z, σ in z's dtype
};
// FlowMatchEulerDiscreteScheduler(shift, use_dynamic_shifting false).set_timesteps(steps) as diffusers 0.32.2
// computes it (linspace between the shifted training sigmas' ends, shifted again), then the img2img get_timesteps.
Sd3Noising plan_sd3_noising(const FlowMatchSchedulerConfig& c, int64_t paper_t, int64_t steps = kSd3Steps);

class Sd3Backbone : public Backbone {
 public:
  Sd3Backbone(const CheckpointFolder& folder, const BackboneOptions& options, Sd3Variant variant);

  std::string kind() const override { return to_string(variant_); }
  std::vector<LayerInfo> list_layers() const override;
  // CLIP (77) then T5 (256) tokens: the key axis of the cross maps.
  const TextTokenizer& tokenizer() const override;
  // Override the CLIP tokenizer (tests); BackboneOptions::tokenizer overrides the T5 one.
  void set_clip_tokenizer(std::shared_ptr<const TextTokenizer> t);
  Capture capture(const BackboneBatch& batch, const CaptureSpec& spec) override;
  // The same pass from token ids: CLIP-L ids [B, 77] (tokenizer_2's are derived from them) and T5 ids [B, 256].
  Capture capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& clip_ids, const at::Tensor& t5_ids,
                      const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec);
  // text_encoder: free — encodes the prompts not cached yet (`batch_size` at a time), keeps their joint states and
  // pooled vectors in host memory and frees CLIP-L, CLIP-G and T5. A no-op in the other modes.
  void prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) override;
  bool text_encoders_loaded() const { return t5_ != nullptr; }
  const PromptConditioningCache& text_cache() const { return text_cache_; }

  struct Text {
    at::Tensor states, pooled;  // [B, 77 + T, joint_attention_dim], [B, 2048], model dtype, on the device
  };
  // From ids (text_encoder: keep or offload, or free before the encoders are released); under offload T5 visits
  // the device for this call only.
  Text encode(const at::Tensor& clip_ids, const at::Tensor& t5_ids) const;
  // Tokenized and encoded: {"states", "pooled"} (the rows the text cache keeps).
  PromptConditioningCache::Rows encode_rows(const std::vector<std::string>& prompts) const;
  PromptConditioningCache::Encoders encoders();  // for text_cache_
  // CLIP-L ids [B, 77] (the joint tokenizer's CLIP part) and T5 ids [B, 256] of prompts, as the pipeline tokenizes
  // them.
  std::pair<at::Tensor, at::Tensor> token_ids(const std::vector<std::string>& prompts) const;
  // One transformer call on prepared inputs (the sampling loop, harness/generation), recording `spec` into `cap`;
  // returns the prediction [B, out_channels, H, W].
  at::Tensor denoise(const Sd3Inputs& in, const CaptureSpec& spec, Capture& cap) const;
  at::Device device() const { return device_; }

  const Sd3Transformer& transformer() const { return *transformer_; }
  const VaeEncoder& vae() const { return *vae_; }
  const Sd3Noising& noising() const { return plan_; }
  int64_t image_size() const { return image_size_; }
  int64_t text_length() const;  // 77 + the T5 length
  at::ScalarType dtype() const { return dtype_; }

 private:
  void rebuild_tokenizer();
  void release_text_encoders();
  Capture capture_text(const std::vector<at::Tensor>& images, const Text& text,
                       const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec,
                       double text_seconds);
  Sd3Variant variant_;
  BackboneOptions options_;
  at::Device device_;
  at::ScalarType dtype_;
  int64_t image_size_;
  std::unique_ptr<Sd3Transformer> transformer_;
  std::unique_ptr<VaeEncoder> vae_;
  std::unique_ptr<ClipTextModel> clip_l_, clip_g_;
  std::unique_ptr<T5Encoder> t5_;
  Sd3Noising plan_;
  int64_t clip_positions_ = kSd3ClipLength;  // CLIP-L's max_position_embeddings
  int64_t clip_eos_ = 0;                     // CLIP-L's EOS id (its last vocabulary id)
  std::shared_ptr<const TextTokenizer> clip_tokenizer_, t5_tokenizer_, tokenizer_;
  std::set<std::string> layer_names_;
  PromptConditioningCache text_cache_;
};

// Registry entries (registry.cpp) and their memory model (sd3_memory.cpp).
BackboneKind sd35_medium_backbone_kind();
BackboneKind sd35_large_backbone_kind();
Sd3Config sd3_default_config(Sd3Variant v);  // the published transformer config
std::unique_ptr<MemoryModel> sd3_memory_model(Sd3Variant variant, const std::optional<std::string>& folder);

}  // namespace gb::bb
