// The synthetic world is built so that the paper's components matter: this test runs Vanilla, Baseline and
// GoCA on it (in memory: scenes, captions -> token groups by word matching, synthetic backbone, the real
// Segmentor and evaluator) and checks GoCA > Baseline > Vanilla. If it fails, either a method or the
// generator changed.
#include "goca/segmentor.h"
#include "harness/eval/evaluator.h"
#include "harness/backbones/synthetic_backbone.h"
#include "harness/backbones/synthetic_scene.h"
#include "tests/backbones/simple_tokenizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

using namespace gb::bb;

namespace {

gb::TokenGroups groups_for(const std::vector<gb::TextToken>& tokens, const Scene& scene) {
  gb::TokenGroups g;
  std::map<int64_t, size_t> object_of;  // class -> index into g.objects
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t].special) continue;
    const int64_t c = synthetic_concept_of_word(tokens[t].text);
    if (c < 0) continue;
    g.rescaling_token_ids.push_back(static_cast<int64_t>(t));
    if (c >= kStuffBase) {
      g.background_objects.push_back({static_cast<int64_t>(t)});
      continue;
    }
    auto it = object_of.find(c);
    if (it == object_of.end()) {
      object_of[c] = g.objects.size();
      g.objects.push_back({c, {static_cast<int64_t>(t)}});
    } else {
      g.objects[it->second].tokens.push_back(static_cast<int64_t>(t));
    }
  }
  return g;
}

gb::goca::MethodConfig method(const std::string& which) {
  gb::goca::MethodConfig c;
  const std::vector<std::string> all = {"down-level0-repeat0",
                                        "down-level0-repeat1",
                                        "down-level1-repeat0",
                                        "down-level1-repeat1",
                                        "down-level2-repeat0",
                                        "down-level2-repeat1",
                                        "mid",
                                        "up-level1-repeat0",
                                        "up-level1-repeat1",
                                        "up-level1-repeat2",
                                        "up-level2-repeat0",
                                        "up-level2-repeat1",
                                        "up-level2-repeat2",
                                        "up-level3-repeat0",
                                        "up-level3-repeat1",
                                        "up-level3-repeat2"};
  const std::vector<std::string> picked = {"down-level2-repeat0", "down-level2-repeat1", "mid",
                                           "up-level1-repeat0",   "up-level1-repeat1",   "up-level1-repeat2",
                                           "up-level2-repeat0",   "up-level2-repeat1"};
  for (const auto& l : which == "baseline" ? picked : all) c.layers.push_back(l + "-vit-block0-cross-map");
  c.self_layers = {"up-level3-repeat0-vit-block0-self-map", "up-level3-repeat1-vit-block0-self-map",
                   "down-level0-repeat1-vit-block0-self-map"};
  c.ref_layer = "up-level2-repeat1-vit-block0-cross-q";
  c.output_size = 32;
  c.propagation_order = 2;
  if (std::getenv("GB_SYN_NOPROP")) c.self_layers.clear();
  if (which == "goca") {
    c.head_method = gb::goca::HeadMethod::DotProductNoClamp;
    c.layer_method = gb::goca::LayerMethod::DotProductSimilarity;
    c.rescale_method = gb::goca::RescaleMethod::Sum1RenormPlus;
  } else {
    c.head_method = gb::goca::HeadMethod::Average;
    c.layer_method = gb::goca::LayerMethod::Vanilla;
    c.rescale_method = gb::goca::RescaleMethod::PerTokenRenormPlus;
  }
  if (const char* h = std::getenv("GB_SYN_HEAD"); h && which == "goca") c.head_method = gb::goca::parse_head_method(h);
  if (const char* l = std::getenv("GB_SYN_LAYER"); l && which == "goca")
    c.layer_method = gb::goca::parse_layer_method(l);
  if (const char* r = std::getenv("GB_SYN_RESCALE"); r && which == "goca")
    c.rescale_method = gb::goca::parse_rescale_method(r);
  return c;
}

}  // namespace

