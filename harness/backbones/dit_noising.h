#pragma once
// The one noising step the paper's pipelines apply for the DiT backbones (spec backbones.md §4.6, §5.7, §7):
//   PixArt-Sigma: DPMSolverMultistepScheduler, linspace spacing, set_timesteps(1000) -> get_timesteps(1000, t/1000)
//                 -> first remaining timestep (100 for t = 100) -> add_noise: α_t z + σ_t ε with
//                 σ = sqrt((1 - ᾱ)/ᾱ) (fp32, cast to the latent dtype), α_t = 1/sqrt(σ² + 1), σ_t = σ α_t.
//   Flux.1-dev:   FlowMatchEulerDiscreteScheduler with dynamic shifting, sigmas = linspace(1, 1/steps, steps),
//                 mu = calculate_shift(image tokens), σ' = e^mu / (e^mu + 1/σ - 1) (float32), strength t/1000 ->
//                 t_start = int(steps - steps·strength), first remaining σ' -> scale_noise: σ ε + (1 - σ) z.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gb::bb {

// scheduler/scheduler_config.json of PixArt-Sigma (DPMSolverMultistepScheduler).
struct DpmSchedulerConfig {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  std::string beta_schedule = "linear";
  std::string timestep_spacing = "linspace";
  int64_t steps_offset = 0;
  // PixArt-alpha/PixArt-Sigma-XL-2-1024-MS scheduler/scheduler_config.json (spec §0 HPS, official main blob).
  static DpmSchedulerConfig pixart_sigma() { return {}; }
  static DpmSchedulerConfig from_json(const std::string& path);
};

struct PixArtNoising {
  int64_t timestep = 0;  // fed to the transformer as int64
  float sigma = 0;       // fp32 σ at that timestep
  // x = α_t z0 + σ_t ε, with σ cast to z0's dtype and α_t, σ_t computed in it (diffusers add_noise).
  at::Tensor apply(const at::Tensor& z0, const at::Tensor& noise) const;
};
PixArtNoising plan_pixart_noising(const DpmSchedulerConfig& c, int64_t paper_t, int64_t num_inference_steps = 1000);

// scheduler/scheduler_config.json of FLUX.1-dev and SD3.5 (FlowMatchEulerDiscreteScheduler); from_json takes the
// class defaults for absent keys, flux_dev() is FLUX.1-dev's file.
struct FlowMatchSchedulerConfig {
  int64_t num_train_timesteps = 1000;
  double shift = 3.0;
  bool use_dynamic_shifting = true;
  double base_shift = 0.5;
  double max_shift = 1.15;
  int64_t base_image_seq_len = 256;
  int64_t max_image_seq_len = 4096;
  // black-forest-labs/FLUX.1-dev scheduler/scheduler_config.json (spec §0 HFX copies).
  static FlowMatchSchedulerConfig flux_dev() { return {}; }
  static FlowMatchSchedulerConfig from_json(const std::string& path);
};

struct FluxNoising {
  int64_t t_start = 0;        // begin index (23 for strength 0.15 over 28 steps)
  std::vector<float> sigmas;  // shifted sigmas of all steps (float32), without the appended 0
  float sigma = 0;            // σ' at t_start (0.40708 at 1024²)
  float timestep = 0;         // 1000 σ' (float32), as the pipeline's `t`
  double mu = 0;
  // σ ε + (1 - σ) z with σ cast to z's dtype (scale_noise).
  at::Tensor apply(const at::Tensor& z, const at::Tensor& noise) const;
  // The transformer's `timestep` input: t cast to `dtype`, then / 1000 in it, as FluxImg2ImgPipeline does.
  at::Tensor model_timestep(int64_t batch, at::ScalarType dtype, at::Device device) const;
};
// `image_tokens` = (H/16)·(W/16) for an H x W image; strength = paper_t / 1000.
FluxNoising plan_flux_noising(const FlowMatchSchedulerConfig& c, int64_t image_tokens, int64_t paper_t,
                              int64_t num_inference_steps = 28);

}  // namespace gb::bb
