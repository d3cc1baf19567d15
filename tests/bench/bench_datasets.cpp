// Dataset::load per benchmark layout at VOC size (500x375): JPEG/PNG decoding plus the label mapping, paper protocol.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "datasets/dataset.h"
#include "datasets/fixtures.h"

namespace {

using namespace gb::datasets;

void BM_DatasetLoad(benchmark::State& state) {
  const auto kind = static_cast<DatasetKind>(state.range(0));
  std::random_device rd;
  const auto dir = std::filesystem::temp_directory_path() / ("gb_bench_ds_" + std::to_string(rd()));
  FixtureOptions o;
  o.width = 500;
  o.height = 375;
  Fixture fx = write_fixture(kind, dir.string(), o);
  auto c = default_dataset_config(kind, Protocol::paper);
  c.root = fx.root;
  c.images = fx.images;
  if (kind == DatasetKind::Context && !kFixtureWritesMat) c.label_source = LabelSource::Png;
  auto ds = Dataset::open(c);
  size_t i = 0;
  for (auto _ : state) {
    auto s = ds->load(i++ % ds->size());
    benchmark::DoNotOptimize(s->label.data_ptr());
  }
  state.SetLabel(to_string(kind));
  state.SetItemsProcessed(state.iterations());
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_DatasetLoad)->DenseRange(0, 4)->Unit(benchmark::kMillisecond);

}  // namespace
