// PixArt-alpha XL-2-1024-MS and PixArt-Sigma XL-2-512-MS: the micro-conditioned transformer at parity with
// diffusers 0.32.2 (tools/parity/pixart_alpha_goldens.py), the full-size graphs, and the three PixArt kinds'
// detection, defaults and capture on tiny folders.
#include "dit_fixtures.h"
#include "dit_test_util.h"
#include "full_size_graph.h"

#include "harness/backbones/json_config.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/pixart_transformer.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"

#include <fstream>

#include <iostream>

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {

PixArtInputs alpha_inputs(const std::map<std::string, at::Tensor>& g) {
  PixArtInputs in = dit_test::pixart_inputs(g);
  in.resolution = g.at("input.resolution");
  in.aspect_ratio = g.at("input.aspect_ratio");
  return in;
}

void expect_graph(const std::string& name, const PixArtConfig& cfg) {
  gb::test::expect_full_size_graph(read_json_file(dit_test::golden_dir("pixart_full_size.json")), name,
                                   [&](WeightStore& ws) { PixArtTransformer m(ws, cfg); });
}

// Rewrites the tiny folder's transformer as `patch` says (and fresh weights for it).
void patch_transformer(const fs::path& root, const nlohmann::json& patch) {
  auto cfg = read_json_file((root / "transformer" / "config.json").string());
  cfg.merge_patch(patch);
  gb::bb::tiny::write_json(root / "transformer" / "config.json", cfg);
  auto ws = WeightStore::random_init(31, 0.15, at::kFloat, at::Device(at::kCPU));
  PixArtTransformer m(ws, PixArtConfig::from_json((root / "transformer" / "config.json").string()));
  gb::save_safetensors((root / "transformer" / "diffusion_pytorch_model.safetensors").string(), ws.tensors());
}

gb::BackboneBatch one_image() {
  gb::BackboneBatch b;
  b.images.push_back(gb::bb::tiny::random_image(20, 18, 7));
  b.prompts.push_back("a cat on a road");
  b.ids.push_back("img0");
  b.seed = 3;
  return b;
}

}  // namespace

TEST(PixArtAlpha, MicroConditionedTransformerMatchesDiffusers) {
  auto g = dit_test::golden("pixart_alpha");
  auto m = PixArtTransformer::load(dit_test::golden_dir("pixart_alpha"), at::kFloat, at::kCPU);
  EXPECT_TRUE(m->config().use_additional_conditions);
  const gb::CaptureSpec spec = dit_test::golden_capture_spec(g);
  ASSERT_EQ(spec.keys.size(), 2u * 2u * 5u);
  gb::Capture cap;
  CaptureRecorder rec(spec, cap);
  dit_test::expect_close((*m)(alpha_inputs(g), &rec), g.at("output"), "output");
  const double worst = dit_test::expect_golden_captures(cap, g, spec);
  std::cout << "pixart-alpha: " << spec.keys.size() << " captured tensors compared, worst max relative error " << worst
            << "\n";
  // The micro-conditions are live: another resolution, another output.
  auto in = alpha_inputs(g);
  in.resolution = in.resolution * 2;
  dit_test::expect_close((*m)(in, nullptr), g.at("output.resolution128"), "output at resolution 128");
  in.resolution = at::Tensor();
  EXPECT_THROW((*m)(in, nullptr), gb::UserError);
}

TEST(PixArtAlpha, FullSizeGraphsMatchDiffusers) {
  const auto alpha = PixArtConfig::alpha_xl_2_1024_ms();
  EXPECT_TRUE(alpha.use_additional_conditions);
  expect_graph("pixart_alpha_xl_2_1024_ms", alpha);
  const auto s512 = PixArtConfig::sigma_xl_2_512();
  EXPECT_EQ(s512.sample_size, 64);
  EXPECT_DOUBLE_EQ(s512.interpolation_scale, 1.0);
  expect_graph("pixart_sigma_xl_2_512_ms", s512);
}

TEST(PixArtAlpha, PresetLayerTablesPerKind) {
  BackboneOptions o;
  auto alpha = backbone_kind("pixart-alpha").layers(o, std::nullopt);  // 1024², 120 tokens
  ASSERT_EQ(alpha.size(), 28u * 2u * 5u);
  EXPECT_EQ(alpha[0].shape, (std::vector<int64_t>{16, 4096, 120}));
  auto s512 = backbone_kind("pixart-sigma-512").layers(o, std::nullopt);  // 512², 300 tokens
  EXPECT_EQ(s512[0].shape, (std::vector<int64_t>{16, 1024, 300}));
  EXPECT_EQ(pixart_text_length(PixArtVariant::alpha), 120);
  EXPECT_EQ(pixart_text_length(PixArtVariant::sigma_512), 300);
}

struct PixArtVariantFolder : gb::bb::tiny::PixArtFolderTest {};

TEST_F(PixArtVariantFolder, Sigma512IsDetectedFromSampleSize) {
  patch_transformer(root, {{"sample_size", 64}, {"interpolation_scale", 1}});
  EXPECT_EQ(detect_backbone_kind(root.string()), "pixart-sigma-512");
  auto bb = open_backbone(root.string(), options());
  EXPECT_EQ(bb->kind(), "pixart-sigma-512");
  gb::CaptureSpec spec;
  spec.add("vit-block0-cross-map");
  auto cap = bb->capture(one_image(), spec);
  EXPECT_EQ(cap.tensors.at("vit-block0-cross-map").sizes(), at::IntArrayRef({1, 2, 16, 7}));
  // Without an explicit size the backbone runs at the kind's default (512², the published sample_size 64 x 8).
  BackboneOptions o = options();
  o.image_size.reset();
  PixArtSigmaBackbone d(CheckpointFolder(root.string()), o, PixArtVariant::sigma_512);
  EXPECT_EQ(d.image_size(), 512);
  EXPECT_EQ(backbone_kind("pixart-sigma-512").defaults.image_size, 512);
  EXPECT_EQ(backbone_kind("pixart-alpha").defaults.text_length, 120);
}

TEST_F(PixArtVariantFolder, AlphaIsDetectedAndPassesTheMicroConditions) {
  patch_transformer(root,
                    {{"attention_head_dim", 12}, {"cross_attention_dim", 24}, {"use_additional_conditions", true}});
  gb::bb::tiny::write_json(root / "model_index.json", {{"_class_name", "PixArtAlphaPipeline"}});
  EXPECT_EQ(detect_backbone_kind(root.string()), "pixart-alpha");
  auto bb = open_backbone(root.string(), options());
  EXPECT_EQ(bb->kind(), "pixart-alpha");
  gb::CaptureSpec spec;
  spec.add("vit-block1-cross-map");
  auto cap = bb->capture(one_image(), spec);
  EXPECT_TRUE(at::equal(cap.inputs.at("input.resolution"), at::tensor({16.0f, 16.0f}).view({1, 2})));
  EXPECT_TRUE(at::equal(cap.inputs.at("input.aspect_ratio"), at::ones({1, 1})));
  // The same folder named a Sigma pipeline contradicts its weights.
  gb::bb::tiny::write_json(root / "model_index.json", {{"_class_name", "PixArtSigmaPipeline"}});
  EXPECT_THROW(detect_backbone_kind(root.string()), gb::UserError);
}
