// PixArt-Sigma transformer: parity with diffusers v0.32.2 PixArtTransformer2DModel on a tiny random config
// (tools/parity/dit_goldens.py), captures as the paper's AttnStoreProcessor records them, the sin-cos table,
// early stopping, batch independence and strict loading.
#include "dit_test_util.h"

#include "harness/backbones/pixart_transformer.h"
#include "harness/backbones/recorder.h"
#include "harness/core/errors.h"
#include "tests/test_support.h"

using namespace gb::bb;

namespace {
std::unique_ptr<PixArtTransformer> tiny() {
  return PixArtTransformer::load(dit_test::golden_dir("pixart"), at::kFloat, at::kCPU);
}
using dit_test::pixart_inputs;
}  // namespace

TEST(PixArtTransformer, ConfigFromJson) {
  auto m = tiny();
  const auto& c = m->config();
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.inner_dim(), 16);
  EXPECT_EQ(c.caption_channels, 32);
  EXPECT_DOUBLE_EQ(c.interpolation_scale, 2.0);
  EXPECT_FALSE(c.use_additional_conditions);
  auto full = PixArtConfig::sigma_xl_2_1024();
  EXPECT_EQ(full.inner_dim(), 1152);
  EXPECT_EQ(full.num_layers, 28);
}

TEST(PixArtTransformer, SinCosTableLayout) {
  // 64 x 64 grid, base 64, interpolation 2 (the 1024^2 case): token (row 3, col 5) encodes u = 2.5 in the first
  // half and v = 1.5 in the second half.
  auto t = pixart_sincos_pos_embed(1152, 64, 64, 64, 2);
  ASSERT_EQ(t.sizes(), at::IntArrayRef({4096, 1152}));
  int64_t n = 3 * 64 + 5;
  EXPECT_NEAR(t[n][0].item<float>(), std::sin(2.5), 1e-6);  // omega_0 = 1
  EXPECT_NEAR(t[n][288].item<float>(), std::cos(2.5), 1e-6);
  EXPECT_NEAR(t[n][576].item<float>(), std::sin(1.5), 1e-6);
  EXPECT_NEAR(t[n][576 + 1].item<float>(), std::sin(1.5 * std::pow(10000.0, -1.0 / 288)), 1e-6);
}

TEST(PixArtTransformer, OutputAndCapturesMatchDiffusers) {
  auto g = dit_test::golden("pixart");
  auto m = tiny();
  auto spec = dit_test::golden_capture_spec(g);
  ASSERT_EQ(spec.keys.size(), 2u * 2u * 5u);
  gb::Capture cap;
  CaptureRecorder rec(spec, cap);
  auto out = (*m)(pixart_inputs(g), &rec);
  dit_test::expect_close(out, g.at("output"), "output");
  EXPECT_TRUE(rec.unrecorded().empty());
  dit_test::expect_golden_captures(cap, g, spec);
  // Cross-map columns of padded caption tokens are ~0 (the -10000 bias).
  auto cm = cap.tensors.at("vit-block1-cross-map");
  EXPECT_LT(
      cm.index({1, at::indexing::Slice(), at::indexing::Slice(), at::indexing::Slice(3)}).abs().max().item<float>(),
      1e-3);
}

TEST(PixArtTransformer, NonSquareLatentUsesRuntimeGrid) {
  auto g = dit_test::golden("pixart");
  auto m = tiny();
  const PixArtInputs in = pixart_inputs(g.at("big.latents"), g.at("input.timestep").narrow(0, 0, 1),
                                        g.at("input.encoder_hidden_states").narrow(0, 0, 1),
                                        g.at("input.encoder_attention_mask").narrow(0, 0, 1));
  dit_test::expect_close((*m)(in, nullptr), g.at("big.output"), "12x8 output");
}

TEST(PixArtTransformer, HeadMeanSelfMapsAndEarlyStop) {
  auto g = dit_test::golden("pixart");
  auto m = tiny();
  gb::CaptureSpec spec;
  spec.add("vit-block0-self-map");
  spec.add("vit-block0-cross-map");
  spec.self_map_head_mean = true;
  gb::Capture cap;
  CaptureRecorder rec(spec, cap);
  auto out = (*m)(pixart_inputs(g), &rec, /*need_output=*/false);
  EXPECT_FALSE(out.defined());
  dit_test::expect_close(cap.tensors.at("vit-block0-self-map"), g.at("capture.vit-block0-self-map").mean(1, true),
                         "head-mean self map");
  dit_test::expect_close(cap.tensors.at("vit-block0-cross-map"), g.at("capture.vit-block0-cross-map"), "cross map");
}

TEST(PixArtTransformer, BatchOfOneEqualsBatchRowAndIsDeterministic) {
  auto g = dit_test::golden("pixart");
  auto m = tiny();
  auto full = (*m)(pixart_inputs(g), nullptr);
  EXPECT_TRUE(at::equal(full, (*m)(pixart_inputs(g), nullptr)));
  auto in = pixart_inputs(g);
  const PixArtInputs one =
      pixart_inputs(in.latents.narrow(0, 1, 1), in.timestep.narrow(0, 1, 1), in.encoder_hidden_states.narrow(0, 1, 1),
                    in.encoder_attention_mask.narrow(0, 1, 1));
  dit_test::expect_close((*m)(one, nullptr), full.narrow(0, 1, 1), "sample 1 alone", 1e-5);
}

TEST(PixArtTransformer, CapturePointsNameEveryBlock) {
  auto m = tiny();
  auto pts = pixart_capture_layers(m->config(), 8, 8, 6);
  EXPECT_EQ(pts.size(), 2u * 2u * 5u);
  EXPECT_EQ(pts.front().name, "vit-block0-cross-map");
  EXPECT_EQ(pts.front().shape, (std::vector<int64_t>{2, 16, 6}));
}

TEST(PixArtTransformer, StrictLoadingReportsMissingMisShapedUnexpected) {
  auto src = gb::load_safetensors(dit_test::golden_dir("pixart") + "/transformer/diffusion_pytorch_model.safetensors");
  src.erase("transformer_blocks.1.attn2.to_k.bias");
  src["caption_projection.linear_1.weight"] = at::zeros({16, 31});
  src["resolution_embedder.linear_1.weight"] = at::zeros({3, 3});
  auto cfg = PixArtConfig::from_json(dit_test::golden_dir("pixart") + "/transformer/config.json");
  WeightStore ws(src, "pixart-test", at::kFloat, at::kCPU);
  PixArtTransformer m(ws, cfg);
  gb::test::expect_user_error([&] { ws.finish(); },
                              {"transformer_blocks.1.attn2.to_k.bias", "caption_projection.linear_1.weight",
                               "resolution_embedder.linear_1.weight"});
}
