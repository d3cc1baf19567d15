#pragma once
// The full-size graph check: a model built on a shape-only weight store (the meta device, no memory) requests
// exactly the keys and shapes the reference library builds at the published config. The golden JSON (written by
// tools/parity/*_goldens.py) holds per model its key count, parameter total and the FNV-1a hash of the sorted
// "key [shape]" lines.
#include "harness/backbones/weights.h"
#include "harness/core/hash.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace gb::test {

// Builds a model into a fresh shape-only store with `build` and compares what it requested with want[name].
inline void expect_full_size_graph(const nlohmann::json& want, const std::string& name,
                                   const std::function<void(gb::bb::WeightStore&)>& build) {
  auto ws = gb::bb::WeightStore::shape_only();
  build(ws);
  std::vector<std::string> lines;
  int64_t params = 0;
  for (const auto& [k, v] : ws.tensors()) {
    lines.push_back(k + " " + gb::bb::shape_str(v.sizes()));
    params += v.numel();
  }
  std::sort(lines.begin(), lines.end());
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  EXPECT_EQ(static_cast<int64_t>(lines.size()), want[name]["count"].get<int64_t>()) << name;
  EXPECT_EQ(params, want[name]["params"].get<int64_t>()) << name;
  EXPECT_EQ(std::to_string(gb::fnv1a(text)), want[name]["fnv1a64"].get<std::string>())
      << name << ": key/shape lists differ; run its tools/parity/ script and diff against:\n"
      << text;
}

}  // namespace gb::test
