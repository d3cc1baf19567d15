#pragma once
// The FLUX.1-dev backbone (gb::Backbone): CLIP-L pooled (unprojected) + T5 v1.1 XXL without a mask, 16-channel
// VAE posterior sample with shift/scale, flow-matching img2img noising at strength t/1000 over 28 steps after the
// resolution shift (σ' = 0.40708 at 1024², the first remaining step), guidance 1, one transformer forward with the
// paper's joint-softmax captures (spec backbones.md §5, §6, §7; GDF's FluxImg2ImgPipeline G-flux).
//
// Randomness: as the other backbones, two draws per image (VAE ε, then diffusion ε) from a CPU generator seeded by
// noise_seed(batch seed, image id), fp32 then cast. T5 runs in LLM.int8 as the paper's (bitsandbytes 0.45
// numerics, `wo` fp32; int8_linear.h, docs/int8.md) by default when the compute dtype is 16-bit, in the model dtype
// in fp32 or with BackboneOptions::t5_int8 = false.
#include "harness/backbones/clip_text.h"
#include "harness/backbones/dit_noising.h"
#include "harness/backbones/registry.h"
#include "harness/backbones/flux_transformer.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/backbones/text_cache.h"
#include "harness/backbones/vae.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gb::bb {

// max_sequence_length of the Flux pipelines (spec §5.5): T5 ids are padded to it (no mask).
inline constexpr int64_t kFluxTextLength = 512;
// Whether T5 runs in LLM.int8: the option when given, else on for 16-bit compute (the paper's load_in_8bit) and
// off in fp32 (the parity tests).
bool flux_t5_int8(std::optional<bool> asked, at::ScalarType dtype);

class FluxBackbone : public Backbone {
 public:
  FluxBackbone(const CheckpointFolder& folder, const BackboneOptions& options);

  std::string kind() const override { return "flux"; }
  std::vector<LayerInfo> list_layers() const override;
  // The T5 tokenizer (tokenizer_2): the cross maps' key axis is the T5 position (spec §7.11).
  const TextTokenizer& tokenizer() const override;
  // CLIP tokenizer for the pooled vector (the pipeline's `tokenizer`, 77 tokens).
  void set_clip_tokenizer(std::shared_ptr<const TextTokenizer> t) { clip_tokenizer_ = std::move(t); }
  Capture capture(const BackboneBatch& batch, const CaptureSpec& spec) override;
  // text_encoder: free — encodes the prompts not cached yet (`batch_size` at a time), keeps their conditioning in
  // host memory and frees T5 and CLIP. A no-op in the other modes.
  void prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) override;
  bool text_encoders_loaded() const { return t5_ != nullptr; }
  const PromptConditioningCache& text_cache() const { return text_cache_; }
  const T5Encoder* text_encoder() const { return t5_.get(); }

  // The same pass from token ids: T5 ids [B, T] (padded to max_length, no mask) and CLIP ids [B, 77].
  Capture capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& t5_ids, const at::Tensor& clip_ids,
                      const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec);

  const TextTokenizer* clip_tokenizer() const { return clip_tokenizer_.get(); }
  // T5 states [B, T, 4096] and CLIP pooled [B, 768] (model dtype, on the device) from T5 ids [B, T] and CLIP ids
  // [B, 77] (text_encoder: keep or offload).
  std::pair<at::Tensor, at::Tensor> encode_text(const at::Tensor& t5_ids, const at::Tensor& clip_ids);
  // One transformer call on prepared inputs (the sampling loop, harness/generation), recording `spec` into
  // `cap`; returns the packed prediction [B, N, 64].
  at::Tensor denoise(const FluxInputs& in, const CaptureSpec& spec, Capture& cap) const;
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  const FluxTransformer& transformer() const { return *transformer_; }
  FluxTransformer& transformer() { return *transformer_; }
  const FluxNoising& noising() const { return plan_; }
  const T5Encoder* text_encoder_2() const { return t5_.get(); }  // null once released
  int64_t image_size() const { return image_size_; }
  int64_t text_length() const;
  double guidance_scale() const { return 1.0; }  // GDF calls the pipeline with guidance_scale = 1

 private:
  struct Text {
    at::Tensor t5, pooled;  // [B, T, 4096] and [B, 768] on the device, model dtype
  };
  Text encode(const at::Tensor& t5_ids, const at::Tensor& clip_ids);
  // Tokenized and encoded: {"t5", "pooled"} (the rows the text cache keeps).
  PromptConditioningCache::Rows encode_rows(const std::vector<std::string>& prompts);
  PromptConditioningCache::Encoders encoders();  // for text_cache_
  void release_text_encoders();
  Capture capture_text(const std::vector<at::Tensor>& images, const Text& text,
                       const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec,
                       double text_seconds);
  int64_t latent_size() const;
  BackboneOptions options_;
  at::Device device_;
  at::ScalarType dtype_;
  int64_t image_size_;
  std::unique_ptr<FluxTransformer> transformer_;
  std::unique_ptr<VaeEncoder> vae_;
  std::unique_ptr<ClipTextModel> clip_;
  std::unique_ptr<T5Encoder> t5_;
  FluxNoising plan_;
  std::shared_ptr<const TextTokenizer> tokenizer_, clip_tokenizer_;
  std::set<std::string> layer_names_;
  PromptConditioningCache text_cache_;
};

// Registry entry (registry.cpp) and its memory model (flux_memory.cpp).
BackboneKind flux_backbone_kind();
std::unique_ptr<MemoryModel> flux_memory_model(const std::optional<std::string>& folder);

}  // namespace gb::bb
