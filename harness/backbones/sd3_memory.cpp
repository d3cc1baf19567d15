// The memory model of the SD3.5 backbones (sd3_backbone.cpp, sd3_transformer.cpp): transformer, VAE in the model
// dtype, CLIP-L, CLIP-G and T5 (`wo` fp32; T5 parked in host memory under text_encoder: offload, all three freed
// under free); joint attention over image + 77 + 256 text tokens in head groups of a bounded score chunk, as Flux's
// (flux_memory.cpp).
#include "harness/backbones/joint_attention.h"
#include "harness/backbones/memory_parts.h"
#include "harness/backbones/sd3_backbone.h"
#include "harness/core/strings.h"
#include "harness/core/torch_compat.h"

#include <algorithm>

namespace gb::bb {

namespace {

class Sd3MemoryModel : public mem::JointMemoryModel {
 public:
  Sd3MemoryModel(Sd3Variant variant, const std::optional<std::string>& folder) : folder_(folder) {
    const bool f = folder.has_value();
    sd3_ = f ? Sd3Config::from_json(component_file(*folder, "transformer")) : sd3_default_config(variant);
    vae_ = f ? VaeConfig::from_json(component_file(*folder, "vae")) : VaeConfig::sd3();
    clip_l_ = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder")) : ClipTextConfig::clip_l();
    clip_g_ = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder_2")) : ClipTextConfig::bigg();
    if (!f) {  // SD3.5's text_encoder is CLIP-L as CLIPTextModelWithProjection
      clip_l_.with_projection = true;
      clip_l_.projection_dim = 768;
    }
    t5_ = f ? T5Config::from_json(component_file(*folder, "text_encoder_3")) : T5Config::v1_1_xxl();
  }

  std::vector<ComponentWeights> weights(at::ScalarType dtype, bool t5_int8) const override {
    const mem::Make transformer = [&](const WeightStore& ws) { Sd3Transformer m(ws, sd3_); };
    const mem::Make vae = [&](const WeightStore& ws) { VaeEncoder m(vae_, ws); };
    const mem::Make clip_l = [&](const WeightStore& ws) { ClipTextModel m(clip_l_, ws); };
    const mem::Make clip_g = [&](const WeightStore& ws) { ClipTextModel m(clip_g_, ws); };
    if (folder_) {
      mem::check_headers(*folder_, "transformer", dtype, transformer);
      mem::check_headers(*folder_, "vae", dtype, vae);
      mem::check_headers(*folder_, "text_encoder", dtype, clip_l);
      mem::check_headers(*folder_, "text_encoder_2", dtype, clip_g);
      mem::check_headers(*folder_, "text_encoder_3", dtype, [&](const WeightStore& ws) { T5Encoder m(ws, t5_); });
    }
    // CLIP-L and CLIP-G are freed with T5 under `free` and stay on the device under `offload` (T5 is parked).
    return {mem::component("transformer", dtype, transformer, false), mem::component("vae", dtype, vae, false),
            mem::component("text_encoder", dtype, clip_l, true), mem::component("text_encoder_2", dtype, clip_g, true),
            mem::t5_component("text_encoder_3", t5_, dtype, t5_int8)};
  }

  int64_t size_multiple() const override { return vae_.scale_factor() * sd3_.patch_size; }

  // CLIP's positions (77), then the T5 length; set_text_length sets the T5 part, as a tokenizer option does
  // (BackboneOptions::tokenizer is the T5 tokenizer of the SD3.5 kinds).
  int64_t text_length() const override { return clip_l_.max_position_embeddings + t5_len_; }
  void set_text_length(int64_t n) override { t5_len_ = n; }

  // CLIP-L and CLIP-G run first (their penultimate states and pooled vectors are kept), then T5.
  MemoryPhase text_phase(int64_t B, at::ScalarType dt, bool t5_int8) const override {
    MemoryPhase p = mem::t5_text_phase(t5_, B, t5_len_, dt, t5_int8, /*masked=*/false);
    const int64_t s = mem::esize(dt), L = clip_l_.max_position_embeddings;
    p.transient.push_back(
        {"CLIP-L|G penultimate states and pooled vectors",
         B * (L * (clip_l_.hidden_size + clip_g_.hidden_size) + clip_l_.projection_dim + clip_g_.projection_dim) * s});
    return p;
  }

  MemoryPhase vae_phase(int64_t B, int64_t S, at::ScalarType vdt, at::ScalarType dt) const override {
    return mem::vae_encode_phase(vae_, B, S, vdt, dt, text_length(), sd3_.joint_attention_dim, device());
  }

  std::vector<MemoryTerm> denoiser_persistent(int64_t B, int64_t S, at::ScalarType dt) const override {
    const int64_t lat = S / vae_.scale_factor();
    const int64_t T = text_length(), C = sd3_.inner_dim();
    return {{"latents, joint text states, projected context, pooled vector",
             B * (sd3_.in_channels * lat * lat + T * (sd3_.joint_attention_dim + C) + sd3_.pooled_projection_dim) *
                 mem::esize(dt)}};
  }

 private:
  int64_t num_blocks() const override { return sd3_.num_layers; }

  // Block k (sd3_transformer.cpp, joint_attend in joint_attention.cpp): activations, then
  // mem::joint_attention_terms.
  MemoryUnit block_unit(int64_t k, const CaptureSpec& spec, int64_t B, int64_t S, at::ScalarType dt,
                        at::ScalarType store) const override {
    const auto& c = sd3_;
    const int64_t H = c.num_attention_heads, C = c.inner_dim();
    const int64_t T = text_length();
    const int64_t g = (S / vae_.scale_factor()) / c.patch_size;
    const int64_t N = g * g, Sq = N + T;
    const int64_t s = mem::esize(dt);
    const std::string id = vit_block(k);
    MemoryUnit u{id, {}};
    // Alive during joint_attend(): x, xn0, xn (N) + ctx, cn (T) + q, k, v and their normed q, k (N and T) + the
    // concatenated q, k, v (S).
    const int64_t act = B * C * (3 * N + 2 * T + 5 * (N + T) + 3 * Sq) * s;
    u.transient.push_back({"joint-block activations", act});
    mem::joint_attention_terms(u, spec, id, B, H, C, N, T, dt, store, Sd3Transformer::kDefaultChunkElements, device());
    return u;
  }

  std::optional<std::string> folder_;
  Sd3Config sd3_;
  VaeConfig vae_;
  ClipTextConfig clip_l_, clip_g_;
  T5Config t5_;
  int64_t t5_len_ = kSd3T5Length;
};

}  // namespace

std::unique_ptr<MemoryModel> sd3_memory_model(Sd3Variant variant, const std::optional<std::string>& folder) {
  return std::make_unique<Sd3MemoryModel>(variant, folder);
}

}  // namespace gb::bb
