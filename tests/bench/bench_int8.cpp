// LLM.int8 linear (bitsandbytes 0.45 numerics, int8_linear.h) against the dense linear it replaces, at the shapes
// of FLUX.1-dev's T5-XXL for one 512-token prompt: q/k/v/o (4096 → 4096) and wi_0/wi_1 (4096 → 10240).
// CPU timings here (LibTorch 1.13 has no int8 GEMM: the exact chunked fp32 path); CUDA uses at::_int_mm.
#include <benchmark/benchmark.h>

#include "harness/backbones/int8_linear.h"

#include <ATen/ATen.h>

namespace {

at::Tensor activations(int64_t k) {
  auto x = at::randn({512, k}, at::TensorOptions().dtype(at::kFloat));
  x.select(1, 7).mul_(8.0);  // one outlier feature channel, as real T5 activations have
  return x.to(at::kBFloat16);
}
at::Tensor weight(int64_t n, int64_t k) { return (at::randn({n, k}) * 0.02).to(at::kBFloat16); }

void BM_Int8Linear(benchmark::State& state) {
  const int64_t n = state.range(0), k = 4096;
  gb::bb::Int8Linear lin(weight(n, k));
  auto x = activations(k);
  for (auto _ : state) benchmark::DoNotOptimize(lin(x).data_ptr());
  state.SetItemsProcessed(state.iterations() * 512 * n * k);
}

void BM_DenseBf16Linear(benchmark::State& state) {
  const int64_t n = state.range(0), k = 4096;
  auto w = weight(n, k);
  auto x = activations(k);
  for (auto _ : state) benchmark::DoNotOptimize(at::linear(x, w).data_ptr());
  state.SetItemsProcessed(state.iterations() * 512 * n * k);
}

void BM_Int8WeightQuantization(benchmark::State& state) {
  auto w = weight(state.range(0), 4096);
  for (auto _ : state) benchmark::DoNotOptimize(gb::bb::Int8Linear(w).cb().data_ptr());
}

BENCHMARK(BM_Int8Linear)->Arg(4096)->Arg(10240)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DenseBf16Linear)->Arg(4096)->Arg(10240)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Int8WeightQuantization)->Arg(4096)->Arg(10240)->Unit(benchmark::kMillisecond);

}  // namespace
