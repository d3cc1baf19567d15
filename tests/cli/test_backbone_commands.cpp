// `goca-bench list-layers` and `goca-bench capture` on a tiny random-weight SD1.5-like folder.
#include "../backbones/tiny_sd.h"
#include "cli_test_util.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

using Result = gb::test::CliResult;
Result run(const std::string& args) { return gb::test::run_goca_bench(args); }

struct Fixture {
  fs::path dir;
  std::string weights, image;
  Fixture() {
    dir = fs::temp_directory_path() / ("gb_cli_backbones_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    weights = gb::bb::tiny::write_tiny_sd(dir / "sd15", false);
    image = (dir / "img_0001.png").string();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    gb::write_png_rgb(image, at::randint(0, 256, {21, 30, 3}, gen, at::kByte));
  }
  ~Fixture() { fs::remove_all(dir); }
};

const Fixture& fx() {
  static Fixture f;
  return f;
}

}  // namespace

TEST(BackboneCli, ListLayersFromConfigs) {
  auto r = run("list-layers --backbone sd15 --filter -cross-map");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("up-level2-repeat1-vit-block0-cross-map  [8, 1024, 77]"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 16) << r.out;
  r = run("list-layers --backbone sdxl --filter up-level1-repeat0-vit-block0-cross-q");
  EXPECT_NE(r.out.find("[640, 64, 64]"), std::string::npos) << r.out;
  r = run("list-layers --weights " + fx().weights + " --image-size 16 --filter mid-vit-block0-self-map");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("mid-vit-block0-self-map  [2, 16, 16]"), std::string::npos) << r.out;
  r = run("list-layers --backbone nope");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("sd15"), std::string::npos) << r.out;
}

TEST(BackboneCli, CaptureWritesSegmentContractAndInputs) {
  auto out = (fx().dir / "cap.safetensors").string();
  auto r = run("capture --weights " + fx().weights + " --image " + fx().image +
               " --token-ids 998,5,6,999,999,999,999,999,999,999,999,999 --image-size 16 --seed 4"
               " --layers 'mid-vit-block0-*-map' up-level1-repeat1-vit-block0-cross-q --out " +
               out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto t = gb::load_safetensors(out);
  EXPECT_EQ(t.at("mid-vit-block0-cross-map").sizes().vec(), (std::vector<int64_t>{2, 16, 12}));
  EXPECT_EQ(t.at("mid-vit-block0-self-map").sizes().vec(), (std::vector<int64_t>{2, 16, 16}));
  EXPECT_EQ(t.at("up-level1-repeat1-vit-block0-cross-q").sizes().vec(), (std::vector<int64_t>{16, 8, 8}));
  EXPECT_EQ(t.at("input.latents").sizes().vec(), (std::vector<int64_t>{4, 8, 8}));
  EXPECT_EQ(t.at("input.timestep").item<int64_t>(), 101);
  EXPECT_EQ(t.at("input.encoder_hidden_states").sizes().vec(), (std::vector<int64_t>{12, 16}));
  EXPECT_EQ(t.size(), 6u);
  // Same seed, image id and capture set: identical. (Another capture set may differ in the last bits: layers that
  // are not captured run LibTorch's fused attention, captured ones the explicit softmax.)
  auto out2 = (fx().dir / "cap2.safetensors").string();
  run("capture --weights " + fx().weights + " --image " + fx().image +
      " --token-ids 998,5,6,999,999,999,999,999,999,999,999,999 --image-size 16 --seed 4"
      " --layers 'mid-vit-block0-*-map' up-level1-repeat1-vit-block0-cross-q --out " +
      out2);
  const auto t2 = gb::load_safetensors(out2);
  for (const auto& [key, value] : t) EXPECT_TRUE(at::equal(t2.at(key), value)) << key;
  // Only the cross map: the same noise, the same map up to the attention kernel's rounding.
  auto out3 = (fx().dir / "cap3.safetensors").string();
  run("capture --weights " + fx().weights + " --image " + fx().image +
      " --token-ids 998,5,6,999,999,999,999,999,999,999,999,999 --image-size 16 --seed 4"
      " --layers mid-vit-block0-cross-map --out " +
      out3);
  const auto t3 = gb::load_safetensors(out3);
  EXPECT_TRUE(at::equal(t3.at("input.latents"), t.at("input.latents")));
  EXPECT_TRUE(at::allclose(t3.at("mid-vit-block0-cross-map"), t.at("mid-vit-block0-cross-map"), 1e-5, 1e-6));
}

TEST(BackboneCli, CaptureBadInputIsOneLineExitTwo) {
  auto out = (fx().dir / "bad.safetensors").string();
  auto r = run("capture --weights " + fx().weights + " --image " + fx().image +
               " --token-ids 998,999 --image-size 16 --layers mid-vit-block7-cross-map --out " + out);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("mid-vit-block7-cross-map"), std::string::npos) << r.out;
  r = run("capture --weights " + (fx().dir / "nope").string() + " --image " + fx().image +
          " --token-ids 998 --layers x --out " + out);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nope"), std::string::npos) << r.out;
  r = run("capture --weights " + fx().weights + " --image " + fx().image +
          " --token-ids 998,999 --dtype fp8 --layers x --out " + out);
  EXPECT_EQ(r.code, 2) << r.out;
}

// --method captures exactly what the method reads (self maps as head means).
TEST(BackboneCli, CaptureForAMethodFile) {
  auto yaml = (fx().dir / "m.yaml").string();
  {
    std::ofstream f(yaml);
    f << "head_method: 'dot-product w/o clamp'\n"
         "layer_method: 'dot-product similarity'\n"
         "rescale_method: 'sum-1 rescaling + per-token renorm+'\n"
         "layers: [down-level0-repeat0-vit-block0-cross-map, up-level1-repeat1-vit-block0-cross-map]\n"
         "ref_layer: up-level1-repeat0-vit-block0-cross-q\n"
         "ref_mode: paper\n"
         "multi_token: mean\n"
         "output_size: 8\n"
         "self_layers: [up-level1-repeat0-vit-block0-self-map]\n"
         "propagation_order: 2\n";
  }
  auto out = (fx().dir / "m.safetensors").string();
  auto r = run("capture --weights " + fx().weights + " --image " + fx().image +
               " --token-ids 998,5,6,999,999,999,999,999,999,999,999,999 --image-size 16 --method " + yaml + " --out " +
               out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto t = gb::load_safetensors(out);
  EXPECT_EQ(t.at("down-level0-repeat0-vit-block0-cross-map").sizes().vec(), (std::vector<int64_t>{2, 64, 12}));
  EXPECT_EQ(t.at("up-level1-repeat0-vit-block0-cross-q").sizes().vec(), (std::vector<int64_t>{16, 8, 8}));
  EXPECT_EQ(t.at("up-level1-repeat0-vit-block0-self-map").sizes().vec(), (std::vector<int64_t>{1, 64, 64}));
  EXPECT_TRUE(t.count("down-level0-repeat0-vit-block0-cross-special-post-value"));
}
