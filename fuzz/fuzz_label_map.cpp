// Label mapping: raw label values (as read from PNG/MAT files) to class ids under every dataset kind,
// protocol and label source; COCO panoptic segment ids through a segments_info list.
#include "datasets/dataset.h"
#include "fuzz/fuzz_util.h"

#include <ATen/ATen.h>

#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gb::datasets;
  if (size < 4) return 0;
  const auto kind = static_cast<DatasetKind>(data[0] % 5);
  const auto protocol = (data[1] & 1) ? Protocol::standard : Protocol::paper;
  const auto source = static_cast<LabelSource>((data[1] >> 1) % 6);
  const int64_t w = 1 + data[2] % 16;
  const int64_t n_segments = data[3] % 8;
  data += 4;
  size -= 4;
  // Segments: (segment id, category id) pairs of int32, then the raw values as int32.
  std::vector<std::pair<int64_t, int64_t>> segments;
  auto next_i32 = [&](int64_t& out) {
    if (size < 4) return false;
    int32_t v;
    std::memcpy(&v, data, 4);
    data += 4;
    size -= 4;
    out = v;
    return true;
  };
  for (int64_t k = 0; k < n_segments; ++k) {
    int64_t id = 0, cat = 0;
    if (!next_i32(id) || !next_i32(cat)) return 0;
    segments.emplace_back(id, cat);
  }
  std::vector<int64_t> values;
  for (int64_t v = 0; values.size() < 4096 && next_i32(v);) values.push_back(v);
  const int64_t h = static_cast<int64_t>(values.size()) / w;
  if (h == 0) return 0;
  values.resize(static_cast<size_t>(h * w));
  const at::Tensor raw = at::tensor(values, at::kLong).reshape({h, w});
  const DatasetConfig config = default_dataset_config(kind, protocol);
  gb::fuzz::expect_user_errors([&] {
    if (!label_source_applies(kind, source)) return;
    const at::Tensor label = map_label(config, source, raw, "label.png");
    if (label.sizes() != raw.sizes()) std::abort();
  });
  gb::fuzz::expect_user_errors([&] {
    const at::Tensor label = map_panoptic(raw, segments, protocol, "panoptic.png");
    if (label.sizes() != raw.sizes()) std::abort();
  });
  return 0;
}
