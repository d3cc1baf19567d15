// `goca-bench list-layers`, `capture` and `memory` for the backbones beyond the paper's four (SD 2.1 768-v and
// base, PixArt-alpha, PixArt-Sigma 512, SD3.5 Medium and Large) on tiny random-weight folders, in-process.
#include "../backbones/tiny_dit.h"
#include "../baselines/preset_checks.h"
#include "cli_test_util.h"

#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/registry.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

namespace fs = std::filesystem;
using gb::test::run_goca_bench_in_process;

namespace {

struct Kind {
  std::string folder;
  std::vector<std::string> ids;      // the --token-ids (and --clip-token-ids) arguments of one capture
  std::string cross_key;             // a capturable cross map
  std::vector<int64_t> cross_shape;  // its stored shape at 16² (batch 1)
};

struct Fixture {
  fs::path dir;
  std::string image;
  std::map<std::string, Kind> kinds;
  Fixture() {
    dir = fs::temp_directory_path() / ("gb_cli_newbb_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    using namespace gb::bb::tiny;
    const std::vector<std::string> clip = {"--token-ids", "998,5,6,999,999,999,999,999,999,999,999,999"};
    const std::vector<std::string> t5 = {"--token-ids", "5,6,7,1"};
    // SD 2.1: the tiny UNet's 2 heads at the mid block, 12 CLIP positions.
    kinds["sd21"] = {write_tiny_sd21(dir / "sd21", true), clip, "mid-vit-block0-cross-map", {2, 16, 12}};
    kinds["sd21-base"] = {write_tiny_sd21(dir / "sd21-base", false), clip, "mid-vit-block0-cross-map", {2, 16, 12}};
    // PixArt: 4 x 4 patches, the pipeline's 120 / 300 T5 tokens (no tokenizer: --token-ids are padded to them).
    kinds["pixart-alpha"] = {
        write_tiny_pixart_kind(dir / "alpha", "pixart-alpha"), t5, "vit-block1-cross-map", {2, 16, 120}};
    kinds["pixart-sigma-512"] = {
        write_tiny_pixart_kind(dir / "s512", "pixart-sigma-512"), t5, "vit-block1-cross-map", {2, 16, 300}};
    // SD3.5: 4 x 4 patches x (12 CLIP + 256 T5) keys.
    std::vector<std::string> sd3 = {"--token-ids", "5,6,7,1", "--clip-token-ids", clip[1]};
    kinds["sd35-medium"] = {write_tiny_sd3(dir / "sd35m", false), sd3, "vit-block1-cross-map", {2, 16, 268}};
    kinds["sd35-large"] = {write_tiny_sd3(dir / "sd35l", true), sd3, "vit-block1-cross-map", {2, 16, 268}};
    image = (dir / "img_0001.png").string();
    gb::write_png_rgb(image, random_image(21, 30, 3).to(at::kByte));
  }
  ~Fixture() { fs::remove_all(dir); }
};

const Fixture& fx() {
  static Fixture f;
  return f;
}

}  // namespace

// The published graphs' layer tables without weights, and each folder's.
TEST(NewBackbonesCli, ListLayers) {
  auto r = run_goca_bench_in_process({"list-layers", "--backbone", "sd21", "--filter", "mid-vit-block0-cross-map"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("mid-vit-block0-cross-map  [20, 144, 77]"), std::string::npos) << r.out;  // 768²: 12² mid
  r = run_goca_bench_in_process({"list-layers", "--backbone", "sd21-base", "--filter", "mid-vit-block0-cross-map"});
  EXPECT_NE(r.out.find("[20, 64, 77]"), std::string::npos) << r.out;
  r = run_goca_bench_in_process({"list-layers", "--backbone", "pixart-alpha", "--filter", "vit-block0-cross-map"});
  EXPECT_NE(r.out.find("[16, 4096, 120]"), std::string::npos) << r.out;
  r = run_goca_bench_in_process({"list-layers", "--backbone", "pixart-sigma-512", "--filter", "vit-block0-cross-map"});
  EXPECT_NE(r.out.find("[16, 1024, 300]"), std::string::npos) << r.out;
  r = run_goca_bench_in_process({"list-layers", "--backbone", "sd35-medium", "--filter", "vit-block23-cross-map"});
  EXPECT_NE(r.out.find("[24, 4096, 333]"), std::string::npos) << r.out;
  r = run_goca_bench_in_process({"list-layers", "--backbone", "sd35-large", "--filter", "-cross-map"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 38) << r.out;
  for (const auto& [kind, k] : fx().kinds) {
    r = run_goca_bench_in_process(
        {"list-layers", "--weights", k.folder, "--image-size", "16", "--filter", k.cross_key});
    ASSERT_EQ(r.code, 0) << kind << r.out;
    EXPECT_NE(r.out.find(k.cross_key), std::string::npos) << kind << r.out;
  }
}

// One capture from token ids per kind: the detected kind, the cross map's shape, the recorded inputs.
TEST(NewBackbonesCli, CaptureFromTokenIds) {
  for (const auto& [kind, k] : fx().kinds) {
    SCOPED_TRACE(kind);
    const std::string out = (fx().dir / (kind + ".safetensors")).string();
    std::vector<std::string> a = {"capture",      "--weights", k.folder, "--image", fx().image,
                                  "--image-size", "16",        "--seed", "4",       "--layers",
                                  k.cross_key,    "--out",     out};
    a.insert(a.end(), k.ids.begin(), k.ids.end());
    auto r = run_goca_bench_in_process(a);
    ASSERT_EQ(r.code, 0) << r.out;
    auto t = gb::load_safetensors(out);
    EXPECT_EQ(t.at(k.cross_key).sizes().vec(), k.cross_shape);
    EXPECT_TRUE(t.count("input.latents"));
  }
  // The micro-conditions of PixArt-alpha are recorded with its inputs.
  auto t = gb::load_safetensors((fx().dir / "pixart-alpha.safetensors").string());
  EXPECT_TRUE(t.count("input.resolution"));
  // SD3.5 needs both id sequences.
  auto r = run_goca_bench_in_process({"capture", "--weights", fx().kinds.at("sd35-medium").folder, "--image",
                                      fx().image, "--image-size", "16", "--layers", "vit-block0-cross-map",
                                      "--token-ids", "5,1", "--out", (fx().dir / "x.safetensors").string()});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--clip-token-ids"), std::string::npos) << r.out;
}

// `memory --weights`: the kind is detected and its weights are the planner's exact header bytes.
TEST(NewBackbonesCli, MemoryOnTinyFolders) {
  for (const auto& [kind, k] : fx().kinds) {
    SCOPED_TRACE(kind);
    auto r = run_goca_bench_in_process({"memory", "--weights", k.folder, "--layers", "*-cross-map", "--image-size",
                                        "16", "--dtype", "fp32", "--json"});
    ASSERT_EQ(r.code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["backbone"], kind);
    int64_t total = 0;
    for (const auto& c : gb::bb::plan_weights(kind, k.folder, at::kFloat, false)) total += c.bytes;
    EXPECT_EQ(j["plans"][0]["weight_bytes"].get<int64_t>(), total);
    EXPECT_GT(j["plans"][0]["capture_bytes"].get<int64_t>(), 0);
  }
  // Full-size plans of each kind at its defaults.
  for (const char* kind : {"sd21", "sd21-base", "pixart-alpha", "pixart-sigma-512", "sd35-medium", "sd35-large"}) {
    auto r = run_goca_bench_in_process({"memory", "--backbone", kind, "--layers", "*-cross-map", "--json"});
    ASSERT_EQ(r.code, 0) << kind << r.out;
  }
}

// Every preset of configs/methods/<kind>/ asks only for layers the kind's full-size graph has.
TEST(NewBackbonesCli, PresetLayersExistInTheFullSizeGraphs) {
  for (const char* kind : {"sd21", "sd21-base", "pixart-alpha", "pixart-sigma-512", "sd35-medium", "sd35-large"}) {
    std::set<std::string> have;
    for (const auto& l : gb::bb::backbone_kind(kind).layers(gb::bb::BackboneOptions{}, std::nullopt))
      have.insert(l.name);
    EXPECT_EQ(gb::test::expect_presets_capture_only(kind, have), 2) << kind;
  }
}
