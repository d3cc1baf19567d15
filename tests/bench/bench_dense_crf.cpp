// FTTM's dense CRF at VOC image size (500x375, 4 labels: 3 objects + support map), split into its parts.
// Run: build/tests/goca-bench-benchmarks --benchmark_filter=DenseCrf
#include "baselines/dense_crf.h"
#include "baselines/fttm.h"
#include "baselines/permutohedral.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

namespace {

constexpr int64_t kH = 375, kW = 500, kK = 4;

// A smooth image with mild noise (about as many lattice vertices as a natural photo), or uniform noise
// (the worst case: every pixel its own bilateral vertex).
at::Tensor image(bool noise) {
  at::manual_seed(0);
  if (noise) return at::randint(0, 256, {kH, kW, 3}, at::kByte);
  at::Tensor y = at::arange(kH).view({kH, 1, 1}).to(at::kFloat);
  at::Tensor x = at::arange(kW).view({1, kW, 1}).to(at::kFloat);
  at::Tensor c = at::arange(3).view({1, 1, 3}).to(at::kFloat);
  return (at::sin(y / 40 + x / 70 + c) * 100 + 128 + at::randn({kH, kW, 3}) * 4).clamp(0, 255).to(at::kByte);
}

void BM_FttmDcrf(benchmark::State& state) {
  const at::Tensor rgb = image(state.range(0) != 0);
  const at::Tensor maps = at::rand({kK, 64, 64});
  for (auto _ : state) benchmark::DoNotOptimize(gb::baselines::fttm_dcrf(maps, rgb));
  state.SetLabel(state.range(0) ? "noise image" : "smooth image");
}
BENCHMARK(BM_FttmDcrf)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DenseCrfBilateralLattice(benchmark::State& state) {
  const at::Tensor rgb = image(state.range(0) != 0);
  at::Tensor f = at::empty({kH * kW, 5});
  auto a = f.accessor<float, 2>();
  auto im = rgb.accessor<uint8_t, 3>();
  for (int64_t y = 0; y < kH; ++y)
    for (int64_t x = 0; x < kW; ++x)
      for (int c = 0; c < 5; ++c) a[y * kW + x][c] = c == 0 ? x / 67.f : c == 1 ? y / 67.f : im[y][x][c - 2] / 3.f;
  int64_t vertices = 0;
  for (auto _ : state) {
    gb::baselines::PermutohedralLattice lattice(f.data_ptr<float>(), kH * kW, 5);
    vertices = lattice.vertices();
  }
  state.counters["vertices"] = static_cast<double>(vertices);
}
BENCHMARK(BM_DenseCrfBilateralLattice)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
