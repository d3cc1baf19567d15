#include "harness/backbones/schedulers.h"

#include "harness/backbones/json_config.h"
#include "harness/core/errors.h"

#include <fmt/ranges.h>

#include <cmath>

namespace gb::bb {

SchedulerConfig SchedulerConfig::sd15() { return SchedulerConfig{}; }

SchedulerConfig SchedulerConfig::sdxl() {
  SchedulerConfig c;
  c.class_name = "EulerDiscreteScheduler";
  return c;
}

namespace {

const std::vector<std::pair<std::string, std::string>>& scheduler_table() {
  static const std::vector<std::pair<std::string, std::string>> t = {{"pndm", "PNDMScheduler"},
                                                                     {"ddim", "DDIMScheduler"},
                                                                     {"euler", "EulerDiscreteScheduler"},
                                                                     {"dpm++2m", "DPMSolverMultistepScheduler"},
                                                                     {"flow-euler", "FlowMatchEulerDiscreteScheduler"}};
  return t;
}

bool known_class(const std::string& c) {
  for (const auto& [n, cls] : scheduler_table())
    if (cls == c) return true;
  return false;
}

}  // namespace

std::vector<std::string> scheduler_names() {
  std::vector<std::string> out;
  for (const auto& [n, cls] : scheduler_table()) out.push_back(n);
  return out;
}

std::string scheduler_class_for(const std::string& name) {
  for (const auto& [n, cls] : scheduler_table())
    if (n == name || cls == name) return cls;
  fail("unknown scheduler '{}' (known: {})", name, fmt::join(scheduler_names(), ", "));
}

SchedulerConfig SchedulerConfig::from_json(const std::string& path, const std::string& class_override) {
  auto j = read_json_file(path);
  std::string file_class = "PNDMScheduler";
  json_get(j, "_class_name", file_class, path);
  SchedulerConfig c;
  c.class_name = class_override.empty() ? file_class : class_override;
  if (!known_class(c.class_name))
    fail_file(path,
              "scheduler '{}' is not supported (PNDMScheduler, DDIMScheduler, EulerDiscreteScheduler, "
              "DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler)",
              c.class_name);
  // from_config drops the values the original class only had as its own defaults.
  if (c.class_name != file_class && j.contains("_use_default_values") && j["_use_default_values"].is_array())
    for (const auto& k : j["_use_default_values"])
      if (k.is_string()) j.erase(k.get<std::string>());
  // diffusers 0.32.2 __init__ defaults of the class.
  const std::string& k = c.class_name;
  c.beta_start = 0.0001;
  c.beta_end = 0.02;
  c.beta_schedule = "linear";
  c.steps_offset = 0;
  c.prediction_type = "epsilon";
  c.skip_prk_steps = false;
  c.set_alpha_to_one = k == "DDIMScheduler";
  c.clip_sample = k == "DDIMScheduler";
  c.timestep_spacing = (k == "PNDMScheduler" || k == "DDIMScheduler") ? "leading" : "linspace";
  json_get(j, "num_train_timesteps", c.num_train_timesteps, path);
  json_get(j, "beta_start", c.beta_start, path);
  json_get(j, "beta_end", c.beta_end, path);
  json_get(j, "beta_schedule", c.beta_schedule, path);
  json_get(j, "steps_offset", c.steps_offset, path);
  json_get(j, "timestep_spacing", c.timestep_spacing, path);
  json_get(j, "prediction_type", c.prediction_type, path);
  json_get(j, "skip_prk_steps", c.skip_prk_steps, path);
  json_get(j, "set_alpha_to_one", c.set_alpha_to_one, path);
  json_get(j, "clip_sample", c.clip_sample, path);
  json_get(j, "clip_sample_range", c.clip_sample_range, path);
  json_get(j, "interpolation_type", c.interpolation_type, path);
  json_get(j, "final_sigmas_type", c.final_sigmas_type, path);
  json_get(j, "solver_order", c.solver_order, path);
  json_get(j, "algorithm_type", c.algorithm_type, path);
  json_get(j, "solver_type", c.solver_type, path);
  json_get(j, "lower_order_final", c.lower_order_final, path);
  json_get(j, "euler_at_final", c.euler_at_final, path);
  json_get_flow_shift(j, c, path);
  if (c.beta_schedule != "scaled_linear" && c.beta_schedule != "linear")
    fail_file(path, "beta_schedule '{}' is not supported", c.beta_schedule);
  if (c.timestep_spacing != "leading" && c.timestep_spacing != "linspace" && c.timestep_spacing != "trailing")
    fail_file(path, "timestep_spacing '{}' is not supported", c.timestep_spacing);
  if (k == "PNDMScheduler" && !c.skip_prk_steps) fail_file(path, "PNDM with PRK steps is not supported");
  // v_prediction (SD 2.1 768-v) is read for the capture noising, where it does not enter (add_noise and
  // scale_model_input are the same forward process); the samplers refuse it (make_sampling_scheduler).
  if (k != "FlowMatchEulerDiscreteScheduler" && c.prediction_type != "epsilon" && c.prediction_type != "v_prediction")
    fail_file(path, "prediction_type '{}' is not supported (epsilon, v_prediction)", c.prediction_type);
  if (k == "DPMSolverMultistepScheduler") {
    if (c.algorithm_type != "dpmsolver++")
      fail_file(path, "algorithm_type '{}' is not supported (dpmsolver++)", c.algorithm_type);
    if (c.solver_order != 1 && c.solver_order != 2)
      fail_file(path, "solver_order {} is not supported (1, 2)", c.solver_order);
    if (c.solver_type != "midpoint" && c.solver_type != "heun")
      fail_file(path, "solver_type '{}' is not supported", c.solver_type);
    if (j.contains("variance_type") && !j["variance_type"].is_null()) fail_file(path, "variance_type is not supported");
    if (j.contains("lambda_min_clipped") && j["lambda_min_clipped"].is_number())
      fail_file(path, "a finite lambda_min_clipped is not supported");
  }
  if (c.final_sigmas_type != "zero" && c.final_sigmas_type != "sigma_min")
    fail_file(path, "final_sigmas_type '{}' is not supported", c.final_sigmas_type);
  if (c.interpolation_type != "linear")
    fail_file(path, "interpolation_type '{}' is not supported", c.interpolation_type);
  for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "rescale_betas_zero_snr",
                          "thresholding", "use_lu_lambdas", "use_flow_sigmas", "invert_sigmas"})
    if (j.contains(key) && j[key].is_boolean() && j[key].get<bool>()) fail_file(path, "{} is not supported", key);
  if (j.contains("timestep_type") && j["timestep_type"] != "discrete")
    fail_file(path, "timestep_type {} is not supported", j["timestep_type"].dump());
  if (j.contains("shift_terminal") && !j["shift_terminal"].is_null())
    fail_file(path, "shift_terminal is not supported");
  if (j.contains("trained_betas") && !j["trained_betas"].is_null()) fail_file(path, "trained_betas is not supported");
  return c;
}

