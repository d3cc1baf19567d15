// The memory model of the FLUX.1-dev backbone (flux_backbone.cpp, flux_transformer.cpp): transformer, VAE in
// the model dtype, CLIP-L and T5 (LLM.int8 by default in 16-bit; both freed under text_encoder: free, T5 parked
// under offload), joint attention over image + 512 text tokens in head groups of a bounded score chunk.
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/joint_attention.h"
#include "harness/backbones/memory_parts.h"
#include "harness/core/torch_compat.h"
#include "harness/core/strings.h"

#include <algorithm>

namespace gb::bb {

namespace {

class FluxMemoryModel : public mem::JointMemoryModel {
 public:
  explicit FluxMemoryModel(const std::optional<std::string>& folder) : folder_(folder) {
    const bool f = folder.has_value();
    flux_ = f ? FluxConfig::from_json(component_file(*folder, "transformer")) : FluxConfig::dev();
    vae_ = f ? VaeConfig::from_json(component_file(*folder, "vae")) : VaeConfig::flux();
    clip_ = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder")) : ClipTextConfig::clip_l();
    t5_ = f ? T5Config::from_json(component_file(*folder, "text_encoder_2")) : T5Config::v1_1_xxl();
  }

  std::vector<ComponentWeights> weights(at::ScalarType dtype, bool t5_int8) const override {
    const mem::Make transformer = [&](const WeightStore& ws) { FluxTransformer m(ws, flux_); };
    const mem::Make vae = [&](const WeightStore& ws) { VaeEncoder m(vae_, ws); };
    const mem::Make clip = [&](const WeightStore& ws) { ClipTextModel m(clip_, ws); };
    if (folder_) {
      mem::check_headers(*folder_, "transformer", dtype, transformer);
      mem::check_headers(*folder_, "vae", dtype, vae);
      mem::check_headers(*folder_, "text_encoder", dtype, clip);
      mem::check_headers(*folder_, "text_encoder_2", dtype, [&](const WeightStore& ws) { T5Encoder m(ws, t5_); });
    }
    // CLIP is freed with T5 under `free` and stays on the device under `offload`.
    return {mem::component("transformer", dtype, transformer, false), mem::component("vae", dtype, vae, false),
            mem::component("text_encoder", dtype, clip, true),
            mem::t5_component("text_encoder_2", t5_, dtype, t5_int8)};
  }

  bool t5_int8(std::optional<bool> asked, at::ScalarType dtype) const override { return flux_t5_int8(asked, dtype); }

  int64_t size_multiple() const override { return vae_.scale_factor() * 2; }

  int64_t text_length() const override { return text_len_; }
  void set_text_length(int64_t n) override { text_len_ = n; }

  MemoryPhase text_phase(int64_t B, at::ScalarType dt, bool t5_int8) const override {
    MemoryPhase p = mem::t5_text_phase(t5_, B, text_len_, dt, t5_int8, /*masked=*/false);
    // The pooled CLIP vector is computed first and kept.
    p.transient.push_back({"pooled CLIP vector", B * clip_.hidden_size * mem::esize(dt)});
    return p;
  }

  MemoryPhase vae_phase(int64_t B, int64_t S, at::ScalarType vdt, at::ScalarType dt) const override {
    return mem::vae_encode_phase(vae_, B, S, vdt, dt, text_len_, t5_.d_model, device());
  }

  std::vector<MemoryTerm> denoiser_persistent(int64_t B, int64_t S, at::ScalarType dt) const override {
    const int64_t g = (S / vae_.scale_factor()) / 2;
    return {{"packed latents, T5 states, RoPE tables",
             B * (g * g * flux_.in_channels + text_len_ * t5_.d_model) * mem::esize(dt) +
                 (g * g + text_len_) * flux_.attention_head_dim * 8}};
  }

 private:
  int64_t num_blocks() const override { return flux_.total_blocks(); }

  // Block k (flux_transformer.cpp, joint_attend in joint_attention.cpp): activations, then
  // mem::joint_attention_terms.
  MemoryUnit block_unit(int64_t k, const CaptureSpec& spec, int64_t B, int64_t S, at::ScalarType dt,
                        at::ScalarType store) const override {
    const auto& f = flux_;
    const int64_t H = f.num_attention_heads, C = f.inner_dim();
    const int64_t T = text_len_;
    const int64_t g2 = (S / vae_.scale_factor()) / 2;
    const int64_t N = g2 * g2, Sq = N + T;
    const int64_t s = mem::esize(dt);
    const int64_t mlp = static_cast<int64_t>(C * f.mlp_ratio);
    const std::string id = vit_block(k);
    const bool dbl = k < f.num_layers;
    MemoryUnit u{id, {}};
    // Block activations alive during joint_attend(): double: x, xn, v (N) + ctx, cn, eq, ek, ev (T) + q, k, [ev|v] (S);
    // single: s, sn, q, k, v (S) + the MLP branch [S, mlp].
    const int64_t act = dbl ? B * C * (3 * N + 5 * T + 3 * Sq) * s : B * Sq * (5 * C + mlp) * s;
    u.transient.push_back({dbl ? "double-block activations" : "single-block activations (incl. MLP branch)", act});
    mem::joint_attention_terms(u, spec, id, B, H, C, N, T, dt, store, FluxTransformer::kDefaultChunkElements, device());
    return u;
  }

  std::optional<std::string> folder_;
  FluxConfig flux_;
  VaeConfig vae_;
  ClipTextConfig clip_;
  T5Config t5_;
  int64_t text_len_ = kFluxTextLength;
};

}  // namespace

std::unique_ptr<MemoryModel> flux_memory_model(const std::optional<std::string>& folder) {
  return std::make_unique<FluxMemoryModel>(folder);
}

}  // namespace gb::bb
