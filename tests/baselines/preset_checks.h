#pragma once
// Checks of the method presets shared by the baselines, generation, CLI and end-to-end suites: a preset against the
// paper's config (tools/parity/method_presets_golden.py, scfg_goldens.py), and the shipped method files of a
// backbone kind against the layers it can capture.
#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "baselines/presets.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace gb::test {

// The fields every paper config sets the same way: the three enums (paper spellings), the layers, the reference
// and self layers, the output size, the image size, the timestep and the propagation order.
inline void expect_preset_follows_paper_config(const gb::baselines::Preset& p, const nlohmann::json& c) {
  const auto& m = p.plan.method;
  EXPECT_EQ(gb::goca::parse_head_method(c["head_method"]), m.head_method);
  EXPECT_EQ(gb::goca::parse_layer_method(c["layer_method"]), m.layer_method);
  EXPECT_EQ(gb::goca::parse_rescale_method(c["rescale_method"]), m.rescale_method);
  EXPECT_EQ(m.layers, c["layer"].get<std::vector<std::string>>());
  EXPECT_EQ(m.ref_layer, c["ref_layer"].get<std::string>());
  EXPECT_EQ(m.self_layers, c["self_layer"].get<std::vector<std::string>>());
  EXPECT_EQ(m.output_size, c["feat_size"].get<int64_t>());
  EXPECT_EQ(p.plan.capture.image_size, c["img_size"].get<int64_t>());
  EXPECT_EQ(p.plan.capture.timestep, c["t"].get<int64_t>());
  ASSERT_EQ(c["affinity_order"].size(), 1u);
  EXPECT_EQ(m.propagation_order, c["affinity_order"][0].get<int64_t>());
}

// Every method file of configs/methods/<kind>/ asks only for capture keys in `have`; returns how many there are.
inline int expect_presets_capture_only(const std::string& kind, const std::set<std::string>& have) {
  int presets = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(GB_SOURCE_DIR) / "configs/methods" / kind)) {
    const auto plan = gb::baselines::load_method_plan(e.path().string());
    const gb::baselines::PlanSegmentor seg(plan, e.path().string());
    for (const auto& key : seg.required_capture().keys) EXPECT_TRUE(have.count(key)) << kind << ": " << key;
    ++presets;
  }
  return presets;
}

}  // namespace gb::test