at::Tensor alphas_cumprod(const SchedulerConfig& c) {
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor betas;
  if (c.beta_schedule == "scaled_linear")
    betas = at::linspace(std::sqrt(c.beta_start), std::sqrt(c.beta_end), c.num_train_timesteps, f32).pow(2);
  else betas = at::linspace(c.beta_start, c.beta_end, c.num_train_timesteps, f32);
  return at::cumprod(1.0 - betas, 0);
}

namespace {
std::vector<double> np_linspace(double start, double stop, int64_t num);  // below, with the samplers
}  // namespace

std::vector<double> scheduler_timesteps(const SchedulerConfig& c, int64_t steps) {
  if (c.class_name == "EulerDiscreteScheduler" && c.timestep_spacing == "linspace") {
    // np.linspace(0, N - 1, steps, dtype=float32)[::-1] (SD 2.1 as GDF loads it).
    auto lin = np_linspace(0, static_cast<double>(c.num_train_timesteps - 1), steps);
    std::vector<double> ts;
    for (auto it = lin.rbegin(); it != lin.rend(); ++it) ts.push_back(static_cast<double>(static_cast<float>(*it)));
    return ts;
  }
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
  if (c.class_name != "PNDMScheduler" && c.class_name != "EulerDiscreteScheduler")
    fail(
        "scheduler '{}' is not supported by the UNet backbones' capture noising (PNDMScheduler, "
        "EulerDiscreteScheduler)",
        c.class_name);
  if (c.timestep_spacing != "leading" &&
      !(c.timestep_spacing == "linspace" && c.class_name == "EulerDiscreteScheduler"))
    fail("timestep_spacing '{}' is not supported by the capture noising (leading; linspace with Euler)",
         c.timestep_spacing);
  if (paper_t <= 0 || paper_t > c.num_train_timesteps)
    fail("timestep {} is outside 1..{}", paper_t, c.num_train_timesteps);
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

// ---------------------------------------------------------------------------------------------------------------
// Sampling schedulers. Coefficients are fp32 0-dim tensors combined with the same ATen ops in the same order as
// diffusers 0.32.2, so dtype promotion and rounding follow the reference.
namespace gb::bb {

namespace {

at::Tensor f32(double v) { return at::scalar_tensor(v, at::TensorOptions().dtype(at::kFloat)); }

// np.linspace(start, stop, num) in float64: i * ((stop - start) / (num - 1)) + start, the last one = stop.
std::vector<double> np_linspace(double start, double stop, int64_t num) {
  std::vector<double> y;
  if (num <= 0) return y;
  const double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  for (int64_t i = 0; i < num; ++i) y.push_back(static_cast<double>(i) * step + start);
  if (num > 1) y.back() = stop;
  return y;
}

// np.arange(start, stop, step) for a negative float step.
std::vector<double> np_arange_down(double start, double stop, double step) {
  std::vector<double> y;
  const auto n = static_cast<int64_t>(std::ceil((stop - start) / step));
  for (int64_t i = 0; i < n; ++i) y.push_back(start + static_cast<double>(i) * step);
  return y;
}

double np_round(double v) { return std::nearbyint(v); }  // half to even, as numpy

// The discrete timestep lists of PNDM / DDIM / Euler / DPM for `n` steps, as doubles (descending).
std::vector<double> spaced_timesteps(const SchedulerConfig& c, int64_t n, bool float32) {
  const int64_t T = c.num_train_timesteps;
  std::vector<double> ts;
  if (c.timestep_spacing == "leading") {
    const int64_t ratio = T / n;
    for (int64_t i = n - 1; i >= 0; --i) ts.push_back(static_cast<double>(i * ratio + c.steps_offset));
  } else if (c.timestep_spacing == "linspace") {
    auto lin = np_linspace(0, static_cast<double>(T - 1), n);
    for (auto it = lin.rbegin(); it != lin.rend(); ++it)
      ts.push_back(float32 ? static_cast<double>(static_cast<float>(*it)) : np_round(*it));
  } else {  // trailing
    for (double v : np_arange_down(static_cast<double>(T), 0.0, -static_cast<double>(T) / static_cast<double>(n)))
      ts.push_back(np_round(v) - 1);
  }
  return ts;
}

// fp32 sqrt((1 - ᾱ)/ᾱ) table.
std::vector<float> sigma_table(const SchedulerConfig& c) {
  auto ac = alphas_cumprod(c);
  auto s = ((1 - ac) / ac).pow(0.5).contiguous();
  return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
}

// np.interp(x, arange(len(fp)), fp) in float64.
double np_interp_index(double x, const std::vector<float>& fp) {
  const auto n = static_cast<int64_t>(fp.size());
  if (x <= 0) return fp[0];
  if (x >= static_cast<double>(n - 1)) return fp[static_cast<size_t>(n - 1)];
  const auto j = static_cast<int64_t>(std::floor(x));
  const double slope = (static_cast<double>(fp[j + 1]) - static_cast<double>(fp[j])) / 1.0;
  return slope * (x - static_cast<double>(j)) + static_cast<double>(fp[j]);
}

float final_sigma(const SchedulerConfig& c) {
  if (c.final_sigmas_type == "zero") return 0.0f;
  auto ac = alphas_cumprod(c);
  return ((1 - ac[0]) / ac[0]).pow(0.5).item<float>();
}

// index_for_timestep at the first step: the second occurrence when the first timestep is duplicated.
int64_t begin_index(const std::vector<double>& ts) {
  if (ts.empty()) return 0;
  return std::count(ts.begin(), ts.end(), ts[0]) > 1 ? 1 : 0;
}

// The ᾱ samplers stepping by num_train_timesteps / n (PNDM, DDIM): ᾱ, the value past the last step (1 with
// set_alpha_to_one, else ᾱ_0), the v-prediction switch and the checked step count.
class AlphaStepSampler : public SamplingScheduler {
 protected:
  AlphaStepSampler(SchedulerConfig c, const char* name) : SamplingScheduler(std::move(c)), name_(name) {
    v_ = config_.prediction_type == "v_prediction";
    ac_ = alphas_cumprod(config_);
    final_ = config_.set_alpha_to_one ? f32(1.0) : ac_[0];
  }
  void set_step_count(int64_t n) {
    if (n < 1 || n > config_.num_train_timesteps)
      fail("{}: {} steps outside 1..{}", name_, n, config_.num_train_timesteps);
    n_ = n;
  }

  const char* name_;
  at::Tensor ac_, final_;
  int64_t n_ = 1;
  bool v_ = false;
};

class PndmSampler : public AlphaStepSampler {
 public:
  explicit PndmSampler(SchedulerConfig c) : AlphaStepSampler(std::move(c), "PNDM") {}
  void set_timesteps(int64_t n, double) override {
    set_step_count(n);
    auto desc = spaced_timesteps(config_, n, false);
    std::vector<double> base(desc.rbegin(), desc.rend());  // ascending _timesteps
    std::vector<double> plms(base.begin(), base.end() - 1);
    if (base.size() >= 2) plms.push_back(base[base.size() - 2]);
    plms.push_back(base.back());
    timesteps_.assign(plms.rbegin(), plms.rend());
    integer_timesteps_ = true;
    ets_.clear();
    counter_ = 0;
    cur_sample_ = at::Tensor();
    step_index_ = 0;
  }
  at::Tensor step(const at::Tensor& model_output_in, const at::Tensor& sample_in) override {
    if (step_index_ >= static_cast<int64_t>(timesteps_.size())) throw std::logic_error("PNDM: step past the end");
    const int64_t ratio = config_.num_train_timesteps / n_;
    auto timestep = static_cast<int64_t>(timesteps_[static_cast<size_t>(step_index_)]);
    int64_t prev_timestep = timestep - ratio;
    at::Tensor model_output = model_output_in, sample = sample_in;
    if (counter_ != 1) {
      if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
      ets_.push_back(model_output);
    } else {
      prev_timestep = timestep;
      timestep = timestep + ratio;
    }
    const size_t e = ets_.size();
    if (e == 1 && counter_ == 0) {
      cur_sample_ = sample;
    } else if (e == 1 && counter_ == 1) {
      model_output = (model_output + ets_[e - 1]) / 2;
      sample = cur_sample_;
      cur_sample_ = at::Tensor();
    } else if (e == 2) {
      model_output = (3 * ets_[e - 1] - ets_[e - 2]) / 2;
    } else if (e == 3) {
      model_output = (23 * ets_[e - 1] - 16 * ets_[e - 2] + 5 * ets_[e - 3]) / 12;
    } else {
      model_output = (1.0 / 24) * (55 * ets_[e - 1] - 59 * ets_[e - 2] + 37 * ets_[e - 3] - 9 * ets_[e - 4]);
    }
    // _get_prev_sample (formula (9) of PNDM).
    at::Tensor a_t = ac_[timestep];
    at::Tensor a_prev = prev_timestep >= 0 ? ac_[prev_timestep] : final_;
    at::Tensor b_t = 1 - a_t;
    at::Tensor b_prev = 1 - a_prev;
    // v_prediction: ε = √ᾱ_t v + √(1 − ᾱ_t) x_t on the combined PLMS output and the sample this step uses.
    if (v_) model_output = a_t.pow(0.5) * model_output + b_t.pow(0.5) * sample;
    at::Tensor sample_coeff = (a_prev / a_t).pow(0.5);
    at::Tensor denom = a_t * b_prev.pow(0.5) + (a_t * b_t * a_prev).pow(0.5);
    at::Tensor prev = sample_coeff * sample - (a_prev - a_t) * model_output / denom;
    ++counter_;
    ++step_index_;
    return prev;
  }

 private:
  at::Tensor cur_sample_;
  std::vector<at::Tensor> ets_;
  int64_t counter_ = 0;
};

class DdimSampler : public AlphaStepSampler {
 public:
  explicit DdimSampler(SchedulerConfig c) : AlphaStepSampler(std::move(c), "DDIM") {}
  void set_timesteps(int64_t n, double) override {
    set_step_count(n);
    timesteps_ = spaced_timesteps(config_, n, false);
    integer_timesteps_ = true;
    step_index_ = 0;
  }
  at::Tensor step(const at::Tensor& model_output, const at::Tensor& sample) override {
    // eta = 0 (the pipelines' default): no variance noise.
    const auto timestep = static_cast<int64_t>(timesteps_.at(static_cast<size_t>(step_index_)));
    const int64_t prev_timestep = timestep - config_.num_train_timesteps / n_;
    at::Tensor a_t = ac_[timestep];
    at::Tensor a_prev = prev_timestep >= 0 ? ac_[prev_timestep] : final_;
    at::Tensor b_t = 1 - a_t;
    at::Tensor x0, eps = model_output;
    if (v_) {
      x0 = a_t.pow(0.5) * sample - b_t.pow(0.5) * model_output;
      eps = a_t.pow(0.5) * model_output + b_t.pow(0.5) * sample;
    } else {
      x0 = (sample - b_t.pow(0.5) * model_output) / a_t.pow(0.5);
    }
    if (config_.clip_sample) x0 = x0.clamp(-config_.clip_sample_range, config_.clip_sample_range);
    at::Tensor b_prev = 1 - a_prev;
    at::Tensor variance = (b_prev / b_t) * (1 - a_t / a_prev);
    at::Tensor std_dev_t = 0.0 * variance.pow(0.5);
    at::Tensor direction = (1 - a_prev - std_dev_t.pow(2)).pow(0.5) * eps;
    ++step_index_;
    return a_prev.pow(0.5) * x0 + direction;
  }
};

class EulerSampler : public SamplingScheduler {
 public:
  explicit EulerSampler(SchedulerConfig c) : SamplingScheduler(std::move(c)) {}
  void set_timesteps(int64_t n, double) override {
    if (n < 1) fail("Euler: {} steps", n);
    auto ts = spaced_timesteps(config_, n, true);
    timesteps_.clear();
    for (double t : ts) timesteps_.push_back(static_cast<double>(static_cast<float>(t)));
    const auto table = sigma_table(config_);
    sigmas_.clear();
    for (double t : timesteps_) sigmas_.push_back(static_cast<float>(np_interp_index(t, table)));
    sigmas_.push_back(final_sigma(config_));
    integer_timesteps_ = false;
    step_index_ = begin_index(timesteps_);
  }
  at::Tensor init_noise_sigma() const override {
    at::Tensor mx = f32(*std::max_element(sigmas_.begin(), sigmas_.end()));
    if (config_.timestep_spacing == "linspace" || config_.timestep_spacing == "trailing") return mx;
    return (mx.pow(2) + 1).pow(0.5);
  }
  at::Tensor scale_model_input(const at::Tensor& sample) const override {
    at::Tensor sigma = f32(sigmas_.at(static_cast<size_t>(step_index_)));
    return sample / (sigma.pow(2) + 1).pow(0.5);
  }
  at::Tensor step(const at::Tensor& model_output, const at::Tensor& sample_in) override {
    at::Tensor sample = sample_in.to(at::kFloat);
    at::Tensor sigma = f32(sigmas_.at(static_cast<size_t>(step_index_)));
    at::Tensor sigma_hat = sigma * (0.0 + 1);  // s_churn = 0: gamma = 0
    // v_prediction: denoised = model_output · c_out + input · c_skip.
    at::Tensor x0 = config_.prediction_type == "v_prediction"
                        ? model_output * (-sigma / (sigma.pow(2) + 1).pow(0.5)) + (sample / (sigma.pow(2) + 1))
                        : sample - sigma_hat * model_output;
    at::Tensor derivative = (sample - x0) / sigma_hat;
    at::Tensor dt = f32(sigmas_.at(static_cast<size_t>(step_index_ + 1))) - sigma_hat;
    at::Tensor prev = sample + derivative * dt;
    ++step_index_;
    return prev.to(model_output.scalar_type());
  }
};

class DpmSampler : public SamplingScheduler {
 public:
  explicit DpmSampler(SchedulerConfig c) : SamplingScheduler(std::move(c)) {}
  void set_timesteps(int64_t n, double) override {
    if (n < 1) fail("DPM-Solver++: {} steps", n);
    const int64_t T = config_.num_train_timesteps;  // lambda_min_clipped = -inf: last_timestep = T
    std::vector<double> ts;
    if (config_.timestep_spacing == "linspace") {
      auto lin = np_linspace(0, static_cast<double>(T - 1), n + 1);
      for (int64_t i = n; i >= 1; --i) ts.push_back(np_round(lin[static_cast<size_t>(i)]));
    } else if (config_.timestep_spacing == "leading") {
      const int64_t ratio = T / (n + 1);
      for (int64_t i = n; i >= 1; --i) ts.push_back(static_cast<double>(i * ratio + config_.steps_offset));
    } else {
      auto ar = np_arange_down(static_cast<double>(T), 0.0, -static_cast<double>(T) / static_cast<double>(n));
      for (double v : ar) ts.push_back(np_round(v) - 1);
    }
    timesteps_ = ts;
    const auto table = sigma_table(config_);
    sigmas_.clear();
    for (double t : timesteps_) sigmas_.push_back(static_cast<float>(np_interp_index(t, table)));
    sigmas_.push_back(final_sigma(config_));
    integer_timesteps_ = true;
    outputs_.assign(static_cast<size_t>(config_.solver_order), at::Tensor());
    lower_order_nums_ = 0;
    step_index_ = begin_index(timesteps_);
  }
  at::Tensor step(const at::Tensor& model_output_in, const at::Tensor& sample_in) override {
    const auto n = static_cast<int64_t>(timesteps_.size());
    const int64_t i = step_index_;
    const bool lower_order_final = i == n - 1 && (config_.euler_at_final || (config_.lower_order_final && n < 15) ||
                                                  config_.final_sigmas_type == "zero");
    const bool lower_order_second = i == n - 2 && config_.lower_order_final && n < 15;
    // convert_model_output (dpmsolver++): epsilon x0 = (sample - σ_t ε) / α_t, v_prediction x0 = α_t sample - σ_t v,
    // on the un-upcast sample.
    auto [alpha_s0, sigma_s0] = alpha_sigma(i);
    at::Tensor m = config_.prediction_type == "v_prediction" ? alpha_s0 * sample_in - sigma_s0 * model_output_in
                                                             : (sample_in - sigma_s0 * model_output_in) / alpha_s0;
    for (size_t k = 0; k + 1 < outputs_.size(); ++k) outputs_[k] = outputs_[k + 1];
    outputs_.back() = m;
    at::Tensor sample = sample_in.to(at::kFloat);
    auto [alpha_t, sigma_t] = alpha_sigma(i + 1);
    at::Tensor lambda_t = at::log(alpha_t) - at::log(sigma_t);
    at::Tensor lambda_s0 = at::log(alpha_s0) - at::log(sigma_s0);
    at::Tensor h = lambda_t - lambda_s0;
    at::Tensor prev;
    if (config_.solver_order == 1 || lower_order_nums_ < 1 || lower_order_final) {
      prev = (sigma_t / sigma_s0) * sample - (alpha_t * (at::exp(-h) - 1.0)) * m;
    } else {
      (void)lower_order_second;  // order 2 is the highest supported: second order either way
      auto [alpha_s1, sigma_s1] = alpha_sigma(i - 1);
      at::Tensor lambda_s1 = at::log(alpha_s1) - at::log(sigma_s1);
      const at::Tensor& m0 = outputs_[outputs_.size() - 1];
      const at::Tensor& m1 = outputs_[outputs_.size() - 2];
      at::Tensor h0 = lambda_s0 - lambda_s1;
      at::Tensor r0 = h0 / h;
      at::Tensor d1 = (1.0 / r0) * (m0 - m1);
      if (config_.solver_type == "midpoint") {
        prev = (sigma_t / sigma_s0) * sample - (alpha_t * (at::exp(-h) - 1.0)) * m0 -
               0.5 * (alpha_t * (at::exp(-h) - 1.0)) * d1;
      } else {  // heun
        prev = (sigma_t / sigma_s0) * sample - (alpha_t * (at::exp(-h) - 1.0)) * m0 +
               (alpha_t * ((at::exp(-h) - 1.0) / h + 1.0)) * d1;
      }
    }
    if (lower_order_nums_ < config_.solver_order) ++lower_order_nums_;
    ++step_index_;
    return prev.to(m.scalar_type());
  }

 private:
  // _sigma_to_alpha_sigma_t: α = 1 / sqrt(σ² + 1) (Python's 1 / tensor is reciprocal · 1), σ_t = σ α.
  std::pair<at::Tensor, at::Tensor> alpha_sigma(int64_t idx) const {
    at::Tensor s = f32(sigmas_.at(static_cast<size_t>(idx)));
    at::Tensor a = at::reciprocal((s.pow(2) + 1).pow(0.5)) * 1;
    return {a, s * a};
  }
  std::vector<at::Tensor> outputs_;
  int64_t lower_order_nums_ = 0;
};

class FlowMatchSampler : public SamplingScheduler {
 public:
  explicit FlowMatchSampler(SchedulerConfig c) : SamplingScheduler(std::move(c)) {}
  void set_timesteps(int64_t n, double mu) override {
    if (n < 1) fail("FlowMatch: {} steps", n);
    set_sigmas(flow_match_sigmas(n, config_.use_dynamic_shifting, mu, config_.shift));
  }
  void set_sigmas(std::vector<float> sigmas) override {
    if (sigmas.empty()) fail("FlowMatch: no sigmas");
    sigmas_ = std::move(sigmas);
    timesteps_.clear();
    for (float s : sigmas_)
      timesteps_.push_back(static_cast<double>(s * static_cast<float>(config_.num_train_timesteps)));
    sigmas_.push_back(0.0f);
    integer_timesteps_ = false;
    step_index_ = begin_index(timesteps_);
  }
  at::Tensor step(const at::Tensor& model_output, const at::Tensor& sample_in) override {
    at::Tensor sample = sample_in.to(at::kFloat);
    at::Tensor sigma = f32(sigmas_.at(static_cast<size_t>(step_index_)));
    at::Tensor sigma_next = f32(sigmas_.at(static_cast<size_t>(step_index_ + 1)));
    at::Tensor prev = sample + (sigma_next - sigma) * model_output;
    ++step_index_;
    return prev.to(model_output.scalar_type());
  }
};

}  // namespace

at::Tensor SamplingScheduler::init_noise_sigma() const { return f32(1.0); }

void SamplingScheduler::set_sigmas(std::vector<float>) {
  throw std::logic_error(config_.class_name + " takes no sigmas (flow matching only)");
}

std::vector<float> flow_match_default_sigmas(int64_t steps, int64_t num_train_timesteps, double shift) {
  if (steps < 1) fail("FlowMatch: {} steps", steps);
  const int64_t n = num_train_timesteps;
  const float shift_f = static_cast<float>(shift);
  // __init__: sigmas = shift·s / (1 + (shift − 1)·s) on s = linspace(1, N, N)[::-1] / N, all float32.
  auto train_sigma = [&](int64_t t) {
    const float s = static_cast<float>(t) / static_cast<float>(n);
    return shift_f * s / (1.0f + (shift_f - 1.0f) * s);
  };
  const double sigma_max = train_sigma(n), sigma_min = train_sigma(1);
  // set_timesteps: np.linspace(σmax·N, σmin·N, steps) / N, shifted again in float64, stored as float32.
  std::vector<float> out;
  const auto lin = np_linspace(sigma_max * static_cast<double>(n), sigma_min * static_cast<double>(n), steps);
  for (double t : lin) {
    const double s = t / static_cast<double>(n);
    out.push_back(static_cast<float>(shift * s / (1.0 + (shift - 1.0) * s)));
  }
  return out;
}

double flow_match_mu(int64_t image_seq_len, const SchedulerConfig& c) {
  const double m = (c.max_shift - c.base_shift) / static_cast<double>(c.max_image_seq_len - c.base_image_seq_len);
  const double b = c.base_shift - m * static_cast<double>(c.base_image_seq_len);
  return static_cast<double>(image_seq_len) * m + b;
}

std::vector<float> flow_match_sigmas(int64_t steps, bool dynamic, double mu, double shift) {
  std::vector<float> out;
  const float emu = static_cast<float>(std::exp(mu));
  const auto lin = np_linspace(1.0, 1.0 / static_cast<double>(steps), steps);
  for (int64_t i = 0; i < steps; ++i) {
    float s = static_cast<float>(lin[static_cast<size_t>(i)]);  // np.linspace(1, 1/N, N) in float64 -> float32
    if (dynamic) {
      s = emu / (emu + (1.0f / s - 1.0f));  // time_shift(mu, 1, σ) in float32, as numpy on a float32 array
    } else {
      const float sh = static_cast<float>(shift);
      s = sh * s / (1.0f + (sh - 1.0f) * s);
    }
    out.push_back(s);
  }
  return out;
}

std::unique_ptr<SamplingScheduler> make_sampling_scheduler(const SchedulerConfig& c) {
  if (c.class_name == "PNDMScheduler") return std::make_unique<PndmSampler>(c);
  if (c.class_name == "DDIMScheduler") return std::make_unique<DdimSampler>(c);
  if (c.class_name == "EulerDiscreteScheduler") return std::make_unique<EulerSampler>(c);
  if (c.class_name == "DPMSolverMultistepScheduler") return std::make_unique<DpmSampler>(c);
  if (c.class_name == "FlowMatchEulerDiscreteScheduler") return std::make_unique<FlowMatchSampler>(c);
  fail("scheduler '{}' has no sampler", c.class_name);
}

}  // namespace gb::bb