TEST(SyntheticWorld, GoCABeatsBaselineBeatsVanilla) {
  auto tok = std::make_shared<gb::test::SimpleTokenizer>();
  SyntheticBackbone bb(SyntheticBackboneConfig::sd15_like(), tok);
  const std::vector<std::string> names = {"vanilla", "baseline", "goca"};
  std::vector<gb::goca::Segmentor> segs;
  gb::CaptureSpec spec;
  for (size_t k = 0; k < names.size(); ++k) {
    segs.emplace_back(method(names[k]));
    if (k == 0) spec = segs.back().required_capture();
    else spec.merge(segs.back().required_capture());
  }
  gb::eval::EvalConfig ec;
  ec.num_classes = 21;
  std::vector<gb::eval::SweepEvaluator> evs;
  for (size_t k = 0; k < names.size(); ++k) evs.emplace_back(ec);
  const int n = std::getenv("GB_SYN_N") ? std::atoi(std::getenv("GB_SYN_N")) : 12;
  for (int i = 0; i < n; ++i) {
    const std::string id = synthetic_id(i);
    const Scene scene = make_scene(id, bb.config().world);
    const std::string caption = scene.caption();
    const gb::TokenGroups groups = groups_for(tok->encode(caption), scene);
    const gb::TensorMap cap = bb.capture_one(id + ".jpg", caption, spec);
    std::vector<int64_t> present;
    for (const auto& o : groups.objects) present.push_back(o.class_id);
    const at::Tensor label = render_label(scene);
    for (size_t k = 0; k < names.size(); ++k) {
      const auto out = segs[k].run(cap, groups);
      if (std::getenv("GB_SYN_DEBUG") && i == 0) {
        std::printf("%s scores %s min %f max %f nan %d\n", names[k].c_str(), caption.c_str(),
                    out.scores.min().item<double>(), out.scores.max().item<double>(),
                    (int)out.scores.isnan().any().item<bool>());
        std::printf("  layer weights: ");
        at::Tensor lw = out.layer_weights.dim() == 1 ? out.layer_weights : out.layer_weights.mean({1, 2});
        for (int64_t l = 0; l < lw.size(0); ++l) std::printf(" %.3f", lw[l].item<double>());
        std::printf("\n");
      }
      if (std::getenv("GB_SYN_DEBUG") && i == 0) {
        static at::Tensor prev;
        if (prev.defined())
          std::printf("  diff to previous method: %f\n", (out.scores - prev).abs().max().item<double>());
        prev = out.scores.clone();
        std::printf("  present:");
        for (auto c : present) std::printf(" %ld", (long)c);
        std::printf("  bg objects %zu  scores shape %ld %ld %ld\n", groups.background_objects.size(),
                    (long)out.scores.size(0), (long)out.scores.size(1), (long)out.scores.size(2));
      }
      evs[k].add_image(out.scores, present, label);
    }
  }
  std::vector<double> miou;
  for (size_t k = 0; k < names.size(); ++k) {
    const auto r = evs[k].result();
    miou.push_back(r.per_threshold[r.chosen].metrics.miou);
    std::printf("%-9s mIoU %.2f (threshold %.1f) per class:", names[k].c_str(), 100 * miou.back(),
                r.per_threshold[r.chosen].threshold);
    for (double v : r.per_threshold[r.chosen].metrics.iou) std::printf(" %.0f", 100 * v);
    std::printf("\n");
  }
  EXPECT_GT(miou[2], miou[1]);
  EXPECT_GT(miou[1], miou[0]);
}

// head_method: average asks for the cross maps as their fp32 head average (CaptureSpec::cross_map_head_mean);
// the Segmentor's output from those equals, bit for bit, its output from the per-head maps.
TEST(SyntheticWorld, CrossMapHeadMeansGiveTheSameSegmentationAsPerHeadMaps) {
  auto tok = std::make_shared<gb::test::SimpleTokenizer>();
  SyntheticBackbone bb(SyntheticBackboneConfig::sd15_like(), tok);
  for (const char* which : {"vanilla", "baseline"}) {
    const gb::goca::Segmentor seg(method(which));
    gb::CaptureSpec mean = seg.required_capture();
    ASSERT_TRUE(mean.cross_map_head_mean);
    gb::CaptureSpec heads = mean;
    heads.cross_map_head_mean = false;
    for (int i = 0; i < 3; ++i) {
      const std::string id = synthetic_id(i);
      const Scene scene = make_scene(id, bb.config().world);
      const gb::TokenGroups groups = groups_for(tok->encode(scene.caption()), scene);
      const gb::TensorMap a = bb.capture_one(id + ".jpg", scene.caption(), mean);
      const gb::TensorMap b = bb.capture_one(id + ".jpg", scene.caption(), heads);
      const std::string k = method(which).layers.front();
      EXPECT_EQ(a.at(k).size(0), 1);
      EXPECT_GT(b.at(k).size(0), 1);
      EXPECT_TRUE(at::equal(seg.run(a, groups).scores, seg.run(b, groups).scores)) << which << " " << id;
    }
  }
  // A method that weights heads needs them all: merging its spec turns the head average off.
  gb::CaptureSpec merged = gb::goca::Segmentor(method("vanilla")).required_capture();
  merged.merge(gb::goca::Segmentor(method("goca")).required_capture());
  EXPECT_FALSE(merged.cross_map_head_mean);
  EXPECT_TRUE(merged.self_map_head_mean);
}
