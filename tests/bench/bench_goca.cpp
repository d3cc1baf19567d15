// Full GoCA post-processing (Segmentor::run: head + layer aggregation, tokens, rescaling, background merge,
// self-attention aggregation, affinity propagation) on random captures shaped like SD1.5, SDXL and Flux.
// The paper's own functions are timed on the same shapes by tools/parity/goca_paper_timing.py;
// docs/performance.md has the numbers, the commands and the FLOP count.
//
// Tensors of identical shape share storage across layers (the values do not change the work done; this keeps
// the Flux-sized capture at ~0.5 GB instead of ~12 GB). Self maps are head means [1, P, P], as the harness
// captures them (CaptureSpec::self_map_head_mean).
#include "goca/ops.h"
#include "goca/segmentor.h"
#include "harness/core/torch_compat.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <vector>

using namespace gb::goca;

namespace {

struct LayerShape {
  std::string name;  // block id without "-cross" / "-self"
  int64_t side, heads, channels;
};

struct Setup {
  MethodConfig config;
  gb::TensorMap sample;
  gb::TokenGroups groups;
};

std::vector<LayerShape> sd15_layers() {
  std::vector<LayerShape> l;
  auto add = [&](const std::string& n, int64_t s, int64_t c) { l.push_back({n + "-vit-block0", s, 8, c}); };
  for (int r : {0, 1}) add("down-level0-repeat" + std::to_string(r), 64, 320);
  for (int r : {0, 1}) add("down-level1-repeat" + std::to_string(r), 32, 640);
  for (int r : {0, 1}) add("down-level2-repeat" + std::to_string(r), 16, 1280);
  l.push_back({"mid-vit-block0", 8, 8, 1280});
  for (int r : {0, 1, 2}) add("up-level1-repeat" + std::to_string(r), 16, 1280);
  for (int r : {0, 1, 2}) add("up-level2-repeat" + std::to_string(r), 32, 640);
  for (int r : {0, 1, 2}) add("up-level3-repeat" + std::to_string(r), 64, 320);
  return l;
}

std::vector<LayerShape> sdxl_layers() {
  std::vector<LayerShape> l;
  auto add = [&](const std::string& p, int blocks, int64_t s, int64_t h, int64_t c) {
    for (int b = 0; b < blocks; ++b) l.push_back({p + "-vit-block" + std::to_string(b), s, h, c});
  };
  for (int r : {0, 1}) add("down-level1-repeat" + std::to_string(r), 2, 64, 10, 640);
  for (int r : {0, 1}) add("down-level2-repeat" + std::to_string(r), 10, 32, 20, 1280);
  add("mid", 10, 32, 20, 1280);
  for (int r : {0, 1, 2}) add("up-level0-repeat" + std::to_string(r), 10, 32, 20, 1280);
  for (int r : {0, 1, 2}) add("up-level1-repeat" + std::to_string(r), 2, 64, 10, 640);
  return l;
}

std::vector<LayerShape> flux_layers() {
  std::vector<LayerShape> l;
  for (int b = 0; b < 57; ++b) l.push_back({"vit-block" + std::to_string(b), 64, 24, 3072});
  return l;
}

// Random capture; one tensor per distinct shape, shared by the layers of that shape.
Setup make_setup(const std::vector<LayerShape>& layers, int64_t T, const std::string& ref_key, int64_t ref_c,
                 int64_t ref_r, const std::vector<std::string>& self_layers, HeadMethod head, const at::Device& dev) {
  at::manual_seed(0);
  Setup s;
  auto& c = s.config;
  c.head_method = head;
  c.layer_method = LayerMethod::DotProductSimilarity;
  c.rescale_method = RescaleMethod::Sum1RenormPlus;
  c.ref_layer = ref_key;
  c.self_layers = self_layers;
  c.propagation_order = 2;
  c.output_size = 64;
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::vector<at::Tensor>> cache;
  std::map<int64_t, at::Tensor> self_cache;
  auto opts = at::TensorOptions().dtype(at::kFloat).device(dev);
  for (const auto& l : layers) {
    const int64_t P = l.side * l.side, d = l.channels / l.heads;
    auto key = std::make_tuple(l.side, l.heads, l.channels);
    if (!cache.count(key)) {
      auto logits = at::randn({l.heads, P, T}, opts) * 1.5;
      logits.select(2, 0).add_(4.0);
      auto A = at::softmax(logits, -1);
      std::vector<at::Tensor> t{A};
      if (head != HeadMethod::Average) {
        auto V = at::randn({l.heads, T, d}, opts);
        auto Z = at::bmm(A, V).permute({1, 0, 2}).reshape({P, l.heads * d}).contiguous();
        auto W = at::randn({l.channels, l.channels}, opts) / std::sqrt(double(l.channels));
        t.insert(t.end(), {V, Z, W});
      }
      cache[key] = t;
    }
    if (!self_cache.count(l.side)) self_cache[l.side] = at::softmax(at::randn({1, P, P}, opts) * 3, -1);
    const auto& t = cache[key];
    const std::string cross = l.name + "-cross";
    s.sample[cross + "-map"] = t[0];
    if (t.size() > 1) {
      s.sample[cross + "-special-value"] = t[1];
      s.sample[cross + "-special-post-value"] = t[2];
      s.sample[cross + "-special-weight"] = t[3];
    }
    s.sample[l.name + "-self-map"] = self_cache[l.side];
    c.layers.push_back(cross + "-map");
  }
  s.sample[ref_key] = at::randn({ref_c, ref_r, ref_r}, opts);
  s.groups.objects = {{15, {3, 4}}, {7, {6}}};
  s.groups.background_objects = {{9}, {11, 12}};
  s.groups.rescaling_token_ids = {3, 4, 6, 9, 11, 12};
  return s;
}

Setup sd15(const at::Device& dev) {
  return make_setup(sd15_layers(), 77, "up-level2-repeat1-vit-block0-cross-q", 640, 32,
                    {"up-level3-repeat0-vit-block0-self-map", "up-level3-repeat1-vit-block0-self-map",
                     "down-level0-repeat1-vit-block0-self-map"},
                    HeadMethod::DotProductNoClamp, dev);
}
Setup sdxl(const at::Device& dev) {
  return make_setup(sdxl_layers(), 77, "up-level1-repeat0-vit-block0-cross-q", 640, 64,
                    {"up-level1-repeat0-vit-block0-self-map", "up-level1-repeat0-vit-block1-self-map",
                     "up-level1-repeat1-vit-block0-self-map", "up-level1-repeat1-vit-block1-self-map",
                     "up-level1-repeat2-vit-block0-self-map", "down-level1-repeat0-vit-block0-self-map",
                     "down-level1-repeat0-vit-block1-self-map"},
                    HeadMethod::DotProductNoClamp, dev);
}
Setup flux(const at::Device& dev) {
  return make_setup(flux_layers(), 512, "vit-block27-attn-out", 3072, 64,
                    {"vit-block12-self-map", "vit-block18-self-map"}, HeadMethod::Average, dev);
}

void run_bench(benchmark::State& state, Setup (*make)(const at::Device&), bool cuda) {
  if (cuda && !gb::compat::cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  auto dev = cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  Setup s = make(dev);
  Segmentor seg(s.config);
  at::Tensor scores;
  for (auto _ : state) {
    auto out = seg.run(s.sample, s.groups);
    if (cuda) gb::compat::cuda_synchronize();
    benchmark::DoNotOptimize(out.scores.data_ptr());
    scores = out.scores;
  }
  state.counters["layers"] = static_cast<double>(s.config.layers.size());
  // Checksums, printed identically by tools/parity/goca_paper_timing.py: the same seed gives the same random
  // inputs in LibTorch and PyTorch 1.13 on CPU, so equal input sums mean identical inputs and the output
  // sums compare the two implementations at full size.
  state.counters["in_sum"] = s.sample.at(s.config.layers.front()).to(at::kDouble).sum().item<double>() +
                             s.sample.at(s.config.ref_layer).to(at::kDouble).sum().item<double>();
  state.counters["out_sum"] = at::nansum(scores.to(at::kDouble)).item<double>();
}

}  // namespace

BENCHMARK_CAPTURE(run_bench, sd15_goca_cpu, &sd15, false)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK_CAPTURE(run_bench, sdxl_goca_cpu, &sdxl, false)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(run_bench, flux_goca_cpu, &flux, false)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(run_bench, sd15_goca_cuda, &sd15, true)->Unit(benchmark::kMillisecond)->Iterations(20);
BENCHMARK_CAPTURE(run_bench, sdxl_goca_cuda, &sdxl, true)->Unit(benchmark::kMillisecond)->Iterations(10);
BENCHMARK_CAPTURE(run_bench, flux_goca_cuda, &flux, true)->Unit(benchmark::kMillisecond)->Iterations(10);

// ----- stages, SD1.5-sized (for the cost breakdown in docs/performance.md) -----
namespace {

const Setup& sd15_cpu() {
  static Setup s = sd15(at::kCPU);
  return s;
}

void BM_sd15_head_weights_all_layers(benchmark::State& state) {
  const auto& s = sd15_cpu();
  for (auto _ : state)
    for (const auto& k : s.config.layers) {
      const std::string b = k.substr(0, k.size() - 3);
      auto w = head_weights(s.config.head_method, s.sample.at(k).size(0), s.sample.at(b + "special-post-value"),
                            s.sample.at(b + "special-weight"), s.sample.at(b + "special-value"), at::kFloat);
      benchmark::DoNotOptimize(aggregate_heads(s.sample.at(k), w).data_ptr());
    }
}
BENCHMARK(BM_sd15_head_weights_all_layers)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_sd15_layer_scores_all_layers(benchmark::State& state) {
  const auto& s = sd15_cpu();
  for (auto _ : state) {
    LayerScorer scorer(reference_attention(s.sample.at(s.config.ref_layer), RefMode::Paper),
                       LayerMethod::DotProductSimilarity);
    for (const auto& k : s.config.layers)
      benchmark::DoNotOptimize(scorer.score(s.sample.at(gb::self_key_for_cross(k))[0]).item<float>());
  }
}
BENCHMARK(BM_sd15_layer_scores_all_layers)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_sd15_self_aggregation_and_propagation(benchmark::State& state) {
  const auto& s = sd15_cpu();
  auto maps = at::rand({3, 64, 64});
  for (auto _ : state) {
    std::vector<at::Tensor> selfs;
    for (const auto& k : s.config.self_layers) selfs.push_back(s.sample.at(k)[0]);
    benchmark::DoNotOptimize(propagate(maps, aggregate_self(selfs, 64), 2).data_ptr());
  }
}
BENCHMARK(BM_sd15_self_aggregation_and_propagation)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
