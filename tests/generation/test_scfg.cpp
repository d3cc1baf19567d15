// S-CFG (harness/generation/scfg.h) against the paper's own code: utils_15.get_mask / utils_sigma.get_mask and
// the rate block of generate_for_fid_{15,sigma}.py, run by tools/parity/scfg_goldens.py on random CFG captures
// (tests/generation/goldens). Masks exact, rate map and eps within 1e-5 (fp32). Plus the generation presets
// against the paper's generation configs, the token roles, the smoothing kernel's formula and bad inputs.
#include "baselines/presets.h"
#include "goca/segmentor.h"
#include "harness/core/errors.h"
#include "harness/generation/scfg.h"
#include "harness/io/safetensors.h"
#include "tests/baselines/preset_checks.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>

namespace {

using gb::gen::ScfgMasks;
using gb::gen::ScfgTokens;

const std::string kDir = std::string(GB_SOURCE_DIR) + "/tests/generation/goldens/";

const nlohmann::json& paper() {
  static const nlohmann::json j = [] {
    std::ifstream in(kDir + "scfg_paper_configs.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

const gb::SafetensorsFile& golden() {
  static const gb::SafetensorsFile f(kDir + "scfg_goldens.safetensors");
  return f;
}

at::Tensor load(const std::string& key) { return golden().load(key).to(at::kFloat); }

::testing::AssertionResult close(const at::Tensor& a_in, const at::Tensor& e_in, double tol = 1e-5) {
  auto a = a_in.to(at::kDouble).contiguous(), e = e_in.to(at::kDouble).contiguous();
  if (a.sizes() != e.sizes()) {
    std::ostringstream os;
    os << "shape " << a.sizes() << " vs expected " << e.sizes();
    return ::testing::AssertionFailure() << os.str();
  }
  if (!at::equal(at::isnan(a), at::isnan(e))) return ::testing::AssertionFailure() << "NaN pattern differs";
  auto d = (at::nan_to_num(a) - at::nan_to_num(e)).abs();
  auto lim = tol + tol * at::nan_to_num(e).abs();
  if (!d.le(lim).all().item<bool>())
    return ::testing::AssertionFailure() << "max |diff| " << d.max().item<double>() << " at "
                                         << d.argmax().item<int64_t>();
  return ::testing::AssertionSuccess();
}

// The harness tokenizers' view of the paper's token strings (CLIP and T5 renamings of get_mask).
std::vector<gb::TextToken> text_tokens(const nlohmann::json& strings) {
  std::vector<gb::TextToken> out;
  for (const auto& j : strings) {
    const std::string s = j.get<std::string>();
    gb::TextToken t;
    if (s == "<|startoftext|>") t = {0, "<sos>", true};
    else if (s == "<|endoftext|>") t = {0, "<pad>", true};
    else if (s == "\xE2\x96\x81") t = {0, "<insert>", true};  // a lone U+2581
    else if (s == "</s>") t = {0, "<eos>", true};
    else if (s == "<pad>") t = {0, "<pad>", true};
    else t = {0, s, false};
    out.push_back(t);
  }
  return out;
}

struct Case {
  gb::goca::MethodConfig config;
  gb::TensorMap uncond, cond;
  ScfgTokens tokens;
  double scale = 0;
};

Case load_case(const std::string& name) {
  const auto& c = paper()["cases"][name];
  Case out;
  auto& m = out.config;
  m.head_method = gb::goca::HeadMethod::DotProductNoClamp;
  m.layer_method = gb::goca::LayerMethod::DotProductSimilarity;
  m.rescale_method = gb::goca::RescaleMethod::Sum1RenormPlus;
  m.ref_mode = gb::goca::RefMode::Full;
  m.layers = c["layers"].get<std::vector<std::string>>();
  m.self_layers = c["self_layers"].get<std::vector<std::string>>();
  m.ref_layer = c["ref_layer"].get<std::string>();
  m.propagation_order = c["propagation_order"].get<int64_t>();
  m.output_size = c["output_size"].get<int64_t>();
  out.scale = c["guidance_scale"].get<double>();
  const std::string prefix = name + ".in.";
  for (const auto& key : golden().keys()) {
    if (key.rfind(prefix, 0) != 0) continue;
    const std::string k = key.substr(prefix.size());
    if (k.rfind("eps_", 0) == 0) continue;
    auto t = load(key);
    if (k.find("special-weight") != std::string::npos) {  // shared by both halves (the paper stores it once)
      out.uncond[k] = t;
      out.cond[k] = t;
    } else {
      out.uncond[k] = t[0];
      out.cond[k] = t[1];
    }
  }
  out.tokens = gb::gen::scfg_tokens(text_tokens(c["tokens"]), c["version"].get<std::string>() != "1-5");
  return out;
}

void check_case(const std::string& name) {
  SCOPED_TRACE(name);
  const Case c = load_case(name);
  gb::goca::Segmentor seg(c.config);
  const ScfgMasks masks = gb::gen::scfg_masks(seg, c.uncond, c.cond, c.tokens);
  const auto gold_tokens = load(name + ".out.token_mask");
  const auto gold_fore = load(name + ".out.foreground");
  EXPECT_TRUE(at::equal(masks.tokens.unsqueeze(0), gold_tokens))
      << (masks.tokens.unsqueeze(0) != gold_tokens).sum().item<int64_t>() << " token-mask entries differ";
  EXPECT_TRUE(at::equal(masks.foreground.unsqueeze(0), gold_fore))
      << (masks.foreground.unsqueeze(0) != gold_fore).sum().item<int64_t>() << " foreground pixels differ";

  const auto eu = load(name + ".in.eps_uncond"), ec = load(name + ".in.eps_cond");
  // The rate map on the paper's masks, then on ours (equal when the masks are).
  const auto rate_gold_masks = gb::gen::scfg_rate(eu, ec, gold_tokens, gold_fore, c.scale);
  EXPECT_TRUE(close(rate_gold_masks, load(name + ".out.rate")));
  const auto rate = gb::gen::scfg_rate(eu, ec, masks.tokens.unsqueeze(0), masks.foreground.unsqueeze(0), c.scale);
  EXPECT_TRUE(close(rate, load(name + ".out.rate")));
  EXPECT_TRUE(close(gb::gen::scfg_combine(eu, ec, rate, c.scale), load(name + ".out.eps")));
}

TEST(ScfgGolden, Sd15MasksRateAndEps) { check_case("sd"); }

TEST(ScfgGolden, PixartMasksRateAndEps) { check_case("pixart"); }

TEST(ScfgGolden, TheCasesExerciseTheQuirks) {
  // sd: masks nearest-upsampled to the latent (16 -> 32); pixart: ties in the one-hot mask add their rates, the
  // 15/G clamp bites (G = 7.5 -> 2.0) and channel 0 of the negative branch is the positive end-of-text map.
  EXPECT_EQ(load("sd.out.rate").size(-1), 2 * load("sd.out.token_mask").size(-1));
  EXPECT_GT((load("pixart.out.token_mask").sum(1) > 1).sum().item<int64_t>(), 0);
  EXPECT_NEAR(load("pixart.out.rate").max().item<double>(), 2.0, 1e-6);
  const Case c = load_case("pixart");
  EXPECT_EQ(c.tokens.global, 7);
  EXPECT_EQ(c.tokens.rescaling, (std::vector<int64_t>{0, 1, 3, 4, 5, 6}));  // '<insert>' at 2 is not rescaled
  ScfgTokens sd_like = c.tokens;
  sd_like.global = -1;  // utils_15's negative branch: the uncond half's own channel 0
  gb::goca::Segmentor seg(c.config);
  const auto fore_sd = gb::gen::scfg_masks(seg, c.uncond, c.cond, sd_like).foreground;
  EXPECT_FALSE(at::equal(fore_sd.unsqueeze(0), load("pixart.out.foreground")));
}

TEST(ScfgTokens, RolesFromTheTokenizer) {
  std::vector<gb::TextToken> clip = {
      {0, "<sos>", true}, {1, "a", false}, {2, "cat", false}, {3, "<pad>", true}, {3, "<pad>", true}};
  auto t = gb::gen::scfg_tokens(clip, false);
  EXPECT_EQ(t.rescaling, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t.global, -1);
  std::vector<gb::TextToken> t5 = {
      {0, "a", false}, {1, "<insert>", true}, {2, "b", false}, {3, "<eos>", true}, {4, "<pad>", true}};
  t = gb::gen::scfg_tokens(t5, true);
  EXPECT_EQ(t.rescaling, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(t.global, 3);
  EXPECT_THROW(gb::gen::scfg_tokens({{0, "<sos>", true}, {1, "<pad>", true}}, false), gb::UserError);
  EXPECT_THROW(gb::gen::scfg_tokens({{0, "a", false}, {1, "<pad>", true}}, true), gb::UserError);
}

TEST(ScfgSmoothing, ThePapersKernelFormula) {
  // exp(-((x - mean) / (2 sigma))^2): the neighbour weight is e^-1 of the centre's (a true N(0, 0.5^2) has e^-2).
  const auto k = gb::gen::scfg_smoothing_kernel();
  ASSERT_EQ(k.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_NEAR(k.sum().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR((k[0][1] / k[1][1]).item<double>(), std::exp(-1.0), 1e-6);
  EXPECT_NEAR((k[0][0] / k[1][1]).item<double>(), std::exp(-2.0), 1e-6);
}

TEST(ScfgRate, ClampsAndCombine) {
  // One token over the whole 4x4 image, no foreground: up = 0, so the rate clamps to 0.8 everywhere and the
  // smoothing (sum 1) keeps it; eps = eps_u + 0.8 G (eps_c - eps_u).
  auto eu = at::zeros({1, 4, 4, 4}), ec = at::ones({1, 4, 4, 4});
  auto tokens = at::zeros({1, 3, 4, 4});
  tokens.select(1, 1).fill_(1.0);
  auto fore = at::zeros({1, 1, 4, 4});
  auto rate = gb::gen::scfg_rate(eu, ec, tokens, fore, 2.0);
  EXPECT_TRUE(close(rate, at::full({1, 1, 4, 4}, 0.8)));
  EXPECT_TRUE(close(gb::gen::scfg_combine(eu, ec, rate, 2.0), at::full({1, 4, 4, 4}, 1.6)));
  // Foreground twice as strong as the token region -> 2, clamped by 15/G = 1.5 at G = 10.
  fore.fill_(1.0);
  ec = at::ones({1, 4, 4, 4});
  auto half = at::zeros({1, 1, 4, 4});
  half.narrow(3, 0, 2).fill_(1.0);
  tokens = at::cat({half, 1 - half}, 1);  // token 0 left, token 1 right
  ec.narrow(3, 2, 2).mul_(3.0);           // |delta| = 2 left, 6 right; foreground mean 4
  rate = gb::gen::scfg_rate(eu, ec, tokens, fore, 2.0);
  EXPECT_NEAR(rate[0][0][0][0].item<double>(), 2.0, 1e-6);  // 4 / 2
  EXPECT_NEAR(rate[0][0][0][3].item<double>(), 0.8, 1e-6);  // 4 / 6 -> 0.8
  rate = gb::gen::scfg_rate(eu, ec, tokens, fore, 10.0);
  EXPECT_NEAR(rate[0][0][0][0].item<double>(), 1.5, 1e-6);
}

TEST(ScfgMasks, RefusesWhatGetMaskCannotDo) {
  Case c = load_case("sd");
  c.config.rescale_method = gb::goca::RescaleMethod::Sum1;
  EXPECT_THROW(gb::gen::scfg_masks(gb::goca::Segmentor(c.config), c.uncond, c.cond, c.tokens), gb::UserError);
  c = load_case("sd");
  c.config.self_layers.clear();
  EXPECT_THROW(gb::gen::scfg_masks(gb::goca::Segmentor(c.config), c.uncond, c.cond, c.tokens), gb::UserError);
  c = load_case("sd");
  c.tokens.rescaling.push_back(99);
  EXPECT_THROW(gb::gen::scfg_masks(gb::goca::Segmentor(c.config), c.uncond, c.cond, c.tokens), gb::UserError);
}

TEST(ScfgPresets, EqualThePapersGenerationConfigs) {
  for (const auto& [backbone, c] : paper()["configs"].items()) {
    SCOPED_TRACE(backbone);
    const auto& p = gb::baselines::find_preset(backbone, "scfg");
    const auto& m = p.plan.method;
    EXPECT_EQ(gb::baselines::paper_config_file(p), c["file"].get<std::string>());
    gb::test::expect_preset_follows_paper_config(p, c);
    EXPECT_EQ(c["postprocess"], nlohmann::json::array({"affinity"}));
    EXPECT_EQ(p.plan.post, gb::baselines::PostProcess::Affinity);
    EXPECT_EQ(m.ref_mode, gb::goca::RefMode::Full);  // get_mask's reference: every channel
  }
  EXPECT_EQ(gb::baselines::generation_presets().size(), paper()["configs"].size());
}

}  // namespace

// Which built-in preset a kind takes without --method: PixArt-Sigma 512-MS (the paper's generation checkpoint, its own
// kind) takes pixart-sigma's, which is the paper's config_model_sigma.py; the kinds without a paper config have none.
TEST(ScfgPresets, PresetPerKind) {
  EXPECT_EQ(gb::gen::scfg_preset_backbone("sd15"), "sd15");
  EXPECT_EQ(gb::gen::scfg_preset_backbone("pixart-sigma"), "pixart-sigma");
  EXPECT_EQ(gb::gen::scfg_preset_backbone("pixart-sigma-512"), "pixart-sigma");
  for (const char* kind : {"sdxl", "sd21", "sd21-base", "pixart-alpha", "flux", "sd35-medium"})
    EXPECT_EQ(gb::gen::scfg_preset_backbone(kind), "") << kind;
  gb::gen::GuidanceOptions o;
  o.backbone = "sd35-large";
  EXPECT_THROW(gb::gen::make_scfg_guidance(o), gb::UserError);  // not a paper S-CFG backbone, with or without --method
}
