#include "../test_support.h"
#include "harness/backbones/registry.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/core/errors.h"
#include "tiny_sd.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace gb::bb;

namespace {

struct TinyFolders {
  fs::path base;
  std::string sd15, sdxl;
  TinyFolders() {
    base = fs::temp_directory_path() / ("gb_tiny_sd_" + std::to_string(::getpid()));
    fs::remove_all(base);
    sd15 = tiny::write_tiny_sd(base / "sd15", false);
    sdxl = tiny::write_tiny_sd(base / "sdxl", true);
  }
  ~TinyFolders() { fs::remove_all(base); }
};

const TinyFolders& folders() {
  static TinyFolders f;
  return f;
}

BackboneOptions tiny_options() {
  BackboneOptions o;
  o.image_size = 16;
  return o;
}

std::vector<at::Tensor> images(int n, int seed) {
  std::vector<at::Tensor> out;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (int i = 0; i < n; ++i) out.push_back(at::randint(0, 256, {20 + i, 24, 3}, gen, at::kByte));
  return out;
}

gb::CaptureSpec all_keys(const gb::Backbone& b, bool head_mean = false) {
  gb::CaptureSpec s;
  for (const auto& l : b.list_layers()) s.add(l.name);
  s.self_map_head_mean = head_mean;
  return s;
}

}  // namespace

TEST(SdBackbone, DetectsKindFromWeights) {
  EXPECT_EQ(detect_backbone_kind(folders().sd15), "sd15");
  EXPECT_EQ(detect_backbone_kind(folders().sdxl), "sdxl");
}

TEST(SdBackbone, ModelIndexDisagreeingWithWeightsIsAnError) {
  auto dir = folders().base / "mismatch";
  fs::copy(folders().sd15, dir, fs::copy_options::recursive);
  tiny::write_json(dir / "model_index.json", {{"_class_name", "StableDiffusionXLPipeline"}});
  auto msg = gb::test::user_error_message([&] { detect_backbone_kind(dir.string()); });
  EXPECT_NE(msg.find("model_index.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sd15"), std::string::npos) << msg;
  EXPECT_NE(gb::test::user_error_message([&] { open_backbone(folders().sd15, tiny_options(), "sdxl"); }), "");
}

