#include "harness/generation/scfg.h"

#include "baselines/method_yaml.h"
#include "baselines/presets.h"
#include "goca/ops.h"
#include "harness/core/backbone.h"
#include "harness/core/errors.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace gb::gen {
namespace {

constexpr double kPi = 3.14159265358979323846;

// The paper's propagation in get_mask: every channel (no zero map set aside), m <- A^n m, per-map MinMax.
at::Tensor propagate_all(const at::Tensor& maps, const at::Tensor& affinity, int64_t order) {
  const int64_t n = maps.size(0), S = maps.size(1);
  auto x = maps.reshape({n, S * S});
  for (int64_t i = 0; i < order; ++i) x = goca::matmul_nt(x, affinity);  // rows are maps: x A^T = (A x^T)^T
  return goca::minmax(x.reshape({n, S, S}));
}

at::Tensor resize_nearest(const at::Tensor& m, int64_t h, int64_t w) {
  if (m.size(2) == h && m.size(3) == w) return m;
  return at::upsample_nearest2d(m, {h, w}, c10::nullopt, c10::nullopt);
}

}  // namespace

void validate_scfg_method(const goca::MethodConfig& m, const std::string& source) {
  using goca::RescaleMethod;
  if (m.rescale_method != RescaleMethod::Raw && m.rescale_method != RescaleMethod::PerTokenRenormPlus &&
      m.rescale_method != RescaleMethod::Sum1RenormPlus)
    fail(
        "{}: S-CFG supports rescale_method raw, per_token_renorm_plus or sum1_renorm_plus (the paper's get_mask "
        "has no other), not '{}'",
        source, goca::to_string(m.rescale_method));
  if (m.self_layers.empty()) fail("{}: S-CFG needs self_layers (the paper's get_mask always propagates)", source);
}

ScfgTokens scfg_tokens(const std::vector<TextToken>& tokens, bool replace_start_with_eos) {
  ScfgTokens out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].special) out.rescaling.push_back(static_cast<int64_t>(i));
    if (tokens[i].text == "<eos>") out.global = static_cast<int64_t>(i);  // the last one, as the paper's loop
  }
  if (out.rescaling.empty()) fail("S-CFG: the prompt has no non-special token (an empty prompt has no token regions)");
  if (!replace_start_with_eos) out.global = -1;
  else if (out.global < 0) fail("S-CFG: the prompt's tokenization has no end-of-text token");
  return out;
}

ScfgMasks scfg_masks(const goca::Segmentor& segmentor, const TensorMap& uncond, const TensorMap& cond,
                     const ScfgTokens& tokens) {
  const auto& cfg = segmentor.config();
  validate_scfg_method(cfg, "S-CFG method");

  auto pos = segmentor.aggregate(cond).maps;    // [T, S, S]
  auto neg = segmentor.aggregate(uncond).maps;  // [T, S, S]
  const int64_t T = pos.size(0);
  if (tokens.rescaling.empty()) fail("S-CFG: no non-special token");
  for (auto t : tokens.rescaling)
    if (t < 0 || t >= T) fail("S-CFG: token position {} is outside the {} token channels of the maps", t, T);
  if (tokens.global >= T) fail("S-CFG: end-of-text position {} is outside the {} token channels", tokens.global, T);

  // Negative branch, channel 0 only (the only one get_mask reads). utils_sigma: A_c's raw end-of-text map.
  at::Tensor neg0 = tokens.global >= 0 ? pos.narrow(0, tokens.global, 1) : neg.narrow(0, 0, 1);

  // Positive branch: rescaling over the non-special tokens, every channel kept (rho is appended as the last
  // channel, the layout goca::rescale reads).
  auto ids = at::tensor(tokens.rescaling, at::TensorOptions().dtype(at::kLong)).to(pos.device());
  auto rho = pos.index_select(0, ids).sum(0, true);
  auto pos_r = goca::rescale(at::cat({pos, rho}, 0), cfg.rescale_method);  // [T, S, S]

  auto A = segmentor.affinity(cond);  // self maps of the conditional half, for both branches
  auto pos_p = propagate_all(pos_r, A, cfg.propagation_order);
  const int64_t first_pad = tokens.rescaling.back() + 1;
  if (first_pad < T) pos_p.narrow(0, first_pad, T - first_pad).zero_();

  auto c0 = goca::minmax(goca::gaussian_blur5(propagate_all(neg0, A, cfg.propagation_order)));  // [1, S, S]

  ScfgMasks out;
  auto mx = std::get<0>(pos_p.max(0, true));  // NaN-propagating, as torch.max
  out.tokens = pos_p.eq(mx).to(at::kFloat);
  // fore_ca = [c0, 1 - c0]; fore_mask = 1 - (fore_ca == max)[0]
  out.foreground = 1.0 - c0.eq(at::maximum(c0, 1.0 - c0)).to(at::kFloat);
  return out;
}

