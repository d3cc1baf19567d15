// PixArt-Sigma backbone on a tiny random checkpoint folder: detection, loading, list-layers, capture names and
// shapes, the denoiser inputs it records (and that replaying them reproduces the captures), seeded determinism and
// batch-vs-single equality.
#include "dit_fixtures.h"
#include "dit_test_util.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {
struct PixArtFixture : tiny::PixArtFolderTest {
  gb::BackboneBatch batch(int n) {
    return dit_test::prompt_batch(
        {"A Cat, a dog", "sky road", "tree"}, n, [](int i) { return tiny::random_image(20 + i, 18, 100 + i); }, "img",
        5);
  }
  static gb::CaptureSpec goca_spec() {
    gb::CaptureSpec s;
    for (int i = 0; i < 2; ++i) {
      std::string id = "vit-block" + std::to_string(i);
      for (const char* t : {"-cross-map", "-cross-special-post-value", "-cross-special-weight", "-self-map"})
        s.add(id + t);
    }
    s.add("vit-block1-cross-q");
    s.self_map_head_mean = true;
    return s;
  }
};
}  // namespace

TEST_F(PixArtFixture, DetectedAndListed) {
  EXPECT_EQ(detect_backbone_kind(root.string()), "pixart-sigma");
  auto bb = open();
  EXPECT_EQ(bb->kind(), "pixart-sigma");
  auto layers = bb->list_layers();
  ASSERT_EQ(layers.size(), 2u * 2u * 5u);
  EXPECT_EQ(layers[0].name, "vit-block0-cross-map");
  EXPECT_EQ(layers[0].shape, (std::vector<int64_t>{2, 16, 7}));
  // The full-size table from the preset: 28 blocks at 64 x 64 tokens, T = 300.
  BackboneOptions o;
  auto full = backbone_kind("pixart-sigma").layers(o, std::nullopt);
  EXPECT_EQ(full.size(), 28u * 2u * 5u);
  EXPECT_EQ(full[0].shape, (std::vector<int64_t>{16, 4096, 300}));
  bool has_ref = false;
  for (const auto& l : full)
    if (l.name == "vit-block13-cross-q") has_ref = l.shape == std::vector<int64_t>{1152, 64, 64};
  EXPECT_TRUE(has_ref);
}

TEST_F(PixArtFixture, CaptureNamesShapesAndInputs) {
  auto bb = open();
  auto cap = bb->capture(batch(2), goca_spec());
  EXPECT_EQ(cap.batch_size, 2);
  EXPECT_EQ(cap.tensors.size(), goca_spec().keys.size());
  EXPECT_EQ(cap.at("vit-block0-cross-map").sizes(), at::IntArrayRef({2, 2, 16, 7}));
  EXPECT_EQ(cap.at("vit-block1-self-map").sizes(), at::IntArrayRef({2, 1, 16, 16}));
  EXPECT_EQ(cap.at("vit-block1-cross-q").sizes(), at::IntArrayRef({2, 16, 4, 4}));
  EXPECT_EQ(cap.at("vit-block0-cross-special-weight").sizes(), at::IntArrayRef({2, 16, 16}));
  EXPECT_EQ(cap.inputs.at("input.latents").sizes(), at::IntArrayRef({2, 4, 8, 8}));
  EXPECT_EQ(cap.inputs.at("input.encoder_hidden_states").sizes(), at::IntArrayRef({2, 7, 16}));
  EXPECT_EQ(cap.inputs.at("input.encoder_attention_mask").sizes(), at::IntArrayRef({2, 7}));
  EXPECT_EQ(cap.inputs.at("input.timestep")[0].item<int64_t>(), 100);
  // "A Cat, a dog" -> 4 words + EOS; "sky road" -> 2 + EOS; pads masked and ~0 in the cross maps.
  EXPECT_EQ(cap.inputs.at("input.encoder_attention_mask").sum(1)[0].item<int64_t>(), 5);
  EXPECT_EQ(cap.inputs.at("input.encoder_attention_mask").sum(1)[1].item<int64_t>(), 3);
  using at::indexing::Slice;
  EXPECT_LT(cap.at("vit-block1-cross-map").index({1, Slice(), Slice(), Slice(3)}).abs().max().item<float>(), 1e-3);

  // Replaying the recorded inputs through the transformer reproduces the captures.
  auto* pix = dynamic_cast<PixArtSigmaBackbone*>(bb.get());
  ASSERT_NE(pix, nullptr);
  gb::Capture again;
  const auto spec = goca_spec();  // the recorder keeps a reference
  CaptureRecorder rec(spec, again);
  pix->transformer()(dit_test::pixart_inputs(cap.inputs), &rec, false);
  for (const auto& [k, v] : cap.tensors) EXPECT_TRUE(at::allclose(again.tensors.at(k), v)) << k;
}

TEST_F(PixArtFixture, SeededDeterministicAndBatchIndependent) {
  auto bb = open();
  auto spec = goca_spec();
  auto b = batch(2);
  // Image 1 alone (same id, same seed) equals row 1 of the batch.
  const auto [two, single] = dit_test::expect_deterministic_and_batch_independent(*bb, b, spec, 1);
  dit_test::expect_close(single.inputs.at("input.latents")[0], two.inputs.at("input.latents")[1], "latents", 1e-6);
  // Another seed changes the noise.
  b.seed = 6;
  auto other = bb->capture(b, spec);
  EXPECT_FALSE(at::allclose(other.inputs.at("input.latents"), two.inputs.at("input.latents")));
}

TEST_F(PixArtFixture, UnknownKeyAndMismatchedIndexAreUserErrors) {
  auto bb = open();
  gb::CaptureSpec s;
  s.add("vit-block7-cross-map");
  EXPECT_THROW(bb->capture(batch(1), s), gb::UserError);
  tiny::write_json(root / "model_index.json", {{"_class_name", "FluxPipeline"}});
  EXPECT_THROW(detect_backbone_kind(root.string()), gb::UserError);
}

TEST_F(PixArtFixture, StrictLoadingNamesTheComponent) {
  auto t = gb::load_safetensors((root / "text_encoder" / "model.safetensors").string());
  t.erase("encoder.final_layer_norm.weight");
  gb::save_safetensors((root / "text_encoder" / "model.safetensors").string(), t);
  try {
    open();
    FAIL();
  } catch (const gb::UserError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("text_encoder"), std::string::npos) << m;
    EXPECT_NE(m.find("encoder.final_layer_norm.weight"), std::string::npos) << m;
  }
}

TEST_F(PixArtFixture, Bf16RunStaysCloseToFp32) {
  auto spec = goca_spec();
  auto ref = open()->capture(batch(1), spec);
  BackboneOptions o;
  o.image_size = 16;
  o.tokenizer = t5;
  o.dtype = at::kBFloat16;
  auto cap = open_backbone(root.string(), o)->capture(batch(1), spec);
  EXPECT_EQ(cap.at("vit-block1-cross-map").scalar_type(), at::kBFloat16);
  for (const auto& [k, v] : ref.tensors) EXPECT_LT(dit_test::rel_err(cap.tensors.at(k), v), 0.05) << k;
}
