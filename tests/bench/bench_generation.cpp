// One plain-CFG sampling step at SD1.5 512² shapes: the full-size SD1.5 UNet (random weights, built in memory) on
// the CFG batch [uncond, cond] (2B x 4 x 64 x 64, 77 CLIP tokens), the CFG combine and one PNDM step, each timed.
// The counters give each part's milliseconds per step and the guidance's share of the denoiser call, the baseline
// against which S-CFG's overhead (capture + masks + rate) is reported. CPU fp32 by default; GB_BENCH_DEVICE=cuda,
// GB_BENCH_DTYPE=fp16 for the paper's setting, GB_BENCH_LATENT for other sizes (64 = 512²).
#include "bench_util.h"

#include "harness/backbones/schedulers.h"
#include "harness/generation/guidance.h"

#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdlib>

namespace {

using namespace gb::bb;
using Clock = std::chrono::steady_clock;

void BM_Sd15CfgStep(benchmark::State& state) {
  c10::InferenceMode guard;
  const int64_t batch = state.range(0);
  const int64_t latent = gb::bench::env_int("GB_BENCH_LATENT", 64);
  UNet2DConditionModel& unet = gb::bench::sd15_unet();
  const auto opts = gb::bench::options();
  auto sched = make_sampling_scheduler(SchedulerConfig::sd15());
  sched->set_timesteps(50);
  gb::gen::GuidanceOptions go;
  go.backbone = "sd15";
  auto cfg = gb::gen::make_guidance("cfg", go);
  gb::gen::GuidanceStep step;
  step.count = 50;
  step.scale = 2.0;
  step.backbone = "sd15";
  at::Tensor x = at::randn({batch, 4, latent, latent}, opts);
  at::Tensor text = at::randn({2 * batch, 77, 768}, opts);
  double denoiser = 0, guidance = 0, scheduler = 0;
  for (auto _ : state) {
    if (sched->step_index() >= static_cast<int64_t>(sched->timesteps().size())) sched->set_timesteps(50);
    const double t = sched->timesteps()[static_cast<size_t>(sched->step_index())];
    auto t0 = Clock::now();
    UNetInputs in;
    in.latents = at::cat({x, x});
    in.timestep = at::full({2 * batch}, static_cast<int64_t>(t), opts.dtype(at::kLong));
    in.encoder_hidden_states = text;
    at::Tensor pred = unet.forward(in, nullptr, false);
    gb::bench::sync();
    auto t1 = Clock::now();
    auto halves = pred.chunk(2);
    gb::Capture cap;
    at::Tensor eps = cfg->combine(halves[0], halves[1], cap, step);
    gb::bench::sync();
    auto t2 = Clock::now();
    x = sched->step(eps, x);
    gb::bench::sync();
    auto t3 = Clock::now();
    denoiser += std::chrono::duration<double, std::milli>(t1 - t0).count();
    guidance += std::chrono::duration<double, std::milli>(t2 - t1).count();
    scheduler += std::chrono::duration<double, std::milli>(t3 - t2).count();
    benchmark::DoNotOptimize(x.data_ptr());
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["denoiser_ms"] = denoiser / n;
  state.counters["guidance_ms"] = guidance / n;
  state.counters["scheduler_ms"] = scheduler / n;
  state.counters["guidance_over_denoiser"] = guidance / std::max(denoiser, 1e-9);
  state.counters["latent"] = static_cast<double>(latent);
}

BENCHMARK(BM_Sd15CfgStep)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

}  // namespace