TEST(SdBackbone, StrictLoadingListsEveryBadKey) {
  auto dir = folders().base / "badkeys";
  fs::copy(folders().sd15, dir, fs::copy_options::recursive);
  auto file = (dir / "unet" / "diffusion_pytorch_model.safetensors").string();
  auto t = gb::load_safetensors(file);
  t.erase("mid_block.attentions.0.proj_in.bias");
  t["conv_in.weight"] = at::zeros({16, 4, 1, 1});
  t["not.a.unet.key"] = at::zeros({2});
  gb::save_safetensors(file, t);
  auto msg = gb::test::user_error_message([&] { open_backbone(dir.string(), tiny_options()); });
  EXPECT_NE(msg.find("1 missing, 1 mis-shaped, 1 unexpected"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mid_block.attentions.0.proj_in.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conv_in.weight is [16, 4, 1, 1], expected [16, 4, 3, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not.a.unet.key"), std::string::npos) << msg;
}

TEST(SdBackbone, PaperLayerListsFromConfigs) {
  BackboneOptions o;
  auto sd15 = backbone_kind("sd15").layers(o, std::nullopt);
  auto sdxl = backbone_kind("sdxl").layers(o, std::nullopt);
  auto find = [](const std::vector<gb::LayerInfo>& v, const std::string& n) -> std::vector<int64_t> {
    for (const auto& l : v)
      if (l.name == n) return l.shape;
    return {};
  };
  int sd15_maps = 0, sdxl_maps = 0;
  for (const auto& l : sd15) sd15_maps += l.name.size() > 10 && l.name.find("-cross-map") != std::string::npos;
  for (const auto& l : sdxl) sdxl_maps += l.name.find("-cross-map") != std::string::npos;
  EXPECT_EQ(sd15_maps, 16);
  EXPECT_EQ(sdxl_maps, 70);
  EXPECT_EQ(find(sd15, "up-level2-repeat1-vit-block0-cross-q"), (std::vector<int64_t>{640, 32, 32}));
  EXPECT_EQ(find(sd15, "down-level0-repeat1-vit-block0-self-map"), (std::vector<int64_t>{8, 4096, 4096}));
  EXPECT_EQ(find(sd15, "mid-vit-block0-cross-map"), (std::vector<int64_t>{8, 64, 77}));
  EXPECT_EQ(find(sd15, "down-level2-repeat0-vit-block0-cross-special-value"), (std::vector<int64_t>{8, 77, 160}));
  EXPECT_EQ(find(sdxl, "up-level1-repeat0-vit-block0-cross-q"), (std::vector<int64_t>{640, 64, 64}));
  EXPECT_EQ(find(sdxl, "mid-vit-block9-cross-map"), (std::vector<int64_t>{20, 1024, 77}));
  EXPECT_EQ(find(sdxl, "up-level0-repeat2-vit-block9-cross-special-post-value"), (std::vector<int64_t>{1024, 1280}));
  EXPECT_EQ(find(sdxl, "down-level1-repeat1-vit-block1-cross-special-weight"), (std::vector<int64_t>{640, 640}));
  EXPECT_TRUE(find(sdxl, "down-level0-repeat0-vit-block0-cross-map").empty());
}

TEST(SdBackbone, CapturesEveryListedKeyWithItsShape) {
  for (const auto* dir : {&folders().sd15, &folders().sdxl}) {
    auto bb = open_backbone(*dir, tiny_options());
    auto& sd = dynamic_cast<StableDiffusionBackbone&>(*bb);
    auto spec = all_keys(sd);
    auto cap = sd.capture_ids(images(2, 1), tiny::tiny_ids({{5, 6}, {7}}), {"a", "b"}, 0, spec);
    EXPECT_EQ(cap.tensors.size(), spec.keys.size());
    for (const auto& l : sd.list_layers()) {
      ASSERT_TRUE(cap.has(l.name)) << l.name;
      auto shape = l.shape;
      shape.insert(shape.begin(), 2);
      EXPECT_EQ(cap.at(l.name).sizes().vec(), shape) << l.name;
      EXPECT_TRUE(at::isfinite(cap.at(l.name).to(at::kFloat)).all().item<bool>()) << l.name;
    }
    auto maps = cap.at(sd.list_layers()[0].name);  // first self map: rows sum to 1
    EXPECT_TRUE(at::allclose(maps.sum(-1), at::ones_like(maps.sum(-1)), 1e-5, 1e-5));
    EXPECT_EQ(cap.inputs.at("input.latents").sizes().vec(), (std::vector<int64_t>{2, 4, 8, 8}));
    EXPECT_EQ(cap.inputs.at("input.encoder_hidden_states").size(1), 12);
    if (sd.kind() == "sdxl") {
      EXPECT_EQ(cap.inputs.at("input.text_embeds").sizes().vec(), (std::vector<int64_t>{2, 16}));
      EXPECT_EQ(cap.inputs.at("input.time_ids")[0][0].item<double>(), 16.0);
      EXPECT_DOUBLE_EQ(cap.inputs.at("input.timestep")[0].item<double>(), 100.0);
    } else {
      EXPECT_EQ(cap.inputs.at("input.timestep")[0].item<int64_t>(), 101);
    }
  }
}

TEST(SdBackbone, SelfMapHeadMeanIsTheMeanOfHeads) {
  auto bb = open_backbone(folders().sd15, tiny_options());
  auto& sd = dynamic_cast<StableDiffusionBackbone&>(*bb);
  gb::CaptureSpec full, mean;
  full.add("mid-vit-block0-self-map");
  mean.add("mid-vit-block0-self-map");
  mean.self_map_head_mean = true;
  auto ids = tiny::tiny_ids({{5}});
  auto a = sd.capture_ids(images(1, 2), ids, {"x"}, 1, full).at("mid-vit-block0-self-map");
  auto b = sd.capture_ids(images(1, 2), ids, {"x"}, 1, mean).at("mid-vit-block0-self-map");
  EXPECT_EQ(b.size(1), 1);
  EXPECT_TRUE(at::allclose(a.mean(1, true), b, 1e-6, 1e-6));
}

TEST(SdBackbone, BatchEqualsSinglesAndNoiseIsSeededPerImageId) {
  for (const auto* dir : {&folders().sd15, &folders().sdxl}) {
    auto bb = open_backbone(*dir, tiny_options());
    auto& sd = dynamic_cast<StableDiffusionBackbone&>(*bb);
    auto spec = all_keys(sd, true);
    auto imgs = images(3, 4);
    auto ids = tiny::tiny_ids({{5, 6}, {7}, {8, 9, 10}});
    auto batch = sd.capture_ids(imgs, ids, {"i0", "i1", "i2"}, 11, spec);
    // Reversed order, one at a time.
    for (int i = 2; i >= 0; --i) {
      auto one = sd.capture_ids({imgs[i]}, ids.narrow(0, i, 1), {"i" + std::to_string(i)}, 11, spec);
      // Batched GEMMs/convolutions may block differently: equal to float rounding, not bit-exact.
      for (const auto& [k, v] : one.tensors) {
        auto a = v[0], b = batch.at(k)[i];
        double err = (a - b).abs().max().item<double>() / std::max(1e-6, b.abs().max().item<double>());
        EXPECT_LT(err, 1e-5) << k << " image " << i;
      }
      EXPECT_TRUE(at::allclose(one.inputs.at("input.latents")[0], batch.inputs.at("input.latents")[i], 1e-5, 1e-5));
    }
    auto again = sd.capture_ids(imgs, ids, {"i0", "i1", "i2"}, 11, spec);
    for (const auto& [k, v] : again.tensors) EXPECT_TRUE(at::equal(v, batch.at(k))) << k;
    auto other_seed = sd.capture_ids(imgs, ids, {"i0", "i1", "i2"}, 12, spec);
    EXPECT_FALSE(at::equal(other_seed.inputs.at("input.latents"), batch.inputs.at("input.latents")));
    auto renamed = sd.capture_ids(imgs, ids, {"j0", "i1", "i2"}, 11, spec);
    EXPECT_FALSE(at::equal(renamed.inputs.at("input.latents")[0], batch.inputs.at("input.latents")[0]));
    EXPECT_TRUE(at::equal(renamed.inputs.at("input.latents")[1], batch.inputs.at("input.latents")[1]));
  }
}

TEST(SdBackbone, UnknownCaptureKeyIsAUserError) {
  auto bb = open_backbone(folders().sd15, tiny_options());
  auto& sd = dynamic_cast<StableDiffusionBackbone&>(*bb);
  gb::CaptureSpec s;
  s.add("down-level3-repeat0-vit-block0-cross-map");
  auto msg = gb::test::user_error_message([&] { sd.capture_ids(images(1, 0), tiny::tiny_ids({{5}}), {"a"}, 0, s); });
  EXPECT_NE(msg.find("down-level3-repeat0-vit-block0-cross-map"), std::string::npos) << msg;
}

TEST(SdBackbone, MapsArePathIndependent) {
  // The explicit-softmax path (maps requested) and the fused path must give the same denoiser output
  // downstream: capture a late key with and without the early maps.
  auto bb = open_backbone(folders().sd15, tiny_options());
  auto& sd = dynamic_cast<StableDiffusionBackbone&>(*bb);
  gb::CaptureSpec late, both;
  late.add("up-level1-repeat1-vit-block0-cross-special-post-value");
  both = late;
  both.add("down-level0-repeat0-vit-block0-self-map");
  both.add("down-level0-repeat0-vit-block0-cross-map");
  auto ids = tiny::tiny_ids({{5}});
  auto a = sd.capture_ids(images(1, 3), ids, {"x"}, 0, late);
  auto b = sd.capture_ids(images(1, 3), ids, {"x"}, 0, both);
  auto k = "up-level1-repeat1-vit-block0-cross-special-post-value";
  EXPECT_TRUE(at::allclose(a.at(k), b.at(k), 1e-5, 1e-6));
}

TEST(SdBackbone, ReducedPrecisionRunsCloseToFp32) {
  auto o16 = tiny_options();
  o16.dtype = at::kHalf;  // CPU fp16 is refused with a clear message (CUDA runs it: the paper's dtype)
  EXPECT_NE(gb::test::user_error_message([&] { open_backbone(folders().sdxl, o16); }).find("fp16 on the CPU"),
            std::string::npos);
  auto obf = tiny_options();
  obf.dtype = at::kBFloat16;
  auto b32 = open_backbone(folders().sdxl, tiny_options());
  auto bbf = open_backbone(folders().sdxl, obf);
  auto& s32 = dynamic_cast<StableDiffusionBackbone&>(*b32);
  auto& sbf = dynamic_cast<StableDiffusionBackbone&>(*bbf);
  EXPECT_EQ(sbf.dtype(), at::kBFloat16);
  EXPECT_EQ(sbf.vae_dtype(), at::kFloat);  // force_upcast, as the SDXL pipeline
  gb::CaptureSpec spec;
  spec.add("mid-vit-block1-cross-map");
  spec.add("up-level0-repeat1-vit-block1-cross-q");
  auto ids = tiny::tiny_ids({{5, 6}});
  auto cbf = sbf.capture_ids(images(1, 9), ids, {"a"}, 1, spec);
  auto c32 = s32.capture_ids(images(1, 9), ids, {"a"}, 1, spec);
  for (const auto& k : spec.keys) {
    EXPECT_EQ(cbf.at(k).scalar_type(), at::kBFloat16) << k;
    auto a = cbf.at(k).to(at::kFloat), b = c32.at(k);
    double err = (a - b).abs().max().item<double>() / b.abs().max().item<double>();
    EXPECT_LT(err, 0.05) << k;
    EXPECT_GT(err, 0.0) << k;  // it really ran in bf16
  }
}

TEST(SdBackbone, UnsupportedConfigValuesAreErrorsNamingFileAndField) {
  auto dir = folders().base / "badcfg";
  fs::copy(folders().sd15, dir, fs::copy_options::recursive);
  auto cfg = tiny::tiny_unet_json(false);
  cfg["center_input_sample"] = true;  // (upcast_attention is supported: SD 2.1 768-v)
  tiny::write_json(dir / "unet" / "config.json", cfg);
  auto msg = gb::test::user_error_message([&] { open_backbone(dir.string(), tiny_options()); });
  EXPECT_NE(msg.find("unet/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("center_input_sample"), std::string::npos) << msg;
  cfg = tiny::tiny_unet_json(false);
  cfg["layers_per_block"] = "two";
  tiny::write_json(dir / "unet" / "config.json", cfg);
  msg = gb::test::user_error_message([&] { open_backbone(dir.string(), tiny_options()); });
  EXPECT_NE(msg.find("layers_per_block"), std::string::npos) << msg;
}

// The folder's tokenizer/ is attached (pad token from special_tokens_map.json, max length from the text encoder).
TEST(SdBackbone, LoadsTheFolderTokenizer) {
  auto dir = folders().base / "withtok";
  fs::copy(folders().sd15, dir, fs::copy_options::recursive);
  fs::create_directories(dir / "tokenizer");
  // merges.txt from the shared CLIP BPE file (gunzipped by the test).
  auto gz = std::string(GB_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz";
  ASSERT_EQ(std::system(("gzip -dc " + gz + " > " + (dir / "tokenizer" / "merges.txt").string()).c_str()), 0);
  tiny::write_json(dir / "tokenizer" / "special_tokens_map.json", {{"pad_token", "<|endoftext|>"}});
  auto bb = open_backbone(dir.string(), tiny_options());
  const auto& tok = bb->tokenizer();
  EXPECT_EQ(tok.name(), "clip");
  EXPECT_EQ(tok.max_length(), 12);
  auto t = tok.encode("a photo of a cat");
  ASSERT_EQ(t.size(), 12u);
  EXPECT_EQ(t.front().id, 49406);
  EXPECT_EQ(t.back().id, 49407);
  auto no_tok = open_backbone(folders().sd15, tiny_options());
  EXPECT_NE(gb::test::user_error_message([&] { no_tok->tokenizer(); }).find("tokenizer"), std::string::npos);
}
