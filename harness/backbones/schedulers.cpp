#include "harness/backbones/schedulers.h"

#include "harness/backbones/json_config.h"
#include "harness/core/errors.h"

#include <cmath>

namespace gb::bb {

SchedulerConfig SchedulerConfig::sd15() { return SchedulerConfig{}; }

SchedulerConfig SchedulerConfig::sdxl() {
  SchedulerConfig c;
  c.class_name = "EulerDiscreteScheduler";
  return c;
}

SchedulerConfig SchedulerConfig::from_json(const std::string& path) {
  auto j = read_json_file(path);
  SchedulerConfig c;
  json_get(j, "_class_name", c.class_name, path);
  json_get(j, "num_train_timesteps", c.num_train_timesteps, path);
  json_get(j, "beta_start", c.beta_start, path);
  json_get(j, "beta_end", c.beta_end, path);
  json_get(j, "beta_schedule", c.beta_schedule, path);
  json_get(j, "steps_offset", c.steps_offset, path);
  json_get(j, "timestep_spacing", c.timestep_spacing, path);
  json_get(j, "prediction_type", c.prediction_type, path);
  json_get(j, "skip_prk_steps", c.skip_prk_steps, path);
  if (c.class_name != "PNDMScheduler" && c.class_name != "EulerDiscreteScheduler")
    fail_file(path, "scheduler '{}' is not supported by the UNet backbones (PNDMScheduler, EulerDiscreteScheduler)",
              c.class_name);
  if (c.beta_schedule != "scaled_linear" && c.beta_schedule != "linear")
    fail_file(path, "beta_schedule '{}' is not supported", c.beta_schedule);
  if (c.timestep_spacing != "leading") fail_file(path, "timestep_spacing '{}' is not supported", c.timestep_spacing);
  if (c.class_name == "PNDMScheduler" && !c.skip_prk_steps) fail_file(path, "PNDM with PRK steps is not supported");
  for (const char* k : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "rescale_betas_zero_snr"})
    if (j.contains(k) && j[k].is_boolean() && j[k].get<bool>()) fail_file(path, "{} is not supported", k);
  if (j.contains("interpolation_type") && j["interpolation_type"] != "linear")
    fail_file(path, "interpolation_type {} is not supported", j["interpolation_type"].dump());
  return c;
}

at::Tensor alphas_cumprod(const SchedulerConfig& c) {
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor betas;
  if (c.beta_schedule == "scaled_linear")
    betas = at::linspace(std::sqrt(c.beta_start), std::sqrt(c.beta_end), c.num_train_timesteps, f32).pow(2);
  else
    betas = at::linspace(c.beta_start, c.beta_end, c.num_train_timesteps, f32);
  return at::cumprod(1.0 - betas, 0);
}

std::vector<double> scheduler_timesteps(const SchedulerConfig& c, int64_t steps) {
  const int64_t ratio = c.num_train_timesteps / steps;
  std::vector<double> base;
  for (int64_t i = 0; i < steps; ++i) base.push_back(static_cast<double>(i * ratio + c.steps_offset));
  std::vector<double> ts;
  if (c.class_name == "PNDMScheduler") {
    // plms = concat(base[:-1], base[-2], base[-1]) reversed.
    std::vector<double> plms(base.begin(), base.end() - 1);
    plms.push_back(base[base.size() - 2]);
    plms.push_back(base.back());
    ts.assign(plms.rbegin(), plms.rend());
  } else {
    ts.assign(base.rbegin(), base.rend());
  }
  return ts;
}

NoisingPlan plan_noising(const SchedulerConfig& c, int64_t paper_t, int64_t steps) {
  if (paper_t <= 0 || paper_t > c.num_train_timesteps) fail("timestep {} is outside 1..{}", paper_t, c.num_train_timesteps);
  auto ts = scheduler_timesteps(c, steps);
  // get_timesteps(steps, strength = t/1000): init = min(int(steps * strength), steps), t_start = steps - init.
  const double strength = static_cast<double>(paper_t) / 1000.0;
  const int64_t init = std::min<int64_t>(static_cast<int64_t>(static_cast<double>(steps) * strength), steps);
  const int64_t t_start = std::max<int64_t>(steps - init, 0);
  NoisingPlan p;
  p.timestep = ts.at(static_cast<size_t>(t_start));
  auto ac = alphas_cumprod(c);
  if (c.class_name == "PNDMScheduler") {
    p.timestep_is_int = true;
    p.alpha_cumprod = ac[static_cast<int64_t>(p.timestep)].item<float>();
  } else {
    p.euler = true;
    p.timestep_is_int = false;
    // sigmas = interp(timesteps, arange(N), sqrt((1-ᾱ)/ᾱ) in fp32) in float64, then stored as fp32.
    auto table = ((1.0 - ac) / ac).pow(0.5);
    const double t = p.timestep;
    const int64_t n = table.size(0);
    double s;
    if (t <= 0) {
      s = table[0].item<float>();
    } else if (t >= n - 1) {
      s = table[n - 1].item<float>();
    } else {
      auto lo = static_cast<int64_t>(std::floor(t));
      double frac = t - static_cast<double>(lo);
      double a = table[lo].item<float>(), b = table[lo + 1].item<float>();
      s = a + (b - a) * frac;
    }
    p.sigma = static_cast<double>(static_cast<float>(s));
    p.alpha_cumprod = ac[static_cast<int64_t>(t)].item<float>();
  }
  return p;
}

at::Tensor NoisingPlan::apply(const at::Tensor& z0, const at::Tensor& noise) const {
  auto eps = noise.to(z0.device(), z0.scalar_type());
  auto dt = z0.options();
  if (euler) {
    // add_noise: sigma cast to the sample dtype; scale_model_input: divide by sqrt(σ² + 1) computed in fp32.
    auto sig = at::scalar_tensor(sigma, dt.dtype(at::kFloat)).to(z0.scalar_type());
    auto x = z0 + eps * sig;
    float denom = std::sqrt(static_cast<float>(sigma) * static_cast<float>(sigma) + 1.0f);
    return x / at::scalar_tensor(denom, x.options().dtype(at::kFloat));
  }
  auto a = at::scalar_tensor(alpha_cumprod, dt.dtype(at::kFloat)).to(z0.scalar_type());
  auto sa = a.pow(0.5);
  auto sb = (1 - a).pow(0.5);
  return sa * z0 + sb * eps;
}

}  // namespace gb::bb
