#pragma once
// The tiny CLIPModel folder of the metrics goldens: config.json and preprocessor_config.json from
// tests/metrics/data/clip_tiny/, CLIP's real vocab.json + merges.txt, and model.safetensors with the test
// weights (clip_test_value) for the keys and shapes in keys.json.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "harness/io/safetensors.h"
#include "tests/backbones/tiny_tokenizer_files.h"
#include "tests/metrics/metric_test_weights.h"
#include "tests/metrics/metrics_data.h"

namespace gb::testing {

inline std::filesystem::path tiny_clip_data() { return metrics_data("clip_tiny"); }

inline std::vector<std::pair<std::string, at::Tensor>> tiny_clip_weights() {
  std::ifstream in(tiny_clip_data() / "keys.json");
  const auto keys = nlohmann::json::parse(in);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& kv : keys) {
    const auto name = kv[0].get<std::string>();
    const auto shape = kv[1].get<std::vector<int64_t>>();
    out.emplace_back(name, clip_test_value(name, shape));
  }
  return out;
}

inline void make_tiny_clip_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  for (const char* f : {"config.json", "preprocessor_config.json"})
    fs::copy_file(tiny_clip_data() / f, dir / f, fs::copy_options::overwrite_existing);
  gb::bb::tiny::install_clip_vocab_merges(dir, ".");
  gb::save_safetensors((dir / "model.safetensors").string(), tiny_clip_weights());
}

}  // namespace gb::testing
