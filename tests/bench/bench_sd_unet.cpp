// Full-size SD1.5 UNet (random weights, built in memory) forward with the paper's SD1.5 capture set: all 16
// cross maps with their special values/post-values/weights, head-mean self maps and the reference query.
// CPU fp32 by default (GB_BENCH_DEVICE=cuda and GB_BENCH_DTYPE=fp16 for the paper's setting on a GPU).
// The latent side defaults to 16 (a 128² image) to stay cheap on a CPU; GB_BENCH_LATENT=64 is the paper's 512².
#include "bench_util.h"

#include "harness/backbones/recorder.h"

#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <cstdlib>

namespace {

using namespace gb::bb;

void BM_Sd15UNetCapture(benchmark::State& state) {
  c10::InferenceMode guard;
  const int64_t batch = state.range(0);
  const int64_t latent = gb::bench::env_int("GB_BENCH_LATENT", 16);
  UNet2DConditionModel& unet = gb::bench::sd15_unet();
  const auto opts = gb::bench::options();
  gb::CaptureSpec spec;
  for (const auto& l : unet_capture_layers(unet.config(), latent, 77)) {
    const auto& n = l.name;
    bool cross = n.find("-cross-") != std::string::npos;
    if ((cross && n.find("-q") != n.size() - 2) ||
        (!cross && n.size() > 9 && n.compare(n.size() - 9, 9, "-self-map") == 0))
      spec.add(n);
  }
  spec.self_map_head_mean = true;
  UNetInputs in;
  in.latents = at::randn({batch, 4, latent, latent}, opts);
  in.timestep = at::full({batch}, 101, opts.dtype(at::kLong));
  in.encoder_hidden_states = at::randn({batch, 77, 768}, opts);
  for (auto _ : state) {
    gb::Capture cap;
    CaptureRecorder rec(spec, cap);
    unet.forward(in, &rec, true);
    gb::bench::sync();
    benchmark::DoNotOptimize(cap.tensors.size());
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["latent"] = static_cast<double>(latent);
}

BENCHMARK(BM_Sd15UNetCapture)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
