#pragma once
// The PixArt backbones (gb::Backbone): T5 text encoding with the caption mask, fp32 VAE posterior sample,
// DPM-Solver++ noising at t = 100 (linear betas), one transformer forward with the paper's captures
// (spec backbones.md §4, §6, §7; GDF's img2img PixArtSigmaPipeline G-pix and PixArtAlphaPipeline, which run the
// same steps). Three kinds share the class:
//   pixart-sigma      PixArt-Sigma XL-2 1024-MS (the paper's): 300 T5 tokens, 1024².
//   pixart-sigma-512  PixArt-Sigma XL-2 512-MS (the paper's generation experiment): 300 tokens, 512².
//   pixart-alpha      PixArt-alpha XL-2 1024-MS: 120 tokens (PixArtAlphaPipeline max_sequence_length), 1024², and
//                     the micro-conditions resolution = (S, S), aspect ratio 1 that PixArtAlphaPipeline passes for a
//                     sample_size-128 transformer (GDF passes None, which that checkpoint cannot run with).
//
// Randomness: two draws per image in the paper's order (VAE posterior ε, then diffusion ε), each from a CPU
// generator seeded by noise_seed(batch seed, image id), in fp32 and then cast, so a capture does not depend on
// batch composition, order, device or sharding.
#include "harness/backbones/dit_noising.h"
#include "harness/backbones/registry.h"
#include "harness/backbones/pixart_transformer.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/backbones/text_cache.h"
#include "harness/backbones/vae.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gb::bb {

enum class PixArtVariant { sigma, sigma_512, alpha };
const char* to_string(PixArtVariant v);  // the kind name
// max_sequence_length of PixArtSigmaPipeline (spec §4.4, 300) and PixArtAlphaPipeline (120): the prompts are
// padded to it, with a mask.
int64_t pixart_text_length(PixArtVariant v);
PixArtConfig pixart_default_config(PixArtVariant v);  // the published transformer config

class PixArtSigmaBackbone : public Backbone {
 public:
  PixArtSigmaBackbone(const CheckpointFolder& folder, const BackboneOptions& options,
                      PixArtVariant variant = PixArtVariant::sigma);

  std::string kind() const override { return to_string(variant_); }
  PixArtVariant variant() const { return variant_; }
  std::vector<LayerInfo> list_layers() const override;
  const TextTokenizer& tokenizer() const override;
  Capture capture(const BackboneBatch& batch, const CaptureSpec& spec) override;
  // text_encoder: free — encodes the prompts not cached yet (`batch_size` at a time), keeps their conditioning
  // (T5 states and mask) in host memory and frees T5. A no-op in the other modes.
  void prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) override;
  bool text_encoders_loaded() const { return t5_ != nullptr; }
  const PromptConditioningCache& text_cache() const { return text_cache_; }

  // The same pass from T5 token ids and masks [B, T] (the tokenizer's padded output; the prompt lowercased).
  Capture capture_ids(const std::vector<at::Tensor>& images, const at::Tensor& ids, const at::Tensor& mask,
                      const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec);

  // T5 ids and masks [B, T] of prompts as the pipeline tokenizes them (lowercased, stripped, padded).
  std::pair<at::Tensor, at::Tensor> token_ids(const std::vector<std::string>& prompts) const;
  // T5 states [B, T, 4096] (model dtype, on the device) from ids and masks (text_encoder: keep or offload).
  at::Tensor encode_text(const at::Tensor& ids, const at::Tensor& mask);
  // One transformer call on prepared inputs (the sampling loop, harness/generation), recording `spec` into
  // `cap`; returns the full output [B, out_channels, H, W].
  at::Tensor denoise(const PixArtInputs& in, const CaptureSpec& spec, Capture& cap) const;
  // PixArtAlphaPipeline's micro-conditions for a [B, ·, height/8, width/8] batch: resolution (height, width) and
  // aspect ratio height / width in the model dtype. A no-op for transformers without use_additional_conditions.
  void add_micro_conditions(PixArtInputs& in, int64_t height, int64_t width) const;
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  const PixArtTransformer& transformer() const { return *transformer_; }
  const T5Encoder* text_encoder() const { return t5_.get(); }  // null once freed
  const PixArtNoising& noising() const { return plan_; }
  int64_t image_size() const { return image_size_; }
  int64_t text_length() const;
  int64_t pad_id() const { return pad_id_; }  // T5's <pad>: the mask is 0 exactly on it

 private:
  struct Text {
    at::Tensor t5, mask;  // [B, T, 4096] model dtype, [B, T] int64, on the device
  };
  Text encode(const at::Tensor& ids, const at::Tensor& mask);
  // Tokenized and encoded: {"t5", "mask"} (the rows the text cache keeps).
  PromptConditioningCache::Rows encode_rows(const std::vector<std::string>& prompts);
  PromptConditioningCache::Encoders encoders();  // for text_cache_
  void release_text_encoder();
  Capture capture_text(const std::vector<at::Tensor>& images, const Text& text,
                       const std::vector<std::string>& image_ids, uint64_t seed, const CaptureSpec& spec,
                       double text_seconds);
  PixArtVariant variant_;
  BackboneOptions options_;
  at::Device device_;
  at::ScalarType dtype_;
  int64_t image_size_;
  std::unique_ptr<PixArtTransformer> transformer_;
  std::unique_ptr<VaeEncoder> vae_;
  std::unique_ptr<T5Encoder> t5_;
  PixArtNoising plan_;
  std::shared_ptr<const TextTokenizer> tokenizer_;
  std::set<std::string> layer_names_;
  PromptConditioningCache text_cache_;
  int64_t pad_id_ = 0;
};

// Registry entry (registry.cpp) and its memory model (pixart_memory.cpp).
BackboneKind pixart_sigma_backbone_kind();
BackboneKind pixart_sigma_512_backbone_kind();
BackboneKind pixart_alpha_backbone_kind();
std::unique_ptr<MemoryModel> pixart_memory_model(PixArtVariant variant, const std::optional<std::string>& folder);

}  // namespace gb::bb
