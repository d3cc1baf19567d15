// SD3.5 (Medium / Large): the SD3Transformer2DModel at parity with diffusers 0.32.2 on a tiny SD3.5-Medium-like
// config (tools/parity/sd3_goldens.py: qk RMSNorm, a dual-attention layer, the context_pre_only last layer, the
// stored position table cropped), the Flux-style captures, the flow-matching img2img noising against the real
// scheduler, the full-size graphs, and the backbone on a tiny folder (detection, text layout, capture replay).
#include "dit_test_util.h"
#include "full_size_graph.h"
#include "tiny_dit.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/recorder.h"
#include "harness/backbones/sd3_backbone.h"
#include "harness/backbones/sd3_transformer.h"
#include "harness/core/errors.h"

#include <iostream>

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {

Sd3Inputs inputs(const std::map<std::string, at::Tensor>& g) {
  return {g.at("input.latents"), g.at("input.timestep"), g.at("input.encoder_hidden_states"),
          g.at("input.pooled_projections")};
}

}  // namespace

TEST(Sd3Transformer, OutputAndCapturesMatchDiffusers) {
  auto g = dit_test::golden("sd3");
  auto m = Sd3Transformer::load(dit_test::golden_dir("sd3"), at::kFloat, at::kCPU);
  EXPECT_TRUE(m->config().dual(0));
  EXPECT_FALSE(m->config().dual(1));
  const gb::CaptureSpec spec =
      dit_test::golden_capture_spec(g, [](const std::string& k) { return k.find("-dual") == std::string::npos; });
  ASSERT_EQ(spec.keys.size(), 3u * 6u);
  gb::Capture cap;
  CaptureRecorder rec(spec, cap);
  dit_test::expect_close((*m)(inputs(g), &rec), g.at("output"), "output");
  EXPECT_TRUE(rec.unrecorded().empty());
  const double worst = dit_test::expect_golden_captures(cap, g, spec);
  std::cout << "sd3: " << spec.keys.size() << " captured tensors compared, worst max relative error " << worst
            << " (output " << dit_test::rel_err((*m)(inputs(g), nullptr), g.at("output")) << ")\n";
  // Fused-attention path (nothing captured) gives the same output; early stop returns nothing.
  dit_test::expect_close((*m)(inputs(g), nullptr), g.at("output"), "output, fused attention");
  gb::CaptureSpec one;
  one.add("vit-block0-self-map");
  one.self_map_head_mean = true;
  gb::Capture c1;
  CaptureRecorder r1(one, c1);
  EXPECT_FALSE((*m)(inputs(g), &r1, false).defined());
  dit_test::expect_close(c1.tensors.at("vit-block0-self-map"), g.at("capture.vit-block0-self-map").mean(1, true),
                         "head-mean self map");
}

TEST(Sd3Transformer, CaptureLayerTable) {
  auto pts = sd3_capture_layers(Sd3Config::sd35_large(), 4096, 333);
  EXPECT_EQ(pts.size(), 38u * 6u);
  EXPECT_EQ(pts[0].name, "vit-block0-cross-map");
  EXPECT_EQ(pts[0].shape, (std::vector<int64_t>{38, 4096, 333}));
  EXPECT_EQ(pts[2].name, "vit-block0-attn-out");
  EXPECT_EQ(pts[2].shape, (std::vector<int64_t>{2432, 64, 64}));
}

TEST(Sd3Transformer, FlowMatchingNoisingMatchesTheScheduler) {
  auto g = dit_test::golden("sd3");
  FlowMatchSchedulerConfig c;
  c.use_dynamic_shifting = false;
  c.shift = 3.0;
  for (const auto& [steps, t] : {std::pair{50, 150}, std::pair{28, 150}, std::pair{50, 100}}) {
    const std::string tag = "sched." + std::to_string(steps) + "_" + std::to_string(t) + ".";
    auto p = plan_sd3_noising(c, t, steps);
    EXPECT_EQ(p.t_start, g.at(tag + "t_start")[0].item<int64_t>()) << tag;
    EXPECT_EQ(p.sigma, g.at(tag + "sigma")[0].item<float>()) << tag;
    EXPECT_EQ(p.timestep, g.at(tag + "timestep")[0].item<float>()) << tag;
    dit_test::expect_close(p.apply(g.at(tag + "z0"), g.at(tag + "eps")), g.at(tag + "noisy"), tag + "noisy", 1e-6);
  }
  EXPECT_THROW(plan_sd3_noising(c, 0, 50), gb::UserError);
}

