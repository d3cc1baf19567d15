// One S-CFG step (capture + masks + rate + combine) beside one plain CFG step, on the full SD1.5 UNet (random
// weights, built in memory) with the CFG batch [uncond, cond] of one prompt, and the S-CFG post-processing alone
// (masks + rate on the step's capture). The capture set is the sd15/scfg preset's (configs/methods/sd15/scfg.yaml).
// Overhead of S-CFG = (ScfgStep - CfgStep) / CfgStep, the CFG step being one denoiser call plus the combine.
// CPU fp32 by default; GB_BENCH_DEVICE=cuda, GB_BENCH_DTYPE=fp16 for the paper's setting on a GPU.
// GB_BENCH_LATENT (default 64 = the paper's 512²) sets the latent side.
#include "bench_util.h"

#include "baselines/presets.h"
#include "goca/segmentor.h"
#include "harness/backbones/recorder.h"
#include "harness/generation/scfg.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <cstdlib>
#include <memory>

namespace {

using namespace gb::bb;

struct Setup {
  at::Device dev{at::kCPU};
  at::ScalarType dt = at::kFloat;
  int64_t latent = 64;
  UNet2DConditionModel* unet = nullptr;
  std::unique_ptr<gb::goca::Segmentor> seg;
  UNetInputs in;
  gb::gen::ScfgTokens tokens;
  double scale = 2.0;
};

Setup& setup() {
  static Setup s = [] {
    Setup s;
    s.dev = gb::bench::device();
    s.dt = gb::bench::dtype();
    s.latent = gb::bench::env_int("GB_BENCH_LATENT", 64);
    s.unet = &gb::bench::sd15_unet();
    s.seg = std::make_unique<gb::goca::Segmentor>(gb::baselines::find_preset("sd15", "scfg").plan.method);
    auto opts = at::TensorOptions().dtype(s.dt).device(s.dev);
    s.in.latents = at::randn({2, 4, s.latent, s.latent}, opts);  // the CFG batch of one prompt
    s.in.timestep = at::full({2}, 501, at::TensorOptions().dtype(at::kLong).device(s.dev));
    s.in.encoder_hidden_states = at::randn({2, 77, 768}, opts);
    for (int64_t t = 1; t <= 12; ++t) s.tokens.rescaling.push_back(t);  // a 12-token caption
    return s;
  }();
  return s;
}

at::Tensor cfg_combine(const at::Tensor& eps, double scale) {
  auto u = eps.narrow(0, 0, 1), c = eps.narrow(0, 1, 1);
  return u + (c - u) * scale;
}

gb::Capture capture_step(Setup& s, at::Tensor& eps) {
  gb::Capture cap;
  const gb::CaptureSpec spec = s.seg->required_capture();  // the recorder keeps a reference: it must outlive it
  CaptureRecorder rec(spec, cap);
  eps = s.unet->forward(s.in, &rec, false);
  cap.batch_size = 2;
  return cap;
}

at::Tensor scfg_post(Setup& s, const gb::Capture& cap, const at::Tensor& eps) {
  auto masks = gb::gen::scfg_masks(*s.seg, cap.sample(0), cap.sample(1), s.tokens);
  auto u = eps.narrow(0, 0, 1), c = eps.narrow(0, 1, 1);
  auto rate = gb::gen::scfg_rate(u, c, masks.tokens.unsqueeze(0), masks.foreground.unsqueeze(0), s.scale);
  return gb::gen::scfg_combine(u, c, rate, s.scale);
}

void BM_Sd15CfgStep(benchmark::State& state) {
  c10::InferenceMode guard;
  auto& s = setup();
  for (auto _ : state) {
    auto eps = cfg_combine(s.unet->forward(s.in, nullptr, false), s.scale);
    gb::bench::sync();
    benchmark::DoNotOptimize(eps.data_ptr());
  }
  state.counters["latent"] = static_cast<double>(s.latent);
}

void BM_Sd15ScfgStep(benchmark::State& state) {
  c10::InferenceMode guard;
  auto& s = setup();
  for (auto _ : state) {
    at::Tensor eps;
    auto cap = capture_step(s, eps);
    auto out = scfg_post(s, cap, eps);
    gb::bench::sync();
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.counters["latent"] = static_cast<double>(s.latent);
}

// The S-CFG work after the denoiser call alone: GoCA on both halves, masks, rate map, combine.
void BM_Sd15ScfgMasksAndRate(benchmark::State& state) {
  c10::InferenceMode guard;
  auto& s = setup();
  at::Tensor eps;
  auto cap = capture_step(s, eps);
  for (auto _ : state) {
    auto out = scfg_post(s, cap, eps);
    gb::bench::sync();
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.counters["latent"] = static_cast<double>(s.latent);
}

BENCHMARK(BM_Sd15CfgStep)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_Sd15ScfgStep)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_Sd15ScfgMasksAndRate)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
