#pragma once
// Schedulers (diffusers 0.32.2 schedulers/):
// 1. The one noising step the paper's extractor performs (GDF FeatureExtractor.extract, spec §2.6, §3.6, §7):
//    set_timesteps(1000) -> get_timesteps(1000, t/1000) -> first remaining timestep -> add_noise ->
//    scale_model_input, for PNDM (SD1.5) and Euler discrete (SDXL: leading spacing; SD 2.1 as GDF loads it,
//    EulerDiscreteScheduler built from the folder's PNDM/DDIM config: linspace) — plan_noising(). prediction_type
//    (epsilon, v_prediction) does not enter: add_noise and scale_model_input are the same forward process for both.
// 2. The samplers of `goca-bench generate` (SamplingScheduler): set_timesteps + step() of PNDMScheduler (PLMS with
//    skip_prk_steps), DDIMScheduler (eta 0), EulerDiscreteScheduler (s_churn 0), DPMSolverMultistepScheduler
//    (dpmsolver++, order 1-2, midpoint/heun) and FlowMatchEulerDiscreteScheduler (dynamic or fixed shift), each
//    mirroring the reference's arithmetic (fp32 0-dim coefficients, the same upcasts) so that a step is
//    bit-compatible. The discrete ones honour prediction_type (epsilon, v_prediction) in step() as diffusers does.
#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

struct SchedulerConfig {  // scheduler/scheduler_config.json
  // PNDMScheduler, DDIMScheduler, EulerDiscreteScheduler, DPMSolverMultistepScheduler,
  // FlowMatchEulerDiscreteScheduler (the capture noising supports the first and the third only).
  std::string class_name = "PNDMScheduler";
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";  // or "linear"
  int64_t steps_offset = 1;
  std::string timestep_spacing = "leading";
  std::string prediction_type = "epsilon";
  bool skip_prk_steps = true;
  // Sampling-only fields (diffusers' per-class defaults when absent from the file).
  bool set_alpha_to_one = false;              // PNDM, DDIM
  bool clip_sample = false;                   // DDIM
  double clip_sample_range = 1.0;             // DDIM
  std::string interpolation_type = "linear";  // Euler
  std::string final_sigmas_type = "zero";     // Euler, DPM
  int64_t solver_order = 2;                   // DPM
  std::string algorithm_type = "dpmsolver++";
  std::string solver_type = "midpoint";
  bool lower_order_final = true;
  bool euler_at_final = false;
  double shift = 1.0;  // FlowMatch
  bool use_dynamic_shifting = false;
  double base_shift = 0.5, max_shift = 1.15;
  int64_t base_image_seq_len = 256, max_image_seq_len = 4096;

  static SchedulerConfig sd15();  // PNDM
  static SchedulerConfig sdxl();  // Euler discrete
  // The file's values over diffusers' defaults of `class_override` (default: the file's _class_name), as
  // `OtherScheduler.from_config(pipe.scheduler.config)` does: keys the file does not set take the new class's
  // defaults. Unsupported options (karras sigmas, thresholding, PRK steps, …) are a UserError naming the file.
  static SchedulerConfig from_json(const std::string& path, const std::string& class_override = "");
};

// `--scheduler` names -> diffusers class names: pndm, ddim, euler, dpm++2m (dpmsolver++), flow-euler; a class name
// is accepted as is. UserError listing the names otherwise.
std::string scheduler_class_for(const std::string& name);
std::vector<std::string> scheduler_names();

// fp32 ᾱ (cumprod of 1 - β), as diffusers computes it.
at::Tensor alphas_cumprod(const SchedulerConfig& c);

// The noising the paper's run applies at its nominal timestep `t` (strength t/1000 over 1000 steps).
struct NoisingPlan {
  double timestep = 0;          // the timestep fed to the UNet (SD1.5: 101 for t = 100)
  bool timestep_is_int = true;  // int64 (PNDM) or fp32 (Euler) tensor
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

// A sampler as the pipelines drive it: set_timesteps(N), latents *= init_noise_sigma(), then per step i:
// x_in = scale_model_input(x), model(x_in, timesteps()[i]), x = step(model_output, x). State (PLMS history,
// DPM model outputs, step index) lives in the object; one object per batch.
class SamplingScheduler {
 public:
  virtual ~SamplingScheduler() = default;
  const SchedulerConfig& config() const { return config_; }
  // `mu`: the resolution shift of FlowMatch with use_dynamic_shifting (FluxPipeline's calculate_shift); ignored
  // by the others. FlowMatch takes the pipeline's sigmas = linspace(1, 1/N, N).
  virtual void set_timesteps(int64_t num_inference_steps, double mu = 0) = 0;
  // set_timesteps(sigmas=...) with the final (already shifted) sigmas, as SD3's sampler gets them from
  // flow_match_default_sigmas; flow matching only (std::logic_error otherwise).
  virtual void set_sigmas(std::vector<float> sigmas);
  const std::vector<double>& timesteps() const { return timesteps_; }
  bool integer_timesteps() const { return integer_timesteps_; }  // int64 (PNDM, DDIM, DPM) or fp32 (Euler, flow)
  // Initial-noise scale as an fp32 0-dim tensor (1 for all but Euler).
  virtual at::Tensor init_noise_sigma() const;
  // Input scaling at the current step (Euler: x / sqrt(σ² + 1); identity for the others).
  virtual at::Tensor scale_model_input(const at::Tensor& sample) const { return sample; }
  // One step at the current index; advances it. Returns the previous sample in model_output's dtype.
  virtual at::Tensor step(const at::Tensor& model_output, const at::Tensor& sample) = 0;
  int64_t step_index() const { return step_index_; }
  // The fp32 σ table (Euler, DPM, flow; with the final entry), empty for the others.
  const std::vector<float>& sigmas() const { return sigmas_; }

 protected:
  explicit SamplingScheduler(SchedulerConfig c) : config_(std::move(c)) {}
  SchedulerConfig config_;
  std::vector<double> timesteps_;
  std::vector<float> sigmas_;
  bool integer_timesteps_ = true;
  int64_t step_index_ = 0;
};

std::unique_ptr<SamplingScheduler> make_sampling_scheduler(const SchedulerConfig& c);

// FluxPipeline's calculate_shift from the config's base/max shift and sequence lengths.
double flow_match_mu(int64_t image_seq_len, const SchedulerConfig& c);
// The flow-matching sigmas of N steps (without the appended 0): linspace(1, 1/N, N) as float32, then
// time_shift(mu) = e^mu / (e^mu + 1/σ - 1) (dynamic) or shift·σ / (1 + (shift - 1) σ), in float32.
std::vector<float> flow_match_sigmas(int64_t steps, bool dynamic, double mu, double shift);
// FlowMatchEulerDiscreteScheduler.set_timesteps(N) without sigmas and with a fixed shift (the SD3 pipelines):
// np.linspace between the shifted training sigmas' ends (as timesteps), / N_train, shifted again, as float32.
std::vector<float> flow_match_default_sigmas(int64_t steps, int64_t num_train_timesteps, double shift);

}  // namespace gb::bb
