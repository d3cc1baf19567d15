#include "harness/generation/guidance.h"

#include "harness/core/errors.h"

#include <fmt/ranges.h>

#include "harness/generation/scfg.h"

namespace gb::gen {

CfgGuidance::CfgGuidance(const GuidanceOptions& o) : distilled_(o.backbone == "flux") {}

at::Tensor CfgGuidance::combine(const at::Tensor& eps_uncond, const at::Tensor& eps_cond, const Capture&,
                                const GuidanceStep& step) {
  // noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond) with a Python-float scale.
  return eps_uncond + (eps_cond - eps_uncond) * step.scale;
}

std::vector<std::string> guidance_names() { return {"cfg", "scfg"}; }

std::unique_ptr<Guidance> make_guidance(const std::string& name, const GuidanceOptions& options) {
  if (name == "cfg") return std::make_unique<CfgGuidance>(options);
  if (name == "scfg") return make_scfg_guidance(options);
  fail("unknown guidance '{}' (known: {})", name, fmt::join(guidance_names(), ", "));
}

}  // namespace gb::gen
