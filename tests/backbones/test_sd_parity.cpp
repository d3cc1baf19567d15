// Numerical parity with diffusers v0.32.2 on the same tiny random weights (goldens: tools/parity/sd_goldens.py;
// SD 2.1: tools/parity/sd21_goldens.py, text encoder from transformers 4.47.1).
// fp32 on CPU; max relative error (max |a - b| / max |b|) <= 1e-4.
#include "full_size_graph.h"
#include "harness/backbones/flux_transformer.h"
#include "harness/backbones/pixart_transformer.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/backbones/registry.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/backbones/json_config.h"
#include "harness/io/safetensors.h"

#include <gtest/gtest.h>

#include <iostream>
#include <regex>

using namespace gb::bb;

namespace {

const std::string kGolden = std::string(GB_SOURCE_DIR) + "/tests/backbones/golden/";

double g_worst = 0;
double rel_err(const at::Tensor& a, const at::Tensor& b) {
  auto x = a.to(at::kDouble), y = b.to(at::kDouble);
  if (x.sizes() != y.sizes()) return 1e9;
  double e = (x - y).abs().max().item<double>() / std::max(1e-12, y.abs().max().item<double>());
  g_worst = std::max(g_worst, e);
  return e;
}

#define EXPECT_PARITY(a, b, what)                          \
  do {                                                     \
    auto _a = (a);                                         \
    auto _b = (b);                                         \
    ASSERT_EQ(_a.sizes().vec(), _b.sizes().vec()) << what; \
    EXPECT_LE(rel_err(_a, _b), 1e-4) << what;              \
  } while (0)

// "down-level0-repeat1-vit-block0-cross" -> "down_blocks.0.attentions.1.transformer_blocks.0.attn2"
std::string module_of(const std::string& id) {
  std::smatch m;
  static const std::regex updown("(down|up)-level(\\d+)-repeat(\\d+)-vit-block(\\d+)-(self|cross)");
  static const std::regex mid("mid-vit-block(\\d+)-(self|cross)");
  if (std::regex_match(id, m, updown))
    return m[1].str() + "_blocks." + m[2].str() + ".attentions." + m[3].str() + ".transformer_blocks." + m[4].str() +
           (m[5] == "self" ? ".attn1" : ".attn2");
  if (std::regex_match(id, m, mid))
    return "mid_block.attentions.0.transformer_blocks." + m[1].str() + (m[2] == "self" ? ".attn1" : ".attn2");
  return "?";
}

class SdParity : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST(PilResize, BitExactWithPillow) {
  auto g = gb::load_safetensors(kGolden + "pil_resize.safetensors");
  for (int i = 0; g.count("in" + std::to_string(i)); ++i) {
    auto in = g.at("in" + std::to_string(i));
    auto want = g.at("out" + std::to_string(i));
    auto got = pil_resize_bicubic(in, want.size(1), want.size(0));
    EXPECT_TRUE(at::equal(got, want)) << "case " << i << " " << shape_str(in.sizes()) << " -> "
                                      << shape_str(want.sizes()) << ", max diff "
                                      << (got.to(at::kInt) - want.to(at::kInt)).abs().max().item<int>();
  }
}

TEST_P(SdParity, MatchesDiffusers) {
  const std::string kind = GetParam();
  const std::string dir = kGolden + std::regex_replace(kind, std::regex("-"), "_") + "_tiny";
  auto g = gb::load_safetensors(dir + "/golden.safetensors");
  EXPECT_EQ(detect_backbone_kind(dir), kind);
  BackboneOptions o;
  o.image_size = 16;
  auto bb = open_backbone(dir, o, kind);
  auto& sd = dynamic_cast<StableDiffusionBackbone&>(*bb);
  const auto ids = g.at("ids");

  // Text encoders (faithful plain-torch CLIP reference, see the script).
  auto t1 = sd.text_encoder().forward(ids, true);
  EXPECT_PARITY(t1.last_hidden_state, g.at("text_encoder.last_hidden_state"), "text_encoder last");
  EXPECT_PARITY(t1.penultimate, g.at("text_encoder.penultimate"), "text_encoder penultimate");
  EXPECT_PARITY(t1.pooled, g.at("text_encoder.pooled"), "text_encoder pooled");
  if (kind == "sdxl") {
    auto ids2 = ids.clone();
    for (int64_t b = 0; b < ids.size(0); ++b) {
      bool seen = false;
      for (int64_t t = 0; t < ids.size(1); ++t) {
        if (seen) ids2[b][t] = 0;
        if (ids[b][t].item<int64_t>() == 999) seen = true;
      }
    }
    auto t2 = sd.text_encoder_2()->forward(ids2, true);
    EXPECT_PARITY(t2.last_hidden_state, g.at("text_encoder_2.last_hidden_state"), "text_encoder_2 last");
    EXPECT_PARITY(t2.penultimate, g.at("text_encoder_2.penultimate"), "text_encoder_2 penultimate");
    EXPECT_PARITY(t2.pooled, g.at("text_encoder_2.pooled"), "text_encoder_2 pooled");
    EXPECT_PARITY(t2.text_embeds, g.at("text_encoder_2.text_embeds"), "text_encoder_2 text_embeds");
  }

  // Image preprocessing (PIL resize + VaeImageProcessor) and the VAE encoder.
  std::vector<at::Tensor> pix;
  for (int i = 0; g.count("image" + std::to_string(i)); ++i)
    pix.push_back(preprocess_image(g.at("image" + std::to_string(i)), 16));
  auto pixels = at::stack(pix);
  EXPECT_TRUE(at::equal(pixels, g.at("pixels"))) << "preprocessed pixels differ";
  EXPECT_PARITY(sd.vae().moments(g.at("pixels")), g.at("vae.moments"), "vae moments");
  EXPECT_PARITY(sd.vae().latents(g.at("pixels"), g.at("noise_vae"), at::kFloat), g.at("vae.latents"), "vae latents");

  // The whole pass with the golden's noise draws, capturing every key.
  gb::CaptureSpec spec;
  for (const auto& l : sd.list_layers()) spec.add(l.name);
  auto cap = sd.capture_with_noise(g.at("pixels"), ids, g.at("noise_vae"), g.at("noise"), spec);
  EXPECT_PARITY(cap.inputs.at("input.latents"), g.at("input.latents"), "input.latents");
  EXPECT_EQ(cap.inputs.at("input.timestep").to(at::kDouble)[0].item<double>(),
            g.at("input.timestep").to(at::kDouble)[0].item<double>());
  EXPECT_EQ(cap.inputs.at("input.timestep").scalar_type(), g.at("input.timestep").scalar_type());
  EXPECT_PARITY(cap.inputs.at("input.encoder_hidden_states"), g.at("input.encoder_hidden_states"), "ehs");
  if (kind == "sdxl") {
    EXPECT_PARITY(cap.inputs.at("input.text_embeds"), g.at("input.text_embeds"), "text_embeds");
    EXPECT_TRUE(at::equal(cap.inputs.at("input.time_ids"), g.at("input.time_ids")));
  }
  auto unet_weights = gb::load_safetensors(dir + "/unet/diffusion_pytorch_model.safetensors");
  int compared = 0;
  for (const auto& [k, v] : cap.tensors) {
    if (k.size() > 15 && k.compare(k.size() - 15, 15, "-special-weight") == 0) {
      auto w = unet_weights.at(module_of(k.substr(0, k.size() - 15)) + ".to_out.0.weight").to(at::kFloat);
      EXPECT_TRUE(at::equal(v[0], w)) << k;
      EXPECT_TRUE(at::equal(v[1], w)) << k;
      ++compared;
      continue;
    }
    auto it = g.find("capture." + k);
    ASSERT_NE(it, g.end()) << "golden lacks " << k;
    EXPECT_PARITY(v, it->second, k);
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(spec.keys.size()));
  EXPECT_GT(compared, 20);

  // The full UNet output from the golden's exact inputs.
  UNetInputs in;
  in.latents = g.at("input.latents");
  in.timestep = g.at("input.timestep");
  in.encoder_hidden_states = g.at("input.encoder_hidden_states");
  if (kind == "sdxl") {
    in.text_embeds = g.at("input.text_embeds");
    in.time_ids = g.at("input.time_ids");
  }
  EXPECT_PARITY(sd.unet().forward(in, nullptr, false), g.at("unet.out"), "unet output");
  std::cout << kind << ": " << compared << " captured tensors compared, worst max relative error " << g_worst << "\n";
  g_worst = 0;
}

INSTANTIATE_TEST_SUITE_P(Tiny, SdParity, ::testing::Values("sd15", "sdxl", "sd21", "sd21-base"),
                         [](const auto& info) { return std::regex_replace(info.param, std::regex("-"), "_"); });

// The full-size SD1.5 / SDXL UNets, the VAE encoder, the PixArt-Sigma and FLUX.1-dev transformers and the T5 v1.1 XXL
// encoder request exactly the keys and shapes diffusers / transformers build at the published configs (hash of the
// sorted "key [shape]" lines, count and parameter total), on the meta device (no memory).
TEST(FullSizeGraphs, KeysShapesAndParamsMatchDiffusers) {
  using gb::test::expect_full_size_graph;
  const auto want = read_json_file(kGolden + "full_size_keys.json");  // tools/parity/sd_goldens.py
  expect_full_size_graph(want, "sd15_unet", [](WeightStore& ws) { UNet2DConditionModel m(UNetConfig::sd15(), ws); });
  expect_full_size_graph(want, "sdxl_unet", [](WeightStore& ws) { UNet2DConditionModel m(UNetConfig::sdxl(), ws); });
  expect_full_size_graph(want, "vae_encoder", [](WeightStore& ws) { VaeEncoder m(VaeConfig::sd15(), ws); });
  expect_full_size_graph(want, "pixart_transformer",
                         [](WeightStore& ws) { PixArtTransformer m(ws, PixArtConfig::sigma_xl_2_1024()); });
  expect_full_size_graph(want, "flux_transformer", [](WeightStore& ws) { FluxTransformer m(ws, FluxConfig::dev()); });
  expect_full_size_graph(want, "t5_xxl_encoder", [](WeightStore& ws) { T5Encoder m(ws, T5Config::v1_1_xxl()); });
  // CLIP parameter totals from the spec (backbones-cost.md §1): CLIP-L 123.06 M, bigG + projection 694.66 M.
  auto clip_params = [](const ClipTextConfig& c) {
    auto ws = WeightStore::shape_only();
    ClipTextModel m(c, ws);
    int64_t n = 0;
    for (const auto& [k, v] : ws.tensors()) n += v.numel();
    return n;
  };
  // SD 2.1 (tools/parity/sd21_goldens.py): the 768-v UNet (the base one has the same graph) and OpenCLIP-H's
  // 23-layer text tower in the CLIPTextModel layout.
  const auto want21 = read_json_file(kGolden + "full_size_keys_sd21.json");
  expect_full_size_graph(want21, "sd21_unet", [](WeightStore& ws) { UNet2DConditionModel m(UNetConfig::sd21(), ws); });
  expect_full_size_graph(want21, "sd21_unet",
                         [](WeightStore& ws) { UNet2DConditionModel m(UNetConfig::sd21_base(), ws); });
  expect_full_size_graph(want21, "openclip_h_text",
                         [](WeightStore& ws) { ClipTextModel m(ClipTextConfig::openclip_h(), ws); });
  EXPECT_NEAR(clip_params(ClipTextConfig::clip_l()) / 1e6, 123.06, 0.01);
  EXPECT_NEAR(clip_params(ClipTextConfig::bigg()) / 1e6, 694.66, 0.01);
}
