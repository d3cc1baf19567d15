// CLIP score against torchmetrics' CLIPScore on a tiny random transformers CLIPModel
// (tools/parity/metrics_goldens.py): token ids, CLIPImageProcessor pixels, per-pair 100·cos and the score.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "harness/core/errors.h"
#include "harness/io/image_io.h"
#include "harness/io/prompt_file.h"
#include "harness/io/safetensors.h"
#include "harness/metrics/clip_score.h"
#include "tests/metrics/clip_test_folder.h"
#include "tests/metrics/metrics_data.h"

namespace fs = std::filesystem;
using namespace gb::metrics;

namespace {

std::string data(const std::string& name) { return gb::testing::metrics_data(name); }
nlohmann::json clip_goldens() { return gb::testing::metrics_goldens()["clip"]; }

class ClipScoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("gb_clip_" + std::to_string(::getpid()));
    gb::testing::make_tiny_clip_folder(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static fs::path dir_;
};
fs::path ClipScoreTest::dir_;

TEST_F(ClipScoreTest, TokenIdsAsTorchmetricsFeedsThem) {
  const auto g = clip_goldens();
  ClipScorer scorer(dir_.string(), at::kCPU);
  const auto prompts = gb::read_prompt_file(data("clip_prompts.csv"));
  ASSERT_EQ(prompts.size(), g["token_ids"].size());
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(scorer.token_ids(prompts[i].text), g["token_ids"][i].get<std::vector<int64_t>>()) << prompts[i].text;
}

TEST_F(ClipScoreTest, ImageProcessorPixels) {
  const auto g = clip_goldens();
  const auto cfg = ClipImageProcessorConfig::from_json((dir_ / "preprocessor_config.json").string());
  at::Tensor x = clip_preprocess(gb::read_image_rgb(data("img_rgba_311x347.png")), cfg);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_NEAR(x.to(at::kDouble).sum().item<double>(), g["pixels_rgba_sum"].get<double>(), 1e-3);
  const auto row0 = g["pixels_rgba_row0"].get<std::vector<float>>();
  at::Tensor want = at::tensor(row0);
  EXPECT_TRUE(at::equal(x.select(1, 0).flatten(), want)) << (x.select(1, 0).flatten() - want).abs().max();
}

TEST_F(ClipScoreTest, ScoreMatchesTorchmetrics) {
  const auto g = clip_goldens();
  ClipScorer scorer(dir_.string(), at::kCPU);
  const auto prompts = gb::read_prompt_file(data("clip_prompts.csv"));
  std::vector<std::string> paths, texts;
  for (const auto& p : prompts) {
    paths.push_back(data(p.id + ".png"));
    texts.push_back(p.text);
  }
  const auto r = clip_score(scorer, paths, texts, 3);
  const auto per = g["per_image"].get<std::vector<double>>();
  ASSERT_EQ(r.per_image.size(), per.size());
  for (size_t i = 0; i < per.size(); ++i) EXPECT_NEAR(r.per_image[i], per[i], 1e-3) << i;
  EXPECT_NEAR(r.score, g["score"].get<double>(), 1e-3);
}

TEST_F(ClipScoreTest, BadFolders) {
  auto msg = [](auto&& f) {
    try {
      f();
    } catch (const gb::UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const fs::path bad = fs::temp_directory_path() / ("gb_clip_bad_" + std::to_string(::getpid()));
  fs::remove_all(bad);
  fs::copy(dir_, bad);
  fs::remove(bad / "merges.txt");
  EXPECT_NE(msg([&] { ClipScorer s(bad.string(), at::kCPU); }).find("merges.txt"), std::string::npos);
  gb::testing::make_tiny_clip_folder(bad);
  auto w = gb::testing::tiny_clip_weights();
  w.erase(std::remove_if(w.begin(), w.end(), [](const auto& kv) { return kv.first == "visual_projection.weight"; }),
          w.end());
  gb::save_safetensors((bad / "model.safetensors").string(), w);
  EXPECT_NE(msg([&] { ClipScorer s(bad.string(), at::kCPU); }).find("visual_projection.weight"), std::string::npos);
  fs::remove_all(bad);
}

}  // namespace
