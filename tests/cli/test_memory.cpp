// `goca-bench memory`: the table and --json runs for the shipped GoCA methods, the budget search, and bad input
// (exit 2 with one error line). In-process (gb::cli::run), as a user would see it.
#include "../backbones/tiny_dit.h"
#include "cli_test_util.h"

#include "harness/backbones/memory_plan.h"
#include "harness/io/image_io.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <unistd.h>
#include <vector>

namespace {

std::string method(const std::string& backbone) {
  return std::string(GB_SOURCE_DIR) + "/configs/methods/" + backbone + "/goca.yaml";
}

}  // namespace

TEST(MemoryCommand, TablePerBatchSize) {
  auto r = gb::test::run_goca_bench_in_process("memory --backbone flux --method " + method("flux") +
                                               " --batch-size 1,8 --budget-gb 80");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("== flux batch 1: compute bf16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== flux batch 8:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("11901408320"), std::string::npos) << r.out;  // transformer parameters
  EXPECT_NE(r.out.find("largest batch within 80.000 GB:"), std::string::npos) << r.out;
  // GoCA on Flux averages heads: its cross maps are stored as fp32 head means, so batch 8 fits (56 GB) ...
  EXPECT_EQ(r.out.find("does NOT fit"), std::string::npos) << r.out;
  // ... and with every head kept (61 GB of maps at batch 8) it does not.
  r = gb::test::run_goca_bench_in_process("memory --backbone flux --method " + method("flux") +
                                          " --batch-size 8 --budget-gb 80 --full-heads");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("does NOT fit"), std::string::npos) << r.out;
}

TEST(MemoryCommand, JsonKeysAndExactCaptureBytes) {
  auto r =
      gb::test::run_goca_bench_in_process("memory --backbone sd15 --method " + method("sd15") +
                                          " --batch-size 1 --batch-size 4 --text-encoder keep --budget-gb 24 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backbone"], "sd15");
  EXPECT_EQ(j["dtype"], "fp16");
  EXPECT_EQ(j["image_size"], 512);
  EXPECT_TRUE(j["self_map_head_mean"].get<bool>());
  EXPECT_FALSE(j["cross_map_head_mean"].get<bool>());  // sd15 GoCA weights heads: every head is kept
  ASSERT_EQ(j["plans"].size(), 2u);
  const auto& p1 = j["plans"][0];
  const auto& p4 = j["plans"][1];
  EXPECT_EQ(p1["batch_size"], 1);
  EXPECT_EQ(p4["capture_bytes"].get<int64_t>(), 4 * p1["capture_bytes"].get<int64_t>());
  int64_t sum = 0;
  for (const auto& c : p1["captures"]) sum += c["bytes"].get<int64_t>();
  EXPECT_EQ(sum, p1["capture_bytes"].get<int64_t>());
  EXPECT_EQ(p1["phases"].size(), 3u);
  EXPECT_EQ(p1["peak_bytes"].get<int64_t>(), [&] {
    int64_t m = 0;
    for (const auto& ph : p1["phases"]) m = std::max(m, ph["total"].get<int64_t>());
    return m;
  }());
  EXPECT_TRUE(p1["fits"].get<bool>());
  EXPECT_GE(j["max_batch_within_budget"].get<int64_t>(), 4);
}

TEST(MemoryCommand, LayersWithWildcards) {
  auto r = gb::test::run_goca_bench_in_process("memory --backbone pixart-sigma --layers vit-block1*-cross-map --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  // vit-block1 and vit-block10..19: 11 cross maps [1, 16, 4096, 300] in fp16.
  EXPECT_EQ(j["plans"][0]["capture_bytes"].get<int64_t>(), 11LL * 16 * 4096 * 300 * 2);
}

// --weights: the kind is detected, the folder's configs and headers are used, --image-size / --text-encoder apply.
TEST(MemoryCommand, TinyFolder) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("gb_memcli_" + std::to_string(::getpid()));
  fs::remove_all(root);
  gb::bb::tiny::write_tiny_flux(root);
  auto r = gb::test::run_goca_bench_in_process("memory --weights " + root.string() +
                                               " --layers *-cross-map --image-size 16 --dtype fp32 --text-encoder free"
                                               " --batch-size 3 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backbone"], "flux");
  EXPECT_EQ(j["weights_folder"], root.string());
  EXPECT_FALSE(j["t5_int8"].get<bool>());  // fp32 default
  const auto& p = j["plans"][0];
  const auto w = gb::bb::plan_weights("flux", root.string(), at::kFloat, false);
  int64_t total = 0, kept = 0;
  for (const auto& c : w) total += c.bytes, kept += c.text_encoder ? 0 : c.bytes;
  EXPECT_EQ(p["weight_bytes"].get<int64_t>(), total);
  EXPECT_EQ(p["phases"][2]["weights"].get<int64_t>(), kept);  // T5 and CLIP freed before the denoiser
  // 4 blocks x [3, 2 heads, 16 tokens, 512 text] fp32 (no tokenizer given: the pipeline's 512).
  EXPECT_EQ(p["capture_bytes"].get<int64_t>(), 4LL * 3 * 2 * 16 * 512 * 4);
  auto bad = gb::test::run_goca_bench_in_process("memory --weights " + root.string() + " --backbone sdxl --layers x");
  EXPECT_EQ(bad.code, 2) << bad.out;
  fs::remove_all(root);
}

TEST(MemoryCommand, BadInputExits2) {
  for (const std::string& args : std::vector<std::string>{
           std::string("memory --backbone flux"),          // no capture set
           "memory --backbone sd15 --layers no-such-key",  // unknown key
           "memory --backbone sd15 --method " + method("sd15") + " --batch-size 2,x",
           "memory --backbone sd15 --method " + method("sd15") + " --text-encoder free",  // CLIP stays resident
           "memory --backbone sdxl --method " + method("sdxl") + " --t5-int8 on",
           "memory --backbone flux --method " + method("flux") + " --image-size 1000",
           "memory --weights /nonexistent/folder --layers x"}) {
    auto r = gb::test::run_goca_bench_in_process(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("error"), std::string::npos) << args << "\n" << r.out;
  }
}

// The pre-flight of `capture` (issue: a tiny Flux-layout checkpoint whose VAE downsamples by 2 died inside
// LibTorch asking for 256 GiB at the default 1024²): refused before loading, exit 2, one line; `memory --device
// cpu` shows the same plan.
TEST(MemoryPreflight, CaptureRefusesWhatCannotFitBeforeLoading) {
  const std::string flux = std::string(GB_SOURCE_DIR) + "/tests/generation/golden/flux_tiny";
  const std::string image = (std::filesystem::temp_directory_path() / "gb_preflight.png").string();
  const at::Tensor px = at::full({16, 16, 3}, 100, at::kByte);
  gb::write_png_rgb(image, px);
  auto r = gb::test::run_goca_bench_in_process({"capture", "--weights", flux, "--image", image, "--prompt", "a cat",
                                                "--layers", "vit-block*-self-map", "--memory-budget-gb", "16", "--out",
                                                image + ".safetensors"});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("goca-bench: error: capture: planned "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16.00 GB (--memory-budget-gb)"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(image + ".safetensors"));
  auto m = gb::test::run_goca_bench_in_process(
      {"memory", "--weights", flux, "--device", "cpu", "--layers", "vit-block*-self-map", "--json"}, false);
  ASSERT_EQ(m.code, 0) << m.out;
  const auto j = nlohmann::json::parse(m.out);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["dtype"], "fp32");
  EXPECT_GT(j["plans"][0]["peak_bytes"].get<int64_t>(), int64_t(16e9));
}
