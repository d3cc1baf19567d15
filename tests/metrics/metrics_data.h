#pragma once
// The metrics suites' inputs: tests/metrics/data/ (images, statistics, the tiny CLIP folder) and its goldens.json,
// written by tools/parity/metrics_goldens.py.
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace gb::testing {

inline std::string metrics_data(const std::string& name) {
  return std::string(GB_SOURCE_DIR) + "/tests/metrics/data/" + name;
}

inline nlohmann::json metrics_goldens() {
  std::ifstream in(metrics_data("goldens.json"));
  return nlohmann::json::parse(in);
}

}  // namespace gb::testing
