// `goca-bench clip-score`: torchmetrics' CLIPScore on the tiny CLIPModel of the metrics goldens, the output
// contract, and bad inputs (exit 2, one line).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/cli/cli_test_util.h"
#include "tests/metrics/clip_test_folder.h"
#include "tests/metrics/metrics_data.h"

namespace fs = std::filesystem;

namespace {

std::string data(const std::string& name) { return gb::testing::metrics_data(name); }

using gb::test::last_line;

TEST(ClipScoreCli, ScoresFolderAndRejectsBadInput) {
  const fs::path root = fs::temp_directory_path() / ("gb_clip_cli_" + std::to_string(::getpid()));
  fs::remove_all(root);
  gb::testing::make_tiny_clip_folder(root / "clip");
  fs::create_directories(root / "images");
  fs::create_directories(root / "empty");
  for (const char* n : {"img_rgb_37x53.png", "img_gray_64x41.png", "img_rgba_311x347.png", "img_palette_121x90.png"})
    fs::copy_file(data(n), root / "images" / n);
  const double want = gb::testing::metrics_goldens()["clip"]["score"].get<double>();

  const std::string clip = (root / "clip").string(), images = (root / "images").string();
  auto r = gb::test::run_goca_bench_in_process(
      {"clip-score", "--images", images, "--prompts", data("clip_prompts.csv"), "--clip", clip, "--json"}, false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(last_line(r.out));
  EXPECT_NEAR(j["clip_score"].get<double>(), want, 1e-3);
  EXPECT_EQ(j["n_images"].get<int64_t>(), 4);
  r = gb::test::run_goca_bench_in_process(
      {"clip-score", "--images", images, "--prompts", data("clip_prompts.csv"), "--clip", clip, "--batch-size", "1"},
      false);
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string line = last_line(r.out);
  ASSERT_EQ(line.rfind("CLIP score ", 0), 0u) << line;
  EXPECT_NEAR(std::stod(line.substr(11)), want, 1e-3);

  auto expect_exit2 = [](const std::vector<std::string>& args, const std::string& needle) {
    gb::test::expect_exit2_one_line(gb::test::run_goca_bench_in_process(args), needle);
  };
  fs::copy_file(data("img_gray_64x41.png"), root / "images" / "stranger.png");
  expect_exit2({"clip-score", "--images", images, "--prompts", data("clip_prompts.csv"), "--clip", clip},
               "stranger.png");
  expect_exit2(
      {"clip-score", "--images", (root / "empty").string(), "--prompts", data("clip_prompts.csv"), "--clip", clip},
      "no .png images");
  expect_exit2({"clip-score", "--images", images, "--prompts", (root / "none.txt").string(), "--clip", clip},
               "none.txt");
  fs::remove_all(root);
}

}  // namespace
