// CFG generation on tiny random-weight checkpoints vs diffusers 0.32.2's pipelines (goldens:
// tools/parity/generation_goldens.py): StableDiffusionPipeline (PNDM, and DDIM / Euler / DPM-Solver++ through a
// scheduler override), StableDiffusionXLPipeline (Euler, zero negative embeddings), PixArtSigmaPipeline
// (DPM-Solver++ 2M, learned sigma dropped) and FluxPipeline (flow matching, distilled guidance embedding); and
// (tools/parity/generation_new_kinds_goldens.py) SD 2.1 768-v (v_prediction through DDIM, PNDM, Euler and
// DPM-Solver++), SD 2.1-base, PixArtAlphaPipeline (micro-conditions), PixArt-Sigma 512 and StableDiffusion3Pipeline
// (fixed-shift flow matching, pooled projections, the negative prompt's CLIP|T5 states). fp32 on the CPU from the
// same token ids and initial latents: images within 1 level on >= 99.9 % of the values, final latents within 1e-4
// relative.
#include "harness/backbones/registry.h"
#include "harness/generation/guidance.h"
#include "harness/generation/sampler.h"
#include "harness/io/safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include <memory>

using namespace gb;
using namespace gb::gen;

namespace {

const std::string kGolden = std::string(GB_SOURCE_DIR) + "/tests/generation/golden/";

struct Loaded {
  std::unique_ptr<Backbone> backbone;
  std::map<std::string, at::Tensor> gold;
  std::map<std::string, std::string> meta;
  std::string root;
};

Loaded load(const std::string& folder) {
  Loaded l;
  l.root = kGolden + folder;
  bb::BackboneOptions o;
  o.image_size = 16;
  o.dtype = at::kFloat;
  l.backbone = bb::open_backbone(l.root, o);
  l.gold = load_safetensors(l.root + "/golden.safetensors");
  nlohmann::json j;
  std::ifstream(l.root + "/golden.json") >> j;
  for (const auto& [k, v] : j.items()) l.meta[k] = v.get<std::string>();
  return l;
}

at::Tensor opt(const std::map<std::string, at::Tensor>& g, const std::string& k) {
  auto it = g.find(k);
  return it == g.end() ? at::Tensor() : it->second;
}

void check(Loaded& l, const std::string& prefix, const std::string& scheduler) {
  SCOPED_TRACE(l.root + " " + prefix);
  SamplerOptions so;
  so.steps = std::stoll(l.meta.at(prefix + "steps"));
  so.guidance_scale = std::stod(l.meta.at(prefix + "scale"));
  so.scheduler = scheduler;
  Sampler s(*l.backbone, l.root, so);
  PromptTokens cond{l.gold.at("ids"), opt(l.gold, "mask"), opt(l.gold, "clip_ids"), {}};
  PromptTokens uncond{opt(l.gold, "uncond_ids"), opt(l.gold, "uncond_mask"), opt(l.gold, "uncond_clip_ids"), {}};
  GuidanceOptions go;
  go.backbone = l.backbone->kind();
  go.scale = so.guidance_scale;
  auto guidance = make_guidance("cfg", go);
  at::Tensor images = s.generate_tokens(cond, uncond, l.gold.at("latents"), *guidance);
  const auto& want_lat = l.gold.at(prefix + "final_latents");
  const double lat_err = (s.last_latents() - want_lat).abs().max().item<double>() / want_lat.abs().max().item<double>();
  EXPECT_LE(lat_err, 1e-4);
  const auto& want = l.gold.at(prefix + "images");
  ASSERT_EQ(images.sizes(), want.sizes());
  auto diff = (images.to(at::kInt) - want.to(at::kInt)).abs();
  EXPECT_LE(diff.max().item<int>(), 2);
  const double within1 = diff.le(1).to(at::kDouble).mean().item<double>();
  EXPECT_GE(within1, 0.999) << "max latent rel err " << lat_err;
  // Not a degenerate comparison: the images vary.
  EXPECT_GT(want.to(at::kFloat).std().item<double>(), 10.0);
}

// The golden folder is detected as `kind` and samples as the pipeline does with its published scheduler.
void check_published_scheduler(const std::string& folder, const std::string& kind) {
  auto l = load(folder);
  ASSERT_EQ(l.backbone->kind(), kind);
  check(l, "", "");
}

TEST(PipelineParity, Sd15AllSchedulers) {
  auto l = load("sd15_tiny");
  check(l, "", "");
  check(l, "ddim.", "ddim");
  check(l, "euler.", "euler");
  check(l, "dpm.", "dpm++2m");
}

TEST(PipelineParity, SdxlEuler) {
  auto l = load("sdxl_tiny");
  check(l, "", "");
}

TEST(PipelineParity, PixArtDpmSolver) {
  auto l = load("pixart_tiny");
  check(l, "", "");
  check(l, "long.", "");
}

TEST(PipelineParity, FluxFlowMatchDistilledGuidance) {
  auto l = load("flux_tiny");
  check(l, "", "");
}

TEST(PipelineParity, Sd21VPredictionAllSchedulers) {
  auto l = load("sd21_tiny");
  ASSERT_EQ(l.backbone->kind(), "sd21");
  check(l, "", "");  // DDIM, the published scheduler
  check(l, "pndm.", "pndm");
  check(l, "euler.", "euler");
  check(l, "dpm.", "dpm++2m");
}

TEST(PipelineParity, Sd21Base) { check_published_scheduler("sd21base_tiny", "sd21-base"); }

TEST(PipelineParity, PixArtAlphaMicroConditions) { check_published_scheduler("pixart_alpha_tiny", "pixart-alpha"); }

TEST(PipelineParity, PixArtSigma512) { check_published_scheduler("pixart_sigma_512_tiny", "pixart-sigma-512"); }

TEST(PipelineParity, Sd35FlowMatchWithPooledProjections) { check_published_scheduler("sd35_tiny", "sd35-medium"); }

}  // namespace
