// Presets against the paper's own config files, the shipped YAMLs against the presets, and the strict
// method-file parser.
#include "baselines/method_yaml.h"
#include "baselines/presets.h"
#include "harness/core/errors.h"
#include "tests/baselines/preset_checks.h"
#include "tests/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

namespace gb::baselines {
namespace {

namespace fs = std::filesystem;
const std::string kSource = GB_SOURCE_DIR;

std::string method_file(const Preset& p) {
  return kSource + "/configs/methods/" + p.backbone + "/" + p.variant + ".yaml";
}

using test::user_error_message;

// tests/baselines/data/paper_model_configs.json: the paper's ModelConfig objects, dumped by
// tools/parity/method_presets_golden.py from /work/ref/goca/src-main/configs/config-model/*.py.
TEST(Presets, EqualThePapersConfigFiles) {
  std::ifstream in(kSource + "/tests/baselines/data/paper_model_configs.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json paper = nlohmann::json::parse(in)["configs"];
  std::set<std::string> seen;
  for (const auto& p : all_presets()) {
    SCOPED_TRACE(p.backbone + "/" + p.variant);
    ASSERT_TRUE(paper.contains(p.paper_config));
    if (p.derived) {  // a backbone the paper lacks: the config it follows, changed as its note says
      EXPECT_NO_THROW(p.plan.method.validate("preset"));
      EXPECT_FALSE(p.note.empty());
      continue;
    }
    seen.insert(p.paper_config);
    const auto& c = paper[p.paper_config];
    const auto& m = p.plan.method;
    EXPECT_EQ(c["task"], "goca");
    // The paper's spellings parse to exactly the preset's enums, and back.
    test::expect_preset_follows_paper_config(p, c);
    EXPECT_EQ(std::string(goca::paper_name(m.head_method)), c["head_method"].get<std::string>());
    EXPECT_EQ(std::string(goca::paper_name(m.rescale_method)), c["rescale_method"].get<std::string>());
    const auto chain = c["postprocess"].get<std::vector<std::string>>();
    const bool with_dcrf = chain == std::vector<std::string>{"affinity", "dcrf"};
    EXPECT_EQ(p.plan.post, with_dcrf ? PostProcess::Dcrf : PostProcess::Affinity);
    EXPECT_TRUE(chain.front() == "affinity");
    // Module constants and defaults of the paper's code.
    EXPECT_EQ(m.ref_mode, goca::RefMode::Paper);
    EXPECT_EQ(m.multi_token, goca::MultiToken::Mean);
    EXPECT_FALSE(m.keep_all_objects);
    EXPECT_NO_THROW(m.validate("preset"));
  }
  EXPECT_EQ(seen.size(), paper.size());  // every paper config has a preset
}

TEST(Presets, KeyNamesAreThePapers) {
  const auto& goca = find_preset("sd15", "goca").plan.method;
  EXPECT_EQ(goca.layers.front(), "down-level0-repeat0-vit-block0-cross-map");
  EXPECT_EQ(goca.ref_layer, "up-level2-repeat1-vit-block0-cross-q");
  EXPECT_EQ(find_preset("sdxl", "goca").plan.method.ref_layer, "up-level1-repeat0-vit-block0-cross-q");
  EXPECT_EQ(find_preset("sdxl", "goca").plan.method.layers.size(), 70u);
  EXPECT_EQ(find_preset("flux", "goca").plan.method.ref_layer, "vit-block27-attn-out");
  EXPECT_EQ(find_preset("flux", "goca").plan.method.layers.back(), "vit-block56-cross-map");
  EXPECT_EQ(find_preset("pixart-sigma", "goca").plan.method.ref_layer, "vit-block13-cross-q");
  const std::string e = user_error_message([] { find_preset("sdxl", "baseline"); });
  EXPECT_NE(e.find("sd15/baseline"), std::string::npos) << e;
}

TEST(MethodFiles, EveryShippedFileEqualsItsPreset) {
  for (const auto* table : {&all_presets(), &generation_presets()})
    for (const auto& p : *table) {
      SCOPED_TRACE(method_file(p));
      const MethodPlan loaded = load_method_plan(method_file(p));
      EXPECT_TRUE(same_plan(loaded, p.plan));
    }
  // ... and there is no method file without a preset.
  for (const auto& backbone : fs::directory_iterator(kSource + "/configs/methods")) {
    if (!backbone.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(backbone.path())) {
      const std::string variant = f.path().stem().string();
      EXPECT_NO_THROW(find_preset(backbone.path().filename().string(), variant)) << f.path();
    }
  }
}

TEST(MethodFiles, CanonicalYamlRoundTrips) {
  auto presets = all_presets();
  presets.insert(presets.end(), generation_presets().begin(), generation_presets().end());
  for (const auto& p : presets) {
    const std::string yaml = method_plan_to_yaml(p.plan, "round trip");
    EXPECT_TRUE(same_plan(parse_method_plan(yaml, p.backbone + "/" + p.variant), p.plan)) << yaml;
  }
  MethodPlan odd = find_preset("sd15", "goca").plan;
  odd.method.ref_mode = goca::RefMode::Full;
  odd.method.multi_token = goca::MultiToken::Sum;
  odd.method.keep_all_objects = true;
  odd.method.self_layers.clear();
  odd.post = PostProcess::None;
  odd.method.ref_layer = "";
  odd.method.layer_method = goca::LayerMethod::Vanilla;
  EXPECT_TRUE(same_plan(parse_method_plan(method_plan_to_yaml(odd), "odd"), odd));
}

const char* kMinimal = R"(head_method: 'dot-product w/o clamp'
layer_method: dot-product similarity
rescale_method: 'sum-1 rescaling + per-token renorm+'
layers: [up-level1-repeat0-vit-block0-cross-map, mid-vit-block0-cross-map]
ref_layer: up-level2-repeat1-vit-block0-cross-q
output_size: 64
)";

TEST(MethodFiles, AcceptsThePapersSpellingsAndDefaults) {
  const MethodPlan p = parse_method_plan(kMinimal, "m.yaml");
  EXPECT_EQ(p.method.head_method, goca::HeadMethod::DotProductNoClamp);
  EXPECT_EQ(p.method.layer_method, goca::LayerMethod::DotProductSimilarity);
  EXPECT_EQ(p.method.rescale_method, goca::RescaleMethod::Sum1RenormPlus);
  EXPECT_EQ(p.method.ref_mode, goca::RefMode::Paper);
  EXPECT_EQ(p.method.multi_token, goca::MultiToken::Mean);
  EXPECT_EQ(p.post, PostProcess::None);  // no self layers: no propagation
  EXPECT_FALSE(p.method.keep_all_objects);
  const MethodPlan q = parse_method_plan(std::string(kMinimal) +
                                             "self_layers: [up-level3-repeat0-vit-block0-self-map]\n"
                                             "propagation_order: 5\npost: 'affinity+dcrf'\n",
                                         "m.yaml");
  EXPECT_EQ(q.post, PostProcess::Dcrf);
  EXPECT_EQ(q.method.propagation_order, 5);
}

// Each malformed file: one UserError naming the file, the line and the key; enum errors list the spellings.
TEST(MethodFiles, StrictErrorsNameFileLineAndKey) {
  struct Case {
    std::string yaml;
    std::vector<std::string> expect;  // substrings of the message
  };
  const std::string base = kMinimal;
  const std::vector<Case> cases = {
      {base + "head_metod: average\n", {"m.yaml:7", "head_metod"}},
      {std::string("head_method: dot product\n") + base.substr(base.find('\n') + 1),
       {"m.yaml:1", "head_method", "dot product", "'dot-product w/o clamp'", "dot_product_no_clamp", "cosine + VW"}},
      {base + "ref_mode: partial\n", {"m.yaml:7", "ref_mode", "'full'"}},
      {base + "multi_token: max\n", {"m.yaml:7", "multi_token", "'sum'"}},
      {base + "post: crf\n", {"m.yaml:7", "post", "'dcrf'"}},
      {base + "self_layers: [up-level3-repeat0-vit-block0-self-map]\npost: none\n", {"m.yaml:8", "post", "none"}},
      {base + "post: affinity\n", {"m.yaml:7", "post", "self_layers"}},
      {base + "self_layers: [up-level3-repeat0-vit-block0-cross-map]\n", {"m.yaml:7", "self_layers.0", "self-map"}},
      {base + "propagation_order: -1\nself_layers: [a-self-map]\n", {"m.yaml:7", "propagation_order"}},
      {base + "capture: {image_size: 512}\n", {"m.yaml:7", "capture", "timestep"}},
      {base + "capture: {image_size: 512, timestep: 100, seed: 3}\n", {"m.yaml:7", "seed"}},
      {base + "keep_all_objects: maybe\n", {"m.yaml:7", "keep_all_objects"}},
      {std::string(kMinimal).replace(std::string(kMinimal).find("output_size: 64"), 15, "output_size: '64'"),
       {"m.yaml:6", "output_size"}},
      {std::string(kMinimal).replace(std::string(kMinimal).find("mid-vit-block0-cross-map"), 24,
                                     "up-level1-repeat0-vit-block0-cross-map"),
       {"m.yaml:4", "layers.1", "duplicate"}},
      {std::string(kMinimal).replace(std::string(kMinimal).find("mid-vit-block0-cross-map"), 24,
                                     "mid-vit-block0-cross-q"),
       {"m.yaml:4", "layers.1", "cross-map"}},
      {std::string(kMinimal).replace(std::string(kMinimal).find("ref_layer"), 9, "# ref_layer"),
       {"m.yaml:2", "layer_method", "ref_layer"}},
      {std::string(kMinimal).replace(std::string(kMinimal).find("output_size: 64"), 15, "output_size: 2"),
       {"m.yaml:6", "output_size"}},
      {"layers: [mid-vit-block0-cross-map]\noutput_size: 64\n", {"m.yaml", "head_method", "missing"}},
  };
  for (const auto& c : cases) {
    const std::string e = user_error_message([&] { parse_method_plan(c.yaml, "m.yaml"); });
    ASSERT_FALSE(e.empty()) << c.yaml;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    for (const auto& s : c.expect) EXPECT_NE(e.find(s), std::string::npos) << "'" << s << "' not in: " << e;
  }
}

TEST(MethodFiles, OverridesApply) {
  const auto& p = find_preset("sd15", "goca");
  const MethodPlan m = load_method_plan(method_file(p), {"head_method=cosine + VW", "propagation_order=3"});
  EXPECT_EQ(m.method.head_method, goca::HeadMethod::CosineVW);
  EXPECT_EQ(m.method.propagation_order, 3);
  EXPECT_EQ(m.method.layers, p.plan.method.layers);
}

TEST(Ablations, AxesAreCompleteEnumsAndLayerSetsMatchThePresets) {
  const AblationAxes a = load_ablation_axes(kSource + "/configs/methods/ablations.yaml");
  EXPECT_EQ(a.head_method, goca::all_head_methods());
  EXPECT_EQ(a.layer_method, goca::all_layer_methods());
  EXPECT_EQ(a.rescale_method, goca::all_rescale_methods());
  EXPECT_EQ(a.ref_mode, (std::vector<goca::RefMode>{goca::RefMode::Paper, goca::RefMode::Full}));
  EXPECT_EQ(a.multi_token, (std::vector<goca::MultiToken>{goca::MultiToken::Mean, goca::MultiToken::Sum}));
  EXPECT_EQ(a.post, (std::vector<PostProcess>{PostProcess::None, PostProcess::Affinity, PostProcess::Dcrf}));
  EXPECT_EQ(a.keep_all_objects, (std::vector<bool>{false, true}));
  for (int64_t n : {2, 5})
    EXPECT_NE(std::find(a.propagation_order.begin(), a.propagation_order.end(), n), a.propagation_order.end());
  // Every preset's layer list and self-layer list is one of the named sets of its backbone.
  for (const auto& p : all_presets()) {
    SCOPED_TRACE(p.backbone + "/" + p.variant);
    ASSERT_TRUE(a.layer_sets.count(p.backbone));
    bool cross = false, self = false;
    for (const auto& [name, set] : a.layer_sets.at(p.backbone)) cross |= set == p.plan.method.layers;
    for (const auto& [name, set] : a.self_layer_sets.at(p.backbone)) self |= set == p.plan.method.self_layers;
    EXPECT_TRUE(cross);
    EXPECT_TRUE(self);
  }
  // The named sets follow the key grammar, so any of them can replace a preset's list.
  for (const auto& [backbone, sets] : a.layer_sets)
    for (const auto& [name, set] : sets) {
      goca::MethodConfig m = find_preset(backbone, "vanilla").plan.method;
      m.layers = set;
      EXPECT_NO_THROW(m.validate(backbone + "." + name));
    }
  EXPECT_EQ(a.layer_sets.at("flux").at("vram_saving"), layers::dit_cross({12, 18, 27, 28, 29}));
}

TEST(PostProcess, Spellings) {
  for (const auto& s : post_process_spellings()) EXPECT_NO_THROW(parse_post_process(s));
  EXPECT_EQ(parse_post_process(" DCRF "), PostProcess::Dcrf);
  const std::string e = user_error_message([] { parse_post_process("pamr"); });
  EXPECT_NE(e.find("'affinity'"), std::string::npos) << e;
}

}  // namespace
}  // namespace gb::baselines