at::Tensor scfg_smoothing_kernel() {
  const double sigma = 0.5, mean = 1.0;  // (kernel_size - 1) / 2
  auto g = at::arange(3, at::TensorOptions().dtype(at::kFloat));
  auto grids = at::meshgrid({g, g}, "ij");
  at::Tensor kernel;
  for (const auto& m : grids) {
    auto f = (1.0 / (sigma * std::sqrt(2.0 * kPi))) * at::exp(-((m - mean) / (2.0 * sigma)).pow(2));
    kernel = kernel.defined() ? kernel * f : f;
  }
  return kernel / at::sum(kernel);
}

at::Tensor scfg_rate(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const at::Tensor& token_masks,
                     const at::Tensor& foreground, double guidance_scale) {
  const int64_t h = eps_uncond.size(2), w = eps_uncond.size(3);
  auto mt = resize_nearest(token_masks.to(at::kFloat), h, w);  // [B, T, h, w]
  auto mf = resize_nearest(foreground.to(at::kFloat), h, w);   // [B, 1, h, w]

  auto delta = eps_cond.to(at::kFloat) - eps_uncond.to(at::kFloat);
  auto norm = at::linalg_vector_norm(delta, 2, {1}, true, c10::nullopt);  // [B, 1, h, w]
  auto area = mt.sum({2, 3});                                             // [B, T]
  auto down = (norm * mt).sum({2, 3}) / (area + 1e-8);
  auto up = (norm * mf).sum({2, 3}) / (mf.sum({2, 3}) + 1e-8);  // [B, 1]
  auto used = area.gt(0).to(at::kFloat);
  auto per_token = up * used / (down + 1e-8);                             // [B, T]
  auto rate = (per_token.unsqueeze(-1).unsqueeze(-1) * mt).sum(1, true);  // [B, 1, h, w]; ties add up
  rate = at::clamp(rate, 0.8, 3.0);
  rate = at::clamp_max(rate, 15.0 / guidance_scale);
  rate = at::reflection_pad2d(rate, {1, 1, 1, 1});
  auto k = scfg_smoothing_kernel().to(rate.device()).view({1, 1, 3, 3});
  return at::conv2d(rate, k);
}

at::Tensor scfg_combine(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const at::Tensor& rate,
                        double guidance_scale) {
  auto r = rate.to(eps_uncond.scalar_type());
  return eps_uncond + (r * guidance_scale) * (eps_cond - eps_uncond);
}

}  // namespace gb::gen

