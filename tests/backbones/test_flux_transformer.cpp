// Flux transformer: parity with diffusers v0.32.2 FluxTransformer2DModel on a tiny config (2 double + 2 single
// blocks, axes (4, 6, 6)), the paper's joint-softmax captures, head chunking, early stop, strict loading.
#include "dit_test_util.h"

#include "harness/backbones/flux_transformer.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"
#include "tests/test_support.h"

using namespace gb::bb;

namespace {
std::unique_ptr<FluxTransformer> tiny() {
  return FluxTransformer::load(dit_test::golden_dir("flux"), at::kFloat, at::kCPU);
}
FluxInputs inputs(const std::map<std::string, at::Tensor>& g) {
  return {g.at("input.latents"),
          g.at("input.timestep"),
          g.at("input.guidance"),
          g.at("input.encoder_hidden_states"),
          g.at("input.pooled_projections"),
          g.at("input.img_ids"),
          g.at("input.txt_ids")};
}
}  // namespace

TEST(FluxTransformer, ConfigFromJsonAndPreset) {
  auto m = tiny();
  EXPECT_EQ(m->config().total_blocks(), 4);
  EXPECT_EQ(m->config().axes_dims_rope, (std::vector<int64_t>{4, 6, 6}));
  auto dev = FluxConfig::dev();
  EXPECT_EQ(dev.inner_dim(), 3072);
  EXPECT_EQ(dev.total_blocks(), 57);
}

TEST(FluxTransformer, OutputAndJointSoftmaxCapturesMatchDiffusers) {
  auto g = dit_test::golden("flux");
  auto m = tiny();
  auto spec = dit_test::golden_capture_spec(g);
  ASSERT_EQ(spec.keys.size(), 2u * 6u + 2u * 3u);
  gb::Capture cap;
  CaptureRecorder rec(spec, cap);
  dit_test::expect_close((*m)(inputs(g), &rec), g.at("output"), "output");
  EXPECT_TRUE(rec.unrecorded().empty());
  dit_test::expect_golden_captures(cap, g, spec);
  // Not renormalised: cross + self rows of the joint softmax sum to 1.
  auto rows = cap.tensors.at("vit-block2-cross-map").sum(-1) + cap.tensors.at("vit-block2-self-map").sum(-1);
  EXPECT_LT((rows - 1).abs().max().item<float>(), 1e-5);
  EXPECT_LT(cap.tensors.at("vit-block2-cross-map").sum(-1).max().item<float>(), 0.999);
}

TEST(FluxTransformer, HeadChunkingAndHeadMeanGiveTheSameMaps) {
  auto g = dit_test::golden("flux");
  auto m = tiny();
  m->set_attention_chunk_elements(1);  // one head at a time
  gb::CaptureSpec spec;
  for (int k = 0; k < 4; ++k) {
    spec.add("vit-block" + std::to_string(k) + "-cross-map");
    spec.add("vit-block" + std::to_string(k) + "-self-map");
  }
  spec.self_map_head_mean = true;
  gb::Capture cap;
  CaptureRecorder rec(spec, cap);
  dit_test::expect_close((*m)(inputs(g), &rec), g.at("output"), "output (chunked)");
  for (int k = 0; k < 4; ++k) {
    std::string id = "vit-block" + std::to_string(k);
    dit_test::expect_close(cap.tensors.at(id + "-cross-map"), g.at("capture." + id + "-cross-map"), id + " cross");
    dit_test::expect_close(cap.tensors.at(id + "-self-map"), g.at("capture." + id + "-self-map").mean(1, true),
                           id + " self head mean");
  }
}

TEST(FluxTransformer, EarlyStopAfterLastCapturedBlock) {
  auto g = dit_test::golden("flux");
  auto m = tiny();
  gb::CaptureSpec spec;
  spec.add("vit-block1-attn-out");
  gb::Capture cap;
  CaptureRecorder rec(spec, cap);
  EXPECT_FALSE((*m)(inputs(g), &rec, false).defined());
  dit_test::expect_close(cap.tensors.at("vit-block1-attn-out"), g.at("capture.vit-block1-attn-out"), "attn-out");
}

