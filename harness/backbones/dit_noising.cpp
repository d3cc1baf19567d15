#include "harness/backbones/dit_noising.h"

#include "harness/backbones/json_config.h"
#include "harness/backbones/schedulers.h"
#include "harness/core/errors.h"

#include <ATen/ATen.h>

#include <cmath>

namespace gb::bb {

DpmSchedulerConfig DpmSchedulerConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  DpmSchedulerConfig c;
  std::string cls = "DPMSolverMultistepScheduler";
  json_get(j, "_class_name", cls, path);
  json_get(j, "num_train_timesteps", c.num_train_timesteps, path);
  json_get(j, "beta_start", c.beta_start, path);
  json_get(j, "beta_end", c.beta_end, path);
  json_get(j, "beta_schedule", c.beta_schedule, path);
  json_get(j, "timestep_spacing", c.timestep_spacing, path);
  json_get(j, "steps_offset", c.steps_offset, path);
  if (cls != "DPMSolverMultistepScheduler")
    fail_file(path, "scheduler '{}' is not supported for PixArt (DPMSolverMultistepScheduler)", cls);
  if (c.beta_schedule != "linear" && c.beta_schedule != "scaled_linear")
    fail_file(path, "beta_schedule '{}' is not supported", c.beta_schedule);
  if (c.timestep_spacing != "linspace")
    fail_file(path, "timestep_spacing '{}' is not supported (linspace)", c.timestep_spacing);
  for (const char* k :
       {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "rescale_betas_zero_snr"})
    if (j.contains(k) && j[k].is_boolean() && j[k].get<bool>()) fail_file(path, "{} is not supported", k);
  return c;
}

PixArtNoising plan_pixart_noising(const DpmSchedulerConfig& c, int64_t paper_t, int64_t steps) {
  if (paper_t <= 0 || paper_t > c.num_train_timesteps)
    fail("PixArt: timestep {} outside 1..{}", paper_t, c.num_train_timesteps);
  // get_timesteps: init = min(int(steps·strength), steps); t_start = steps - init.
  const double strength = static_cast<double>(paper_t) / 1000.0;
  const int64_t init = std::min<int64_t>(static_cast<int64_t>(steps * strength), steps);
  const int64_t t_start = std::max<int64_t>(steps - init, 0);
  // linspace spacing: round(linspace(0, N-1, steps+1)) reversed, last dropped.
  const double last = static_cast<double>(c.num_train_timesteps - 1);
  const int64_t idx = steps - t_start;  // position in the ascending linspace
  PixArtNoising p;
  p.timestep = static_cast<int64_t>(std::nearbyint(last * static_cast<double>(idx) / static_cast<double>(steps)));
  SchedulerConfig sc;
  sc.num_train_timesteps = c.num_train_timesteps;
  sc.beta_start = c.beta_start;
  sc.beta_end = c.beta_end;
  sc.beta_schedule = c.beta_schedule;
  at::Tensor ac = alphas_cumprod(sc);
  at::Tensor sig = ((1 - ac) / ac).pow(0.5);  // float32, as the numpy array diffusers interpolates
  p.sigma = sig[p.timestep].item<float>();
  return p;
}

at::Tensor PixArtNoising::apply(const at::Tensor& z0, const at::Tensor& noise) const {
  at::Tensor s = at::full({}, sigma, z0.options());
  at::Tensor alpha_t = 1 / (s * s + 1).pow(0.5);
  at::Tensor sigma_t = s * alpha_t;
  return alpha_t * z0 + sigma_t * noise.to(z0.scalar_type());
}

FlowMatchSchedulerConfig FlowMatchSchedulerConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  FlowMatchSchedulerConfig c;
  // Keys the file leaves out take FlowMatchEulerDiscreteScheduler's defaults (shift 1, no dynamic shifting; SD3.5's
  // config sets only the shift), not FLUX.1-dev's values.
  c.shift = 1.0;
  c.use_dynamic_shifting = false;
  std::string cls = "FlowMatchEulerDiscreteScheduler";
  json_get(j, "_class_name", cls, path);
  json_get(j, "num_train_timesteps", c.num_train_timesteps, path);
  json_get_flow_shift(j, c, path);
  if (cls != "FlowMatchEulerDiscreteScheduler")
    fail_file(path, "scheduler '{}' is not supported for a flow-matching backbone (FlowMatchEulerDiscreteScheduler)",
              cls);
  for (const char* k : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas"})
    if (j.contains(k) && j[k].is_boolean() && j[k].get<bool>()) fail_file(path, "{} is not supported", k);
  if (j.contains("shift_terminal") && !j["shift_terminal"].is_null())
    fail_file(path, "shift_terminal is not supported");
  return c;
}

FluxNoising plan_flux_noising(const FlowMatchSchedulerConfig& c, int64_t image_tokens, int64_t paper_t, int64_t steps) {
  if (steps < 1) fail("Flux: num_inference_steps must be positive");
  FluxNoising p;
  SchedulerConfig sc;  // calculate_shift and the shifted sigmas are the sampler's (schedulers.h)
  sc.base_shift = c.base_shift;
  sc.max_shift = c.max_shift;
  sc.base_image_seq_len = c.base_image_seq_len;
  sc.max_image_seq_len = c.max_image_seq_len;
  p.mu = flow_match_mu(image_tokens, sc);
  p.sigmas = flow_match_sigmas(steps, c.use_dynamic_shifting, p.mu, c.shift);
  const double strength = static_cast<double>(paper_t) / 1000.0;
  const double init = std::min(static_cast<double>(steps) * strength, static_cast<double>(steps));
  p.t_start = static_cast<int64_t>(std::max(static_cast<double>(steps) - init, 0.0));
  if (p.t_start >= steps)
    fail("Flux: strength {} over {} steps leaves no denoising step (the pipeline raises)", strength, steps);
  p.sigma = p.sigmas[p.t_start];
  p.timestep = p.sigma * static_cast<float>(c.num_train_timesteps);
  return p;
}

at::Tensor FluxNoising::apply(const at::Tensor& z, const at::Tensor& noise) const {
  at::Tensor s = at::full({}, sigma, z.options());
  return s * noise.to(z.scalar_type()) + (1.0 - s) * z;
}

at::Tensor FluxNoising::model_timestep(int64_t batch, at::ScalarType dtype, at::Device device) const {
  return at::full({batch}, timestep, at::TensorOptions().dtype(at::kFloat).device(device)).to(dtype) / 1000;
}

}  // namespace gb::bb