namespace gb::gen {
namespace {

baselines::MethodPlan scfg_plan(const GuidanceOptions& o, std::string& source) {
  if (o.backbone == "flux" || o.backbone.rfind("sd35", 0) == 0)
    fail("--guidance scfg is not available for {} (the paper ran S-CFG on SD1.5 and PixArt-Sigma only)", o.backbone);
  if (!o.protocol.empty() && o.protocol != "paper")
    fail("--guidance scfg implements protocol 'paper' only (got '{}')", o.protocol);
  baselines::MethodPlan plan;
  if (o.method_path.empty()) {
    const std::string preset = scfg_preset_backbone(o.backbone);
    if (preset.empty())
      fail("--guidance scfg on {} needs --method (S-CFG presets exist for sd15, pixart-sigma and pixart-sigma-512)",
           o.backbone);
    plan = baselines::find_preset(preset, "scfg").plan;
    source = "preset " + preset + "/scfg (configs/methods/" + preset + "/scfg.yaml)";
  } else {
    plan = baselines::load_method_plan(o.method_path);
    source = o.method_path;
    if (plan.post != baselines::PostProcess::Affinity)
      fail_file(o.method_path, "S-CFG needs post: affinity (the paper's get_mask always propagates), got '{}'",
                baselines::to_string(plan.post));
  }
  return plan;
}

}  // namespace

ScfgGuidance::ScfgGuidance(const GuidanceOptions& o)
    : method_source_(),
      segmentor_(scfg_plan(o, method_source_).method),
      backbone_(o.backbone),
      eos_replaces_start_(o.backbone.rfind("pixart", 0) == 0) {  // utils_sigma: the T5 (PixArt) kinds
  if (o.model == nullptr) throw std::logic_error("ScfgGuidance: GuidanceOptions::model is null");
  tokenizer_ = &o.model->tokenizer();
  validate_scfg_method(segmentor_.config(), method_source_);
}

const ScfgTokens& ScfgGuidance::tokens_for(const std::string& text) {
  auto it = token_cache_.find(text);
  if (it == token_cache_.end())
    it = token_cache_.emplace(text, scfg_tokens(tokenizer_->encode(text), eos_replaces_start_)).first;
  return it->second;
}

at::Tensor ScfgGuidance::combine(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const Capture& capture,
                                 const GuidanceStep& step) {
  const int64_t B = eps_cond.size(0);
  if (capture.batch_size != 2 * B || static_cast<int64_t>(step.cond.size()) != B)
    throw std::logic_error("ScfgGuidance::combine: the capture or the step does not hold the CFG batch of " +
                           std::to_string(B) + " prompts");
  last_masks_.clear();
  std::vector<at::Tensor> tokens, fore;
  for (int64_t b = 0; b < B; ++b) {
    last_masks_.push_back(
        scfg_masks(segmentor_, capture.sample(b), capture.sample(B + b), tokens_for(step.cond[b].text)));
    tokens.push_back(last_masks_.back().tokens);
    fore.push_back(last_masks_.back().foreground);
  }
  auto dev = eps_cond.device();
  last_rate_ = scfg_rate(eps_uncond, eps_cond, at::stack(tokens).to(dev), at::stack(fore).to(dev), step.scale);
  return scfg_combine(eps_uncond, eps_cond, last_rate_, step.scale);
}

std::map<std::string, std::string> ScfgGuidance::settings() const {
  const auto& m = segmentor_.config();
  return {{"method", method_source_},
          {"protocol", "paper"},
          {"masks", eos_replaces_start_ ? "utils_sigma.get_mask" : "utils_15.get_mask"},
          {"ref_layer", m.ref_layer},
          {"ref_mode", goca::to_string(m.ref_mode)},
          {"layers", std::to_string(m.layers.size())},
          {"self_layers", std::to_string(m.self_layers.size())},
          {"propagation_order", std::to_string(m.propagation_order)},
          {"output_size", std::to_string(m.output_size)}};
}

std::string scfg_preset_backbone(const std::string& kind) {
  if (kind == "sd15") return "sd15";
  if (kind == "pixart-sigma" || kind == "pixart-sigma-512") return "pixart-sigma";
  return "";
}

std::unique_ptr<Guidance> make_scfg_guidance(const GuidanceOptions& options) {
  return std::make_unique<ScfgGuidance>(options);
}

}  // namespace gb::gen