TEST(Sd3Transformer, FullSizeGraphsMatchDiffusers) {
  auto want = read_json_file(dit_test::golden_dir("sd3_full_size.json"));
  for (const auto& named :
       {std::pair{"sd35_medium", Sd3Config::sd35_medium()}, std::pair{"sd35_large", Sd3Config::sd35_large()}}) {
    const Sd3Config& cfg = named.second;
    gb::test::expect_full_size_graph(want, named.first, [&](WeightStore& ws) { Sd3Transformer m(ws, cfg); });
  }
}

struct Sd3Folder : ::testing::Test {
  fs::path root = fs::temp_directory_path() / "gb_tiny_sd3_test";
  void SetUp() override {
    fs::remove_all(root);
    gb::bb::tiny::write_tiny_sd3(root);
  }
  void TearDown() override { fs::remove_all(root); }
  std::unique_ptr<Sd3Backbone> open() {
    BackboneOptions o;
    o.image_size = 16;
    o.tokenizer = std::make_shared<gb::bb::tiny::WordTokenizer>("t5", 6, false, 40);
    auto bb = std::unique_ptr<Sd3Backbone>(dynamic_cast<Sd3Backbone*>(open_backbone(root.string(), o).release()));
    bb->set_clip_tokenizer(std::make_shared<gb::bb::tiny::WordTokenizer>("clip", 12, true, 990));
    return bb;
  }
};

TEST_F(Sd3Folder, DetectedCapturedAndReplayable) {
  EXPECT_EQ(detect_backbone_kind(root.string()), "sd35-medium");
  auto bb = open();
  ASSERT_TRUE(bb);
  EXPECT_EQ(bb->tokenizer().max_length(), 18);          // 12 CLIP + 6 T5
  EXPECT_NEAR(bb->noising().timestep, 337.97f, 0.01f);  // t = 150 over 50 steps
  gb::BackboneBatch batch;
  batch.images = {gb::bb::tiny::random_image(20, 18, 1), gb::bb::tiny::random_image(17, 23, 2)};
  batch.prompts = {"a cat on a road", "sky"};
  batch.ids = {"a", "b"};
  batch.seed = 9;
  gb::CaptureSpec spec;
  for (const auto& l : bb->list_layers()) spec.add(l.name);
  auto cap = bb->capture(batch, spec);
  EXPECT_EQ(cap.tensors.at("vit-block1-cross-map").sizes(), at::IntArrayRef({2, 2, 16, 18}));
  EXPECT_EQ(cap.tensors.at("vit-block0-attn-out").sizes(), at::IntArrayRef({2, 16, 4, 4}));
  // The joint text: CLIP-L|G states zero-padded to 32 for the 12 CLIP positions, then T5.
  const auto& ehs = cap.inputs.at("input.encoder_hidden_states");
  EXPECT_EQ(ehs.sizes(), at::IntArrayRef({2, 18, 32}));
  EXPECT_EQ(cap.inputs.at("input.pooled_projections").sizes(), at::IntArrayRef({2, 16}));
  // Replaying the recorded inputs through the transformer reproduces the captures.
  gb::Capture again;
  CaptureRecorder rec(spec, again);
  Sd3Inputs in{cap.inputs.at("input.latents"), cap.inputs.at("input.timestep"), ehs,
               cap.inputs.at("input.pooled_projections")};
  bb->transformer()(in, &rec);
  for (const auto& [k, v] : cap.tensors) EXPECT_TRUE(at::allclose(v, again.tensors.at(k))) << k;
  // Large is told apart by the missing dual attention.
  EXPECT_EQ(backbone_kind("sd35-large").layers(BackboneOptions{}, std::nullopt).size(), 38u * 6u);
  EXPECT_EQ(backbone_kind("sd35-medium").layers(BackboneOptions{}, std::nullopt)[0].shape,
            (std::vector<int64_t>{24, 4096, 333}));
}
