// Presets (see presets.h). Every list below is the paper's config, in its order; docs/methods.md
// records the comparison with spec §I.
#include "baselines/presets.h"

#include "harness/core/capture.h"
#include "harness/core/errors.h"
#include "harness/core/strings.h"

#include <algorithm>

namespace gb::baselines {

using goca::HeadMethod;
using goca::LayerMethod;
using goca::MethodConfig;
using goca::RescaleMethod;

PostProcess parse_post_process(const std::string& s) {
  const std::string n = gb::to_lower(gb::trim(s));
  if (n == "none") return PostProcess::None;
  if (n == "affinity") return PostProcess::Affinity;
  if (n == "dcrf" || n == "affinity+dcrf") return PostProcess::Dcrf;
  std::string list;
  for (const auto& sp : post_process_spellings()) list += (list.empty() ? "'" : ", '") + sp + "'";
  fail("unknown post-processing '{}' (accepted: {})", s, list);
}

const char* to_string(PostProcess p) {
  switch (p) {
    case PostProcess::None: return "none";
    case PostProcess::Affinity: return "affinity";
    case PostProcess::Dcrf: return "dcrf";
  }
  return "?";
}

std::vector<std::string> post_process_spellings() { return {"none", "affinity", "dcrf", "affinity+dcrf"}; }

bool same_method(const MethodConfig& a, const MethodConfig& b) {
  return a.head_method == b.head_method && a.layer_method == b.layer_method && a.rescale_method == b.rescale_method &&
         a.ref_mode == b.ref_mode && a.multi_token == b.multi_token && a.layers == b.layers &&
         a.ref_layer == b.ref_layer && a.self_layers == b.self_layers && a.propagation_order == b.propagation_order &&
         a.output_size == b.output_size && a.keep_all_objects == b.keep_all_objects;
}

bool same_plan(const MethodPlan& a, const MethodPlan& b) {
  return same_method(a.method, b.method) && a.post == b.post && a.capture == b.capture;
}

namespace layers {

std::vector<int> range(int first, int last) {
  std::vector<int> out;
  for (int i = first; i <= last; ++i) out.push_back(i);
  return out;
}

namespace {
std::string map_key(const std::string& location, AttentionKind kind) {
  return capture_key(attention_block(location, kind), CaptureTensor::map);
}
// "<level>-repeat<r>-vit-block<b>" maps for r < repeats, b < blocks (a UNet level's transformer blocks, in
// list-layers order).
void add_level(std::vector<std::string>& out, const std::string& level, int repeats, int blocks, AttentionKind kind) {
  for (int r = 0; r < repeats; ++r)
    for (int b = 0; b < blocks; ++b)
      out.push_back(map_key(level + "-repeat" + std::to_string(r) + "-" + vit_block(b), kind));
}
std::vector<std::string> dit_maps(const std::vector<int>& blocks, AttentionKind kind) {
  std::vector<std::string> out;
  for (int b : blocks) out.push_back(map_key(vit_block(b), kind));
  return out;
}
}  // namespace

std::vector<std::string> sd15_all() {
  // down-level0..2: 2 repeats (64, 32, 16 px); mid (8 px); up-level1..3: 3 repeats (16, 32, 64 px).
  std::vector<std::string> out;
  for (const char* level : {"down-level0", "down-level1", "down-level2"})
    add_level(out, level, 2, 1, AttentionKind::cross);
  out.push_back(map_key("mid-" + vit_block(0), AttentionKind::cross));
  for (const char* level : {"up-level1", "up-level2", "up-level3"}) add_level(out, level, 3, 1, AttentionKind::cross);
  return out;
}

std::vector<std::string> sd15_baseline() {
  // The middle eight of sd15_all: down-level2, mid, up-level1 and up-level2 repeats 0-1.
  const std::vector<std::string> all = sd15_all();
  return {all.begin() + 4, all.begin() + 12};
}

std::vector<std::string> sd15_self() {
  std::vector<std::string> out;
  add_level(out, "up-level3", 2, 1, AttentionKind::self);
  out.push_back(map_key("down-level0-repeat1-" + vit_block(0), AttentionKind::self));
  return out;
}

std::vector<std::string> sdxl_all() {
  // down-level1: 2 repeats x 2 blocks (64x64); down-level2: 2 x 10 (32x32); mid: 10; up-level0: 3 x 10 (32x32);
  // up-level1: 3 x 2 (64x64).
  std::vector<std::string> out;
  add_level(out, "down-level1", 2, 2, AttentionKind::cross);
  add_level(out, "down-level2", 2, 10, AttentionKind::cross);
  for (int b = 0; b < 10; ++b) out.push_back(map_key("mid-" + vit_block(b), AttentionKind::cross));
  add_level(out, "up-level0", 3, 10, AttentionKind::cross);
  add_level(out, "up-level1", 3, 2, AttentionKind::cross);
  return out;
}

std::vector<std::string> sdxl_self() {
  // up-level1 r0b0, r0b1, r1b0, r1b1, r2b0; down-level1 r0b0, r0b1.
  std::vector<std::string> out;
  add_level(out, "up-level1", 2, 2, AttentionKind::self);
  out.push_back(map_key("up-level1-repeat2-" + vit_block(0), AttentionKind::self));
  add_level(out, "down-level1", 1, 2, AttentionKind::self);
  return out;
}

std::vector<std::string> dit_cross(const std::vector<int>& blocks) { return dit_maps(blocks, AttentionKind::cross); }
std::vector<std::string> dit_self(const std::vector<int>& blocks) { return dit_maps(blocks, AttentionKind::self); }

}  // namespace layers

namespace {

MethodConfig vanilla_method() {
  MethodConfig m;
  m.head_method = HeadMethod::Average;
  m.layer_method = LayerMethod::Vanilla;
  m.rescale_method = RescaleMethod::PerTokenRenormPlus;
  return m;
}

MethodConfig goca_method() {
  MethodConfig m;
  m.head_method = HeadMethod::DotProductNoClamp;
  m.layer_method = LayerMethod::DotProductSimilarity;
  m.rescale_method = RescaleMethod::Sum1RenormPlus;
  return m;
}

Preset make(const std::string& backbone, const std::string& variant, const std::string& paper, MethodConfig m,
            std::vector<std::string> cross, std::string ref, std::vector<std::string> self, int64_t order,
            CaptureSettings capture, std::string note, PostProcess post = PostProcess::Affinity) {
  m.layers = std::move(cross);
  m.ref_layer = std::move(ref);
  m.self_layers = std::move(self);
  m.propagation_order = order;
  m.output_size = 64;  // feat_size = 512 // 8 in every config, whatever the image size
  m.ref_mode = goca::RefMode::Paper;
  m.multi_token = goca::MultiToken::Mean;
  m.keep_all_objects = false;
  return Preset{backbone, variant, paper, MethodPlan{std::move(m), post, capture}, std::move(note)};
}

Preset derive(Preset p) {
  p.derived = true;
  return p;
}

std::vector<Preset> build() {
  using namespace layers;
  const CaptureSettings sd15{512, 100}, xl{1024, 100}, sigma{1024, 100}, flux{1024, 150};
  const CaptureSettings alpha{512, 100}, sigma512{512, 100}, sd21{768, 100};
  const std::string sd15_ref = "up-level2-repeat1-vit-block0-cross-q";
  const std::string xl_ref = "up-level1-repeat0-vit-block0-cross-q";
  const std::string sigma_ref = "vit-block13-cross-q";
  const std::string flux_ref = "vit-block27-attn-out";

  MethodConfig flux_goca = goca_method();
  flux_goca.head_method = HeadMethod::Average;  // config_model_flux.py: Flux stores no usable special values

  const std::string unused_ref = "ref_layer is unused by the vanilla layer method; kept as the paper's config has it.";
  return {
      make("sd15", "vanilla", "15_vanilla", vanilla_method(), sd15_all(), sd15_ref, sd15_self(), 2, sd15,
           "Plain head and layer means, per-token blur + MinMax, all 16 cross layers. " + unused_ref),
      make("sd15", "baseline", "15_baseline", vanilla_method(), sd15_baseline(), sd15_ref, sd15_self(), 2, sd15,
           "Vanilla restricted to the 8 hand-picked layers of prior work (binary layer weights). " + unused_ref),
      make("sd15", "goca", "15", goca_method(), sd15_all(), sd15_ref, sd15_self(), 2, sd15,
           "GoCA: head weights from the projection on the block output, layer weights from the reference\n"
           "pseudo self-attention, sum-1 rescaling before blur + MinMax."),
      make("sd15", "fttm", "fttm", vanilla_method(), sd15_baseline(), sd15_ref, sd15_self(), 2, sd15,
           "FTTM = Baseline + dense CRF after the affinity (postprocess/dcrf.py: bicubic to the image size,\n"
           "clamp, MinMax, pydensecrf 10 iterations, Gaussian sxy=1 compat=3, bilateral sxy=67 srgb=3 compat=4).\n"
           "The paper's postprocess_dispatch.py comments the dcrf import out (quirk Q10); `segment` needs --image.",
           PostProcess::Dcrf),
      make("sdxl", "vanilla", "xl_vanilla", vanilla_method(), sdxl_all(), xl_ref, sdxl_self(), 2, xl,
           "Plain means over all 70 cross layers. " + unused_ref),
      make("sdxl", "goca", "xl", goca_method(), sdxl_all(), xl_ref, sdxl_self(), 2, xl,
           "GoCA over all 70 cross layers; reference up-level1-repeat0 (64x64)."),
      make("pixart-sigma", "vanilla", "sigma_vanilla", vanilla_method(), dit_cross(range(10, 17)), sigma_ref,
           dit_self(range(10, 17)), 5, sigma, "Hand-picked blocks 10-17. " + unused_ref),
      make("pixart-sigma", "goca", "sigma", goca_method(), dit_cross(range(0, 27)), sigma_ref, dit_self(range(10, 17)),
           5, sigma,
           "GoCA over all 28 blocks (the config's VRAM-saving alternative, blocks 10-17, is the\n"
           "`hand_picked` layer set in configs/methods/ablations.yaml); affinity order 5."),
      make("flux", "vanilla", "flux_vanilla", vanilla_method(), dit_cross({8, 28, 47}), flux_ref, dit_self({8, 28, 47}),
           2, flux, "Hand-picked blocks 8, 28, 47 (cross and self). " + unused_ref),
      make("flux", "goca", "flux", flux_goca, dit_cross(range(0, 56)), flux_ref, dit_self({12, 18}), 2, flux,
           "head_method is 'average' in the paper's Flux config: single-stream blocks store no special values\n"
           "and double-stream ones store image values. Layers 0-56 (19 double-, 38 single-stream), t = 150."),
      // ---- beyond the paper's four models (issue 16) ----
      make("pixart-alpha", "vanilla", "alpha_vanilla", vanilla_method(), dit_cross(range(0, 27)), sigma_ref,
           dit_self(range(10, 17)), 5, alpha,
           "The paper's config_model_alpha_vanilla.py: all 28 blocks (Sigma's vanilla keeps 10-17) at 512². " +
               unused_ref),
      make("pixart-alpha", "goca", "alpha", goca_method(), dit_cross(range(0, 27)), sigma_ref, dit_self(range(10, 17)),
           5, alpha,
           "The paper's config_model_alpha.py: Sigma's GoCA at 512² (the paper loaded PixArt-XL-2-512x512; the\n"
           "1024-MS checkpoint of this kind runs at 512² with the matching micro-conditions)."),
      derive(make("pixart-sigma-512", "vanilla", "sigma_vanilla", vanilla_method(), dit_cross(range(10, 17)), sigma_ref,
                  dit_self(range(10, 17)), 5, sigma512,
                  "Sigma's vanilla preset at 512², the native size of PixArt-Sigma-XL-2-512-MS. " + unused_ref)),
      derive(make("pixart-sigma-512", "goca", "sigma", goca_method(), dit_cross(range(0, 27)), sigma_ref,
                  dit_self(range(10, 17)), 5, sigma512,
                  "Sigma's GoCA preset at 512², the native size of PixArt-Sigma-XL-2-512-MS (the checkpoint of the\n"
                  "paper's generation experiment).")),
      derive(make(
          "sd21", "vanilla", "15_vanilla", vanilla_method(), sd15_all(), sd15_ref, sd15_self(), 2, sd21,
          "SD1.5's vanilla preset (the SD 2.x UNet has the same 16 blocks) at 768², SD 2.1's size. " + unused_ref)),
      derive(make("sd21", "goca", "15", goca_method(), sd15_all(), sd15_ref, sd15_self(), 2, sd21,
                  "SD1.5's GoCA preset (the SD 2.x UNet has the same 16 blocks) at 768², SD 2.1's size.")),
      derive(make("sd21-base", "vanilla", "15_vanilla", vanilla_method(), sd15_all(), sd15_ref, sd15_self(), 2, sd15,
                  "SD1.5's vanilla preset (the SD 2.x UNet has the same 16 blocks) at 512². " + unused_ref)),
      derive(make("sd21-base", "goca", "15", goca_method(), sd15_all(), sd15_ref, sd15_self(), 2, sd15,
                  "SD1.5's GoCA preset (the SD 2.x UNet has the same 16 blocks) at 512².")),
      derive(
          make("sd35-medium", "vanilla", "flux_vanilla", vanilla_method(), dit_cross({3, 12, 20}),
               "vit-block12-attn-out", dit_self({3, 12, 20}), 2, flux,
               "Flux's vanilla blocks 8, 28, 47 of 57 at the same relative depth of 24 MMDiT blocks. " + unused_ref)),
      derive(make("sd35-medium", "goca", "flux", goca_method(), dit_cross(range(0, 23)), "vit-block12-attn-out",
                  dit_self({5, 8}), 2, flux,
                  "Flux's GoCA over all 24 blocks (ref and self blocks at Flux's relative depths: 27, 12, 18 of 57).\n"
                  "Every MMDiT block stores its image values, so the head method is GoCA's dot product, not\n"
                  "Flux's average. t = 150 over the pipeline's 50 steps, as the paper chose Flux's.")),
      derive(
          make("sd35-large", "vanilla", "flux_vanilla", vanilla_method(), dit_cross({5, 19, 31}),
               "vit-block18-attn-out", dit_self({5, 19, 31}), 2, flux,
               "Flux's vanilla blocks 8, 28, 47 of 57 at the same relative depth of 38 MMDiT blocks. " + unused_ref)),
      derive(make("sd35-large", "goca", "flux", goca_method(), dit_cross(range(0, 37)), "vit-block18-attn-out",
                  dit_self({8, 12}), 2, flux,
                  "Flux's GoCA over all 38 blocks (ref and self blocks at Flux's relative depths: 27, 12, 18 of 57).\n"
                  "Every MMDiT block stores its image values, so the head method is GoCA's dot product, not\n"
                  "Flux's average. t = 150 over the pipeline's 50 steps, as the paper chose Flux's.")),
  };
}

std::vector<Preset> build_generation() {
  using namespace layers;
  const std::string note =
      "S-CFG masks (harness/generation/scfg.h): GoCA on both CFG halves at every sampling step. ref_mode full:\n"
      "get_mask builds the reference pseudo self-attention from every channel. capture.timestep is the config's\n"
      "t, unused by generation (the maps are captured at every step).";
  std::vector<Preset> out{
      make("sd15", "scfg", "gen_15", goca_method(), sd15_all(), "up-level2-repeat1-vit-block0-cross-q", sd15_self(), 2,
           CaptureSettings{512, 100}, note),
      make("pixart-sigma", "scfg", "gen_sigma", goca_method(), dit_cross(range(10, 17)), "vit-block13-cross-q",
           dit_self(range(10, 17)), 5, CaptureSettings{512, 100},
           note + "\nBlocks 10-17 (cross and self), affinity order 5, PixArt-Sigma-XL-2-512-MS."),
  };
  for (auto& p : out) p.plan.method.ref_mode = goca::RefMode::Full;
  return out;
}

}  // namespace

const std::vector<Preset>& all_presets() {
  static const std::vector<Preset> presets = build();
  return presets;
}

const std::vector<Preset>& generation_presets() {
  static const std::vector<Preset> presets = build_generation();
  return presets;
}

std::string paper_config_file(const Preset& p) {
  const std::string gen = "gen_";
  if (p.paper_config.rfind(gen, 0) == 0)
    return "src-additional/generation-experiment/configs/config_model_" + p.paper_config.substr(gen.size()) + ".py";
  return "src-main/configs/config-model/config_model_" + p.paper_config + ".py";
}

std::vector<std::string> preset_backbones() {
  std::vector<std::string> out;
  for (const auto& p : all_presets())
    if (std::find(out.begin(), out.end(), p.backbone) == out.end()) out.push_back(p.backbone);
  return out;
}

const Preset& find_preset(const std::string& backbone, const std::string& variant) {
  std::string list;
  for (const auto* table : {&all_presets(), &generation_presets()})
    for (const auto& p : *table) {
      if (p.backbone == backbone && p.variant == variant) return p;
      list += (list.empty() ? "" : ", ") + p.backbone + "/" + p.variant;
    }
  fail("no method preset '{}/{}' (available: {})", backbone, variant, list);
}

}  // namespace gb::baselines
