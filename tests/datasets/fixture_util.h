#pragma once
// Test helpers: a temporary folder and probes into the fixture's block layout (datasets/fixtures.cpp).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/fixtures.h"

namespace gbtest {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("gb_datasets_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

// Fixture geometry (default 20x14): block a at rows [1, 7) x cols [1, 10), the ring around it, block b at
// rows [10, 14) x cols [14, 20), background elsewhere.
inline int64_t at_a(const at::Tensor& l) { return l[3][3].item<int64_t>(); }
inline int64_t at_ring(const at::Tensor& l) { return l[0][0].item<int64_t>(); }
inline int64_t at_b(const at::Tensor& l) { return l[12][17].item<int64_t>(); }
inline int64_t at_bg(const at::Tensor& l) { return l[12][2].item<int64_t>(); }

inline gb::datasets::DatasetConfig config_for(const gb::datasets::Fixture& fx, gb::datasets::Protocol protocol) {
  auto c = gb::datasets::default_dataset_config(fx.kind, protocol);
  c.root = fx.root;
  c.images = fx.images;
  return c;
}

// `a` and `b` (one dataset read from two label sources) hold the same label for every image.
inline void expect_same_labels(const gb::datasets::Dataset& a, const gb::datasets::Dataset& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a.load(i)->label, b.load(i)->label)) << i;
}

// `f` throws a SampleError of `kind` whose message contains every one of `needles`.
template <typename F>
void expect_sample_error(F&& f, gb::datasets::IssueKind kind, const std::vector<std::string>& needles) {
  try {
    f();
  } catch (const gb::datasets::SampleError& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
    return;
  }
  ADD_FAILURE() << "expected a SampleError";
}

inline std::vector<std::string> ids_of(const gb::datasets::Dataset& ds) {
  std::vector<std::string> v;
  for (size_t i = 0; i < ds.size(); ++i) v.push_back(ds.id(i));
  return v;
}

}  // namespace gbtest
