// `goca-bench eval-masks`, run as the real binary on PNGs written here.
#include "harness/io/image_io.h"

#include <ATen/ATen.h>
#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace fs = std::filesystem;

namespace {

using Run = gb::test::CliResult;
Run run_cli(const std::string& args) { return gb::test::run_goca_bench(args); }

struct Folders {
  fs::path root, pred, gt;
  explicit Folders(const std::string& name) {
    root = fs::temp_directory_path() / ("gb_eval_masks_" + name);
    fs::remove_all(root);
    pred = root / "pred";
    gt = root / "gt";
    fs::create_directories(pred);
    fs::create_directories(gt);
  }
  std::string args(int k, const std::string& extra = "") const {
    return "eval-masks --pred " + pred.string() + " --gt " + gt.string() + " --num-classes " + std::to_string(k) + " " +
           extra;
  }
};

at::Tensor u8(std::vector<int64_t> v, int64_t h, int64_t w) {
  return at::tensor(v, at::kLong).reshape({h, w}).to(at::kByte);
}

}  // namespace

TEST(EvalMasks, ScoresPaletteAndGrayPngsBothProtocols) {
  Folders f("ok");
  // image a (palette): gt [0 1; 1 255], pred [0 1; 0 1]
  gb::write_png_palette((f.gt / "a.png").string(), u8({0, 1, 1, 255}, 2, 2));
  gb::write_png_palette((f.pred / "a.png").string(), u8({0, 1, 0, 1}, 2, 2));
  // image b (gray): gt [2 2], pred [2 0]
  gb::write_png_gray((f.gt / "b.png").string(), u8({2, 2}, 1, 2));
  gb::write_png_gray((f.pred / "b.png").string(), u8({2, 0}, 1, 2));
  auto r = run_cli(f.args(3, "--protocol paper --format json"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  // paper: class0 I=1 U=3 (pred {a0,a2,b1}, gt {a0}); class1 I=1 U=4 (pred {a1,a3}, gt {a1,a2}; a3 is 255 -> FP);
  // class2 I=1 U=2
  EXPECT_NEAR(j["per_class"][0].get<double>(), 1.0 / 3.0, 1e-8);
  EXPECT_NEAR(j["per_class"][1].get<double>(), 1.0 / 3.0, 1e-8);
  EXPECT_NEAR(j["per_class"][2].get<double>(), 1.0 / 2.0, 1e-8);
  EXPECT_NEAR(j["miou"].get<double>(), (1.0 / 3 + 1.0 / 3 + 0.5) / 3, 1e-8);
  EXPECT_NEAR(j["aacc"].get<double>(), 3.0 / 6.0, 1e-12);
  // standard: the 255 pixel is ignored -> class1 U=2, I=1
  r = run_cli(f.args(3, "--protocol standard --format json"));
  ASSERT_EQ(r.code, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["per_class"][1].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(j["aacc"].get<double>(), 3.0 / 5.0, 1e-12);
  r = run_cli(f.args(3, "--protocol standard --format table"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("mIoU"), std::string::npos);
}

TEST(EvalMasks, BadInputExitsTwoNamingTheFile) {
  Folders f("bad");
  gb::write_png_gray((f.gt / "a.png").string(), u8({0, 1}, 1, 2));
  auto r = run_cli(f.args(2, "--protocol paper"));
  EXPECT_EQ(r.code, 2) << r.out;  // empty prediction folder
  gb::write_png_gray((f.pred / "b.png").string(), u8({0, 1}, 1, 2));
  r = run_cli(f.args(2, "--protocol paper"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("a.png"), std::string::npos) << r.out;
  fs::remove(f.pred / "b.png");
  gb::write_png_gray((f.pred / "a.png").string(), u8({0, 1, 1}, 1, 3));
  r = run_cli(f.args(2, "--protocol paper"));
  EXPECT_EQ(r.code, 2) << r.out;  // size mismatch
  EXPECT_NE(r.out.find("a.png"), std::string::npos) << r.out;
  gb::write_png_gray((f.pred / "a.png").string(), u8({0, 7}, 1, 2));
  r = run_cli(f.args(2, "--protocol paper"));
  EXPECT_EQ(r.code, 2) << r.out;  // class out of range
  r = run_cli("eval-masks --pred /nonexistent --gt " + f.gt.string() + " --num-classes 2");
  EXPECT_EQ(r.code, 2) << r.out;
}
