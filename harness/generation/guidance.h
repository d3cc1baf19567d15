#pragma once
// Guidance: how one sampling step turns the denoiser's two predictions on the classifier-free-guidance batch
// into the ε (or velocity) the scheduler steps with. The sampling loop (harness/generation/sampler.h) owns the
// denoiser call; a Guidance only says what to record during it and combines.
//
// Each step of `goca-bench generate` does, for a batch of B prompts:
//   1. the CFG batch of 2B: [uncond_0 … uncond_{B-1}, cond_0 … cond_{B-1}] (diffusers' torch.cat([negative,
//      positive]) order), one denoiser call on it recording `capture_spec()` (keys of list-layers, e.g. the
//      cross/self maps, special-value/-post-value/-weight and the reference feature `-q` GoCA needs);
//   2. eps_uncond = prediction[:B], eps_cond = prediction[B:], each [B, C, h, w] as the denoiser returns it
//      (PixArt: all out_channels = 8, ε and the learned-sigma channels, as the pipeline guides before dropping
//      them; Flux: unpacked from its 2x2 packing to the 16 x h x w latent grid);
//   3. combine(eps_uncond, eps_cond, capture, step) -> ε [B, C, h, w], in the dtype of eps_cond;
//   4. PixArt keeps ε's first C/2 channels (learned sigma dropped); scheduler.step(ε).
// The capture's batch dimension is 2B in the CFG batch order above (capture.tensors[key][i] is uncond prompt i,
// [B + i] its conditional half). Plain CFG asks for nothing and returns ε_u + G (ε_c − ε_u) exactly as the
// pipelines compute it. S-CFG (the paper's utils_15.py / utils_sigma.py, harness/generation/scfg.h) asks for the
// GoCA inputs on every step, builds its masks from both halves (the per-prompt token info below: which token
// positions are real, the start token, the end-of-text token, the padding) and returns ε_u + G·rate·(ε_c − ε_u).
//
// Backbone specifics a guidance may need (GuidanceStep::backbone):
//   sd15 / sdxl     CLIP ids padded to 77 with <|endoftext|>; real tokens = BOS … EOS inclusive.
//   pixart-sigma    T5 ids padded to 300 with <pad> = 0 (masked out of cross-attention); real tokens = words +
//                   </s>; the unconditional half is the empty prompt "" = [</s>, pad…] (one real token).
//   flux            T5 ids padded to 512, no mask; cfg uses the guidance-distilled embedding (no unconditional
//                   pass: needs_uncond() is false and combine() is not called); a guidance with
//                   needs_uncond() true gets true CFG on [uncond, cond] (docs/generation.md).
#include "harness/core/capture.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gb {
class Backbone;
}

namespace gb::gen {

// One half (conditional or unconditional) of one prompt, as fed to the text encoder whose states the
// denoiser cross-attends to (CLIP for sd15/sdxl, T5 for pixart-sigma/flux).
struct GuidanceTokens {
  std::string text;          // the prompt ("" for the unconditional half)
  std::vector<int64_t> ids;  // padded token ids, length = the captures' text axis
  int64_t real_tokens = 0;   // ids before the padding (CLIP: BOS..EOS inclusive; T5: words + </s>)
};

struct GuidanceStep {
  int64_t index = 0;     // 0-based step number
  int64_t count = 0;     // number of steps
  double timestep = 0;   // the scheduler's timestep at this step (as fed to the denoiser before any /1000)
  double scale = 1;      // the guidance scale G
  std::string backbone;  // "sd15", "sdxl", "pixart-sigma", "flux"
  std::vector<GuidanceTokens> uncond, cond;  // per prompt of the batch (B each, same order as the latents)
};

// What make_guidance gets to build one (the CLI fills it from its flags).
struct GuidanceOptions {
  std::string backbone;     // kind of the loaded backbone
  double scale = 2.0;       // --guidance-scale
  std::string method_path;  // --method (the GoCA method YAML for S-CFG's masks); "" = the guidance's default
  std::string protocol = "paper";
  const gb::Backbone* model = nullptr;  // the loaded backbone (list_layers(), tokenizer()), outlives the guidance
};

class Guidance {
 public:
  virtual ~Guidance() = default;
  virtual std::string name() const = 0;  // "cfg", "scfg"
  // What the denoiser records on the CFG batch at every step (empty: nothing, the fused attention path runs).
  virtual CaptureSpec capture_spec() const = 0;
  // Whether the unconditional half is run at all (false only for Flux's distilled cfg).
  virtual bool needs_uncond() const { return true; }
  // ε for this step (see the header comment); must not modify its inputs.
  virtual at::Tensor combine(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const Capture& cfg_capture,
                             const GuidanceStep& step) = 0;
  // Resolved settings for generate.json (method file, layers, protocol …); name and scale are added by the caller.
  virtual std::map<std::string, std::string> settings() const { return {}; }
};

// Plain classifier-free guidance: ε_u + G (ε_c − ε_u) in the prediction dtype (diffusers' pipelines).
// For flux it is the distilled guidance: needs_uncond() false, G goes to the transformer's guidance embedding.
class CfgGuidance : public Guidance {
 public:
  explicit CfgGuidance(const GuidanceOptions& o);
  std::string name() const override { return "cfg"; }
  CaptureSpec capture_spec() const override { return {}; }
  bool needs_uncond() const override { return !distilled_; }
  at::Tensor combine(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const Capture& cfg_capture,
                     const GuidanceStep& step) override;

 private:
  bool distilled_ = false;
};

// The guidances: "cfg" (CfgGuidance) and "scfg" (harness/generation/scfg.h: `std::unique_ptr<Guidance>
// make_scfg_guidance(const GuidanceOptions&)`, picked up here when that header exists). UserError listing the
// names for anything else.
std::unique_ptr<Guidance> make_guidance(const std::string& name, const GuidanceOptions& options);
std::vector<std::string> guidance_names();

}  // namespace gb::gen
