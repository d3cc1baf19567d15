#pragma once
// Text-to-image sampling with classifier-free guidance on the native backbones (sd15, sd21, sd21-base, sdxl,
// pixart-sigma, pixart-sigma-512, pixart-alpha, flux, sd35-medium, sd35-large), step for step as diffusers 0.32.2's
// StableDiffusionPipeline, StableDiffusionXLPipeline, PixArtSigmaPipeline, PixArtAlphaPipeline, FluxPipeline and
// StableDiffusion3Pipeline do it (docs/generation.md):
//   text:     the prompts and the empty prompt "" through the backbone's text encoders (SDXL: zeros for the
//             unconditional half, force_zeros_for_empty_prompt; SD3.5: CLIP-L|G then T5 states and the pooled
//             projections of both halves);
//   latents:  the given initial latents [B, C, h, w] (float32 noise) cast to the model dtype, times the
//             scheduler's init_noise_sigma (not for the flow-matching pipelines, which take them as they are);
//   steps:    the CFG batch [uncond, cond] through the denoiser (recording the guidance's capture spec), the
//             guidance's combine, scheduler.step (which honours the scheduler's prediction_type: SD 2.1 768-v is
//             v_prediction); PixArt-alpha with its resolution / aspect-ratio micro-conditions; SD3.5 over the
//             flow-matching scheduler's own sigmas with its fixed shift;
//   decode:   latents / scaling_factor (+ shift_factor) through the VAE decoder (SDXL: fp32 when force_upcast and
//             fp16), VaeImageProcessor post-processing to uint8.
// Flux with plain cfg is guidance-distilled: one pass on the conditional batch with the guidance embedding = G.
#include "harness/backbones/schedulers.h"
#include "harness/backbones/vae.h"
#include "harness/core/backbone.h"
#include "harness/generation/guidance.h"

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gb::gen {

// Token ids of one half of the CFG batch, as the pipeline's tokenizers produce them.
struct PromptTokens {
  at::Tensor ids;   // [B, T] ids of the cross-attended encoder (CLIP tokenizer-1 for SD, T5 otherwise)
  at::Tensor mask;  // [B, T] T5 attention mask (PixArt), else undefined
  at::Tensor
      clip_ids;  // [B, 77] CLIP ids of Flux's pooled vector and of SD3.5's CLIP-L (CLIP-G's derived), else undefined
  std::vector<std::string> texts;
};

struct SamplerOptions {
  int64_t steps = 0;      // 0: the paper's / pipeline's default (SD 50, PixArt 20, flux and sd35-* 28)
  std::string scheduler;  // "" = the checkpoint's scheduler/scheduler_config.json class
  double guidance_scale = 2.0;
  // generate() samples the prompts of a batch one at a time, so an image does not depend on the batch it came in
  // (oneDNN/cuDNN/cuBLAS pick kernels from the whole shape: gb::capture_each_sample); false: one denoiser call
  // per step for the whole batch (faster on a GPU; images then match other batch sizes only up to rounding).
  bool batch_invariant = true;
};

class Sampler {
 public:
  // `backbone` is a loaded backbone of one of the kinds above, of the folder `weights`; the VAE decoder and the
  // scheduler config are read from the folder.
  Sampler(gb::Backbone& backbone, const std::string& weights, const SamplerOptions& options);
  ~Sampler();

  const std::string& kind() const { return kind_; }
  int64_t steps() const { return steps_; }
  double guidance_scale() const { return scale_; }
  // The scale of the next generate calls (one loaded sampler serves every scale of an experiment).
  void set_guidance_scale(double scale) { scale_ = scale; }
  const bb::SchedulerConfig& scheduler_config() const { return scheduler_; }
  int64_t image_size() const { return image_size_; }
  // One prompt's initial latent shape [C, h, w] (Flux: unpacked 16 x h x w).
  std::vector<int64_t> latent_shape() const;
  // Seeded initial noise [C, h, w] float32 of one prompt id: CPU generator seeded by noise_seed(seed, id).
  at::Tensor initial_noise(uint64_t seed, const std::string& id) const;

  PromptTokens tokenize(const std::vector<std::string>& prompts) const;

  // Images [B, H, W, 3] uint8 for `prompts` from initial `latents` [B, C, h, w] (one prompt at a time unless
  // the options turned batch_invariant off).
  at::Tensor generate(const std::vector<std::string>& prompts, const at::Tensor& latents, Guidance& guidance);
  // The same from token ids (tests, replay): `uncond` is the empty prompt's tokens (ignored when the guidance
  // does not need the unconditional half, and for SDXL's zero embeddings).
  at::Tensor generate_tokens(const PromptTokens& cond, const PromptTokens& uncond, const at::Tensor& latents,
                             Guidance& guidance);
  // Final latents (before decode) of the last generate call, [B, C, h, w] in the model dtype.
  const at::Tensor& last_latents() const { return last_latents_; }
  // Seconds per stage accumulated over the generate calls: "text", "denoiser", "guidance", "scheduler", "vae".
  const std::map<std::string, double>& stage_seconds() const { return seconds_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string kind_;
  int64_t steps_ = 0, image_size_ = 0;
  double scale_ = 2.0;
  bb::SchedulerConfig scheduler_;
  at::Tensor last_latents_;
  bool batch_invariant_ = true;
  std::map<std::string, double> seconds_;
};

// The pipelines' default number of steps for a backbone kind (the paper's: sd15 50, pixart-sigma 20; SD 2.x 50,
// PixArt 20, Flux and SD3.5 28).
int64_t default_steps(const std::string& kind);

}  // namespace gb::gen
