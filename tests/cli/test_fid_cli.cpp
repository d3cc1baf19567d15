// `goca-bench fid`: end to end on the metrics goldens (pytorch-fid's FID of 2 images against 2 with the test
// weights), its output contract, --save-stats, and bad inputs (exit 2, one line).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "harness/io/safetensors.h"
#include "harness/metrics/frechet.h"
#include "tests/cli/cli_test_util.h"
#include "tests/metrics/metric_test_weights.h"
#include "tests/metrics/metrics_data.h"

namespace fs = std::filesystem;

namespace {

std::string data(const std::string& name) { return gb::testing::metrics_data(name); }

class FidCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("gb_fid_cli_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "a");
    fs::create_directories(root_ / "empty");
    // The goldens' images 0, 1 (their order in goldens.json) against 2, 3.
    fs::copy_file(data("img_rgb_37x53.png"), root_ / "a" / "img_rgb_37x53.png");
    fs::copy_file(data("img_gray_64x41.png"), root_ / "a" / "img_gray_64x41.png");
    // Images 2 and 3 enter as statistics of their golden features (tests/metrics runs them through the network).
    gb::SafetensorsFile goldens(data("goldens.safetensors"));
    gb::metrics::write_fid_stats(path("b.npz"),
                                 gb::metrics::stats_from_features(goldens.load("features").narrow(0, 2, 2)));
    auto w = gb::testing::fid_test_weights();
    std::vector<std::pair<std::string, at::Tensor>> all(w.begin(), w.end());
    gb::save_safetensors(path("weights.safetensors"), all);
    all.erase(std::remove_if(all.begin(), all.end(),
                             [](const auto& kv) { return kv.first == "Mixed_5b.branch1x1.conv.weight"; }),
              all.end());
    gb::save_safetensors(path("missing.safetensors"), all);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string path(const std::string& name) { return (root_ / name).string(); }
  static fs::path root_;
};
fs::path FidCli::root_;

using gb::test::last_line;

TEST_F(FidCli, TwoFoldersMatchPytorchFidAndSaveStats) {
  const double want = gb::testing::metrics_goldens()["fid_features_2v2"].get<double>();
  auto r = gb::test::run_goca_bench_in_process(
      {"fid", "--images", path("a"), "--ref-stats", path("b.npz"), "--inception", path("weights.safetensors"),
       "--save-stats", path("a.npz"), "--batch-size", "1", "--json"},
      /*with_stderr=*/false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(last_line(r.out));
  EXPECT_NEAR(j["fid"].get<double>(), want, 1e-6 * want);
  EXPECT_EQ(j["n_images"].get<int64_t>(), 2);
  EXPECT_TRUE(j["n_ref_images"].is_null());
  auto s = gb::metrics::read_fid_stats(path("a.npz"));
  EXPECT_EQ(s.mu.size(0), 2048);

  // Text output, last line "FID <value>": the folder against its own saved statistics.
  r = gb::test::run_goca_bench_in_process(
      {"fid", "--images", path("a"), "--ref-stats", path("a.npz"), "--inception", path("weights.safetensors")},
      /*with_stderr=*/false);
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string line = last_line(r.out);
  ASSERT_EQ(line.rfind("FID ", 0), 0u) << line;
  EXPECT_NEAR(std::stod(line.substr(4)), 0.0, 1e-4);
}

TEST_F(FidCli, BadInputsExit2WithOneLine) {
  auto expect_exit2 = [](const std::vector<std::string>& args, const std::string& needle) {
    gb::test::expect_exit2_one_line(gb::test::run_goca_bench_in_process(args), needle);
  };
  expect_exit2({"fid", "--images", path("a"), "--ref-images", path("a"), "--inception", path("missing.safetensors")},
               "Mixed_5b.branch1x1.conv.weight");
  expect_exit2({"fid", "--images", path("a"), "--ref-stats", data("stats_no_sigma.npz"), "--inception",
                path("weights.safetensors")},
               "'sigma'");
  expect_exit2(
      {"fid", "--images", path("empty"), "--ref-images", path("a"), "--inception", path("weights.safetensors")},
      "no images");
  expect_exit2(
      {"fid", "--images", path("a"), "--ref-stats", data("stats_a.npz"), "--inception", path("weights.safetensors")},
      "64 dimensions");
  expect_exit2({"fid", "--images", path("a"), "--inception", path("weights.safetensors")}, "--ref-stats");
  expect_exit2({"fid", "--images", path("a"), "--ref-images", path("a"), "--inception", path("nope.safetensors")},
               "nope.safetensors");
}

}  // namespace
