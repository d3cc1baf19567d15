#pragma once
// S-CFG (semantic-aware classifier-free guidance) guided by GoCA masks, as the GoCA paper's generation
// experiment runs it (Darkbblue/goca src-additional/generation-experiment: utils_15.py / utils_sigma.py
// get_mask, the rate block of generate_for_fid_{15,sigma}.py, gaussian_smoothing.py). Pure ATen functions,
// CPU or CUDA (they follow their inputs), fp32 math; docs/generation.md "S-CFG quirks" lists what they
// reproduce. At every denoising step of one prompt:
//
//   1. GoCA §B–§C on both halves of the CFG capture (goca::Segmentor::aggregate, with the method's reference
//      mode: the generation presets use ref_mode full), A_u and A_c [T, S, S];
//   2. positive branch (cond): rescale over every non-special token with all T channels kept, propagate with
//      the cond half's self maps (n products, per-channel MinMax), zero every channel after the last non-special
//      token, one-hot argmax over tokens -> token mask [T, S, S] (ties: every tied channel; a NaN pixel: none);
//   3. negative branch (uncond, channel 0 only; PixArt: channel 0 replaced by A_c's raw end-of-text map first):
//      propagate, 5x5 blur, MinMax, foreground = 1 where the map is below 0.5 (NaN counts as foreground);
//   4. rate map [1, h, w]: mean |eps_c - eps_u| (channel L2 norm) over the foreground divided by its mean over
//      each token region, painted back onto the regions, clamped to [0.8, 3.0] and to at most 15/G, smoothed
//      by the paper's 3x3 GaussianSmoothing (sigma 0.5, its kernel formula) after reflect padding;
//   5. eps = eps_u + (G * rate) * (eps_c - eps_u).
#include "harness/generation/guidance.h"
#include <ATen/core/Tensor.h>

#include "goca/segmentor.h"
#include "harness/core/capture.h"
#include "harness/core/tokenizer.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gb::gen {

// The token roles get_mask reads from the prompt's padded tokenization.
struct ScfgTokens {
  std::vector<int64_t> rescaling;  // positions of the non-special tokens: the sum-1 set; the positive mask keeps
                                   // channels [0, rescaling.back()] (start token and in-prompt specials included)
  int64_t global = -1;             // utils_sigma (PixArt): the last end-of-text position, whose raw cond map
                                   // replaces channel 0 of the uncond half; -1: no replacement (utils_15, SD)
};

// From the harness tokenizer's tokens (TextToken::special, "<eos>" for T5's "</s>"). `replace_start_with_eos`
// selects utils_sigma's behaviour (PixArt-Σ); false is utils_15's (SD1.5). gb::UserError when the prompt has no
// non-special token, or (PixArt) no end-of-text token.
ScfgTokens scfg_tokens(const std::vector<TextToken>& tokens, bool replace_start_with_eos);

struct ScfgMasks {
  at::Tensor tokens;      // [T, S, S] 0/1 (fp32): the argmax token of each pixel
  at::Tensor foreground;  // [1, S, S] 0/1 (fp32)
};

// gb::UserError (prefixed by `source`) unless the method is one get_mask can run: rescale_method raw,
// per_token_renorm_plus or sum1_renorm_plus, and non-empty self_layers.
void validate_scfg_method(const goca::MethodConfig& method, const std::string& source);

// get_mask for one prompt: `uncond` and `cond` are the two halves of its CFG capture without the batch
// dimension (keys as goca::Segmentor::run reads them). gb::UserError for a method validate_scfg_method refuses
// and for token positions outside the maps.
ScfgMasks scfg_masks(const goca::Segmentor& segmentor, const TensorMap& uncond, const TensorMap& cond,
                     const ScfgTokens& tokens);

// The paper's GaussianSmoothing(channels=1, kernel_size=3, sigma=0.5) weight [3, 3] (fp32): the product over the
// two axes of exp(-((x - 1) / (2 sigma))^2) / (sigma sqrt(2 pi)), normalised to sum 1.
at::Tensor scfg_smoothing_kernel();

// The rate map [B, 1, h, w] (fp32) from eps halves [B, C, h, w] (all C channels, PixArt's learned-sigma ones
// included) and per-sample masks [B, T, S, S], [B, 1, S, S] (nearest-resized to h x w when S differs).
at::Tensor scfg_rate(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const at::Tensor& token_masks,
                     const at::Tensor& foreground, double guidance_scale);

// eps_u + (G * rate) * (eps_c - eps_u) in the dtype of eps (rate [B, 1, h, w] is cast to it first).
at::Tensor scfg_combine(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const at::Tensor& rate,
                        double guidance_scale);

// `--guidance scfg`: the functions above at every step, on the capture of the CFG batch [uncond..., cond...].
// The masks come from a method plan (baselines/method_yaml.h): --method, or the backbone's `scfg` preset
// (configs/methods/{sd15,pixart-sigma}/scfg.yaml; pixart-sigma-512, the paper's generation checkpoint, takes
// pixart-sigma's, which is the paper's config_model_sigma.py). The UNet kinds follow utils_15 (all but sd15 only with
// --method: the paper has no generation config for them), the PixArt kinds utils_sigma; flux and sd35-* are refused.
// The token roles come from the backbone's tokenizer on the conditional prompt's text as given (the paper tokenizes the
// raw prompt).
class ScfgGuidance : public Guidance {
 public:
  explicit ScfgGuidance(const GuidanceOptions& options);
  std::string name() const override { return "scfg"; }
  CaptureSpec capture_spec() const override { return segmentor_.required_capture(); }
  at::Tensor combine(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const Capture& cfg_capture,
                     const GuidanceStep& step) override;
  std::map<std::string, std::string> settings() const override;

  // The last step's rate map [B, 1, h, w] and masks (one per prompt), for tests and diagnostics.
  const at::Tensor& last_rate() const { return last_rate_; }
  const std::vector<ScfgMasks>& last_masks() const { return last_masks_; }

 private:
  const ScfgTokens& tokens_for(const std::string& text);

  std::string method_source_;  // before segmentor_: the constructor fills it while building segmentor_
  goca::Segmentor segmentor_;
  std::string backbone_;
  bool eos_replaces_start_ = false;
  const TextTokenizer* tokenizer_ = nullptr;
  std::map<std::string, ScfgTokens> token_cache_;
  at::Tensor last_rate_;
  std::vector<ScfgMasks> last_masks_;
};

std::unique_ptr<Guidance> make_scfg_guidance(const GuidanceOptions& options);
// The backbone whose built-in `scfg` preset a kind uses without --method ("sd15", "pixart-sigma"), "" for none.
std::string scfg_preset_backbone(const std::string& kind);

}  // namespace gb::gen
