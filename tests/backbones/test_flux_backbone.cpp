// Flux backbone on a tiny random checkpoint folder: detection, list-layers, capture names/shapes, the packed
// inputs it records (replay reproduces the captures), seeded determinism and batch-vs-single equality.
#include "dit_fixtures.h"
#include "dit_test_util.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {
struct FluxFixture : tiny::FluxFolderTest {
  gb::BackboneBatch batch(int n) {
    return dit_test::prompt_batch(
        {"a cat and a dog", "sky", "tree road"}, n, [](int i) { return tiny::random_image(16, 24 + i, 200 + i); }, "f",
        9);
  }
  static gb::CaptureSpec goca_spec() {
    return dit_test::head_mean_spec({"vit-block0-cross-map", "vit-block1-cross-map", "vit-block2-cross-map",
                                     "vit-block3-cross-map", "vit-block0-self-map", "vit-block1-self-map",
                                     "vit-block2-self-map", "vit-block3-self-map",
                                     "vit-block0-cross-special-post-value", "vit-block0-cross-special-weight",
                                     "vit-block0-cross-special-value", "vit-block3-attn-out"});
  }
};
}  // namespace

TEST_F(FluxFixture, DetectedAndListed) {
  EXPECT_EQ(detect_backbone_kind(root.string()), "flux");
  auto bb = open();
  auto layers = bb->list_layers();
  ASSERT_EQ(layers.size(), 2u * 6u + 2u * 3u);
  EXPECT_EQ(layers[0].name, "vit-block0-cross-map");
  EXPECT_EQ(layers[0].shape, (std::vector<int64_t>{2, 16, 6}));
  BackboneOptions o;
  auto full = backbone_kind("flux").layers(o, std::nullopt);
  EXPECT_EQ(full.size(), 19u * 6u + 38u * 3u);
  bool ref = false;
  for (const auto& l : full)
    if (l.name == "vit-block27-attn-out") ref = l.shape == std::vector<int64_t>{3072, 64, 64};
  EXPECT_TRUE(ref);
  EXPECT_EQ(full[0].shape, (std::vector<int64_t>{24, 4096, 512}));
}

TEST_F(FluxFixture, CaptureNamesShapesAndInputs) {
  auto bb = open();
  auto cap = bb->capture(batch(2), goca_spec());
  EXPECT_EQ(cap.tensors.size(), goca_spec().keys.size());
  EXPECT_EQ(cap.at("vit-block2-cross-map").sizes(), at::IntArrayRef({2, 2, 16, 6}));
  EXPECT_EQ(cap.at("vit-block2-self-map").sizes(), at::IntArrayRef({2, 1, 16, 16}));
  EXPECT_EQ(cap.at("vit-block3-attn-out").sizes(), at::IntArrayRef({2, 32, 4, 4}));
  EXPECT_EQ(cap.at("vit-block0-cross-special-value").sizes(), at::IntArrayRef({2, 2, 16, 16}));
  EXPECT_EQ(cap.inputs.at("input.latents").sizes(), at::IntArrayRef({2, 16, 64}));
  EXPECT_EQ(cap.inputs.at("input.encoder_hidden_states").sizes(), at::IntArrayRef({2, 6, 24}));
  EXPECT_EQ(cap.inputs.at("input.pooled_projections").sizes(), at::IntArrayRef({2, 16}));
  EXPECT_EQ(cap.inputs.at("input.img_ids").sizes(), at::IntArrayRef({2, 16, 3}));
  EXPECT_EQ(cap.inputs.at("input.txt_ids").sizes(), at::IntArrayRef({2, 6, 3}));
  EXPECT_FLOAT_EQ(cap.inputs.at("input.guidance")[1].item<float>(), 1.0f);
  // 16 image tokens -> mu = 0.5 + 0.65·(16 - 256)/3840; the first remaining step of 28 at strength 0.15.
  auto* flux = dynamic_cast<FluxBackbone*>(bb.get());
  EXPECT_EQ(flux->noising().t_start, 23);
  EXPECT_NEAR(cap.inputs.at("input.timestep")[0].item<float>(), flux->noising().timestep / 1000.0, 1e-7);
  EXPECT_EQ(cap.inputs.at("input.img_ids")[0][5][1].item<float>(), 1.0f);  // token 5 = row 1, col 1
  EXPECT_EQ(cap.inputs.at("input.img_ids")[0][5][2].item<float>(), 1.0f);

  gb::Capture again;
  const auto spec = goca_spec();  // the recorder keeps a reference
  CaptureRecorder rec(spec, again);
  FluxInputs in{cap.inputs.at("input.latents"),
                cap.inputs.at("input.timestep"),
                cap.inputs.at("input.guidance"),
                cap.inputs.at("input.encoder_hidden_states"),
                cap.inputs.at("input.pooled_projections"),
                cap.inputs.at("input.img_ids")[0],
                cap.inputs.at("input.txt_ids")[0]};
  flux->transformer()(in, &rec, false);
  for (const auto& [k, v] : cap.tensors) EXPECT_TRUE(at::allclose(again.tensors.at(k), v)) << k;
}

TEST_F(FluxFixture, SeededDeterministicAndBatchIndependent) {
  dit_test::expect_deterministic_and_batch_independent(*open(), batch(2), goca_spec(), 0);
}

TEST_F(FluxFixture, MissingClipTokenizerAndShapeMismatchAreUserErrors) {
  BackboneOptions o;
  o.image_size = 16;
  o.tokenizer = t5;
  auto bb = open_backbone(root.string(), o);
  EXPECT_THROW(bb->capture(batch(1), goca_spec()), gb::UserError);
  tiny::write_json(root / "text_encoder_2" / "config.json", tiny::tiny_t5_json(20));
  EXPECT_THROW(open(), gb::UserError);  // joint_attention_dim 24 != T5 d_model 20
}

TEST_F(FluxFixture, Bf16RunStaysCloseToFp32) {
  auto spec = goca_spec();
  auto ref = open()->capture(batch(1), spec);
  BackboneOptions o;
  o.image_size = 16;
  o.tokenizer = t5;
  o.dtype = at::kBFloat16;
  o.t5_int8 = false;  // bf16 rounding only (the int8 T5 default is covered in test_int8_linear.cpp)
  auto bb = open_backbone(root.string(), o);
  dynamic_cast<FluxBackbone&>(*bb).set_clip_tokenizer(clip);
  auto cap = bb->capture(batch(1), spec);
  EXPECT_EQ(cap.at("vit-block1-cross-map").scalar_type(), at::kBFloat16);
  EXPECT_EQ(cap.inputs.at("input.timestep").scalar_type(), at::kBFloat16);
  for (const auto& [k, v] : ref.tensors) EXPECT_LT(dit_test::rel_err(cap.tensors.at(k), v), 0.05) << k;
}