TEST(FluxTransformer, BatchRowEqualsSingleAndDeterministic) {
  auto g = dit_test::golden("flux");
  auto m = tiny();
  auto in = inputs(g);
  auto full = (*m)(in, nullptr);
  EXPECT_TRUE(at::equal(full, (*m)(in, nullptr)));
  FluxInputs one = in;
  one.latents = in.latents.narrow(0, 1, 1);
  one.timestep = in.timestep.narrow(0, 1, 1);
  one.guidance = in.guidance.narrow(0, 1, 1);
  one.encoder_hidden_states = in.encoder_hidden_states.narrow(0, 1, 1);
  one.pooled_projections = in.pooled_projections.narrow(0, 1, 1);
  dit_test::expect_close((*m)(one, nullptr), full.narrow(0, 1, 1), "sample 1 alone", 1e-5);
}

TEST(FluxTransformer, RopeTablesAndPacking) {
  // Text ids are zero: identity rotation. Image token (row 2, col 3): axis-1 dims rotate by 2·ω.
  auto ids = at::zeros({2, 3});
  ids[1][1] = 2;
  ids[1][2] = 3;
  auto [cos, sin] = flux_rope_tables(ids, {16, 56, 56}, 10000);
  ASSERT_EQ(cos.sizes(), at::IntArrayRef({2, 128}));
  EXPECT_FLOAT_EQ(cos[0].sum().item<float>(), 128.f);
  EXPECT_NEAR(cos[1][16].item<float>(), std::cos(2.0), 1e-6);
  EXPECT_NEAR(cos[1][17].item<float>(), std::cos(2.0), 1e-6);
  EXPECT_NEAR(sin[1][18].item<float>(), std::sin(2.0 * std::pow(10000.0, -2.0 / 56)), 1e-6);
  EXPECT_NEAR(sin[1][72].item<float>(), std::sin(3.0), 1e-6);

  auto g = dit_test::golden("flux");
  dit_test::expect_close(flux_pack_latents(g.at("sched.noisy")), g.at("sched.packed"), "packed", 0);
  EXPECT_TRUE(at::equal(flux_latent_image_ids(4, 4, at::TensorOptions().dtype(at::kFloat)), g.at("input.img_ids")));
}

TEST(FluxTransformer, CapturePoints) {
  auto m = tiny();
  auto pts = flux_capture_layers(m->config(), 16, 5);
  EXPECT_EQ(pts.size(), 2u * 6u + 2u * 3u);
  EXPECT_EQ(pts[0].name, "vit-block0-cross-map");
  EXPECT_EQ(pts[0].shape, (std::vector<int64_t>{2, 16, 5}));
}

TEST(FluxTransformer, StrictLoading) {
  auto src = gb::load_safetensors(dit_test::golden_dir("flux") + "/transformer/diffusion_pytorch_model.safetensors");
  src.erase("single_transformer_blocks.1.attn.norm_k.weight");
  src["transformer_blocks.0.attn.to_add_out.weight"] = at::zeros({32, 31});
  src["single_transformer_blocks.1.attn.to_out.0.weight"] = at::zeros({32, 32});
  auto cfg = FluxConfig::from_json(dit_test::golden_dir("flux") + "/transformer/config.json");
  WeightStore ws(src, "flux-test", at::kFloat, at::kCPU);
  FluxTransformer m(ws, cfg);
  gb::test::expect_user_error([&] { ws.finish(); }, {"single_transformer_blocks.1.attn.norm_k.weight",
                                                     "transformer_blocks.0.attn.to_add_out.weight",
                                                     "single_transformer_blocks.1.attn.to_out.0.weight"});
}
