#pragma once
// The one noising step the paper's extractor performs (GDF FeatureExtractor.extract, spec §2.6, §3.6, §7):
// set_timesteps(1000) -> get_timesteps(1000, t/1000) -> first remaining timestep -> add_noise ->
// scale_model_input. Only the arithmetic the UNet families need: PNDM (SD1.5, leading spacing, steps_offset,
// skip_prk_steps) and Euler discrete (SDXL, leading spacing), both on a scaled_linear or linear beta schedule.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace gb::bb {

struct SchedulerConfig {  // scheduler/scheduler_config.json
  std::string class_name = "PNDMScheduler";  // or "EulerDiscreteScheduler"
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";  // or "linear"
  int64_t steps_offset = 1;
  std::string timestep_spacing = "leading";
  std::string prediction_type = "epsilon";
  bool skip_prk_steps = true;

  static SchedulerConfig sd15();   // PNDM
  static SchedulerConfig sdxl();   // Euler discrete
  static SchedulerConfig from_json(const std::string& path);
};

// fp32 ᾱ (cumprod of 1 - β), as diffusers computes it.
at::Tensor alphas_cumprod(const SchedulerConfig& c);

// The noising the paper's run applies at its nominal timestep `t` (strength t/1000 over 1000 steps).
struct NoisingPlan {
  double timestep = 0;         // the timestep fed to the UNet (SD1.5: 101 for t = 100)
  bool timestep_is_int = true; // int64 (PNDM) or fp32 (Euler) tensor
  // Euler: x = (z + σ ε) / sqrt(σ² + 1) with σ in the latent dtype for the add and fp32 for the scaling.
  // PNDM:  x = sqrt(ᾱ_t) z + sqrt(1 - ᾱ_t) ε with ᾱ_t cast to the latent dtype before the sqrt.
  bool euler = false;
  double alpha_cumprod = 0;  // ᾱ at `timestep` (fp32 value)
  double sigma = 0;          // Euler σ (fp32 value)
  // Applies the plan to z0 [B, C, h, w] with noise ε (cast to z0's dtype).
  at::Tensor apply(const at::Tensor& z0, const at::Tensor& noise) const;
};

NoisingPlan plan_noising(const SchedulerConfig& c, int64_t paper_t, int64_t num_inference_steps = 1000);

// The scheduler's timesteps after set_timesteps(num_inference_steps) (PNDM: the PLMS list incl. the duplicate).
std::vector<double> scheduler_timesteps(const SchedulerConfig& c, int64_t num_inference_steps);

}  // namespace gb::bb
