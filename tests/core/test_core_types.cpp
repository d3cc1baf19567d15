#include "harness/core/capture.h"
#include "harness/core/errors.h"
#include "harness/core/progress.h"
#include "harness/core/token_groups.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace gb {
namespace {

TEST(TokenGroups, JsonRoundTrip) {
  TokenGroups g;
  g.objects = {{15, {3, 4}}, {9, {}}};
  g.background_objects = {{9}, {11, 12}};
  g.rescaling_token_ids = {3, 4, 9, 11, 12};
  auto back = TokenGroups::from_json(g.to_json(), "mem");
  EXPECT_EQ(back, g);
}

TEST(TokenGroups, ErrorsNameTheSource) {
  try {
    TokenGroups::from_json(R"({"objects": [{"class": "x", "tokens": []}]})", "T.json");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("T.json: objects[0]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TokenGroups::from_json("{", "T.json"), UserError);
  EXPECT_THROW(TokenGroups::from_json(R"({"objects": [], "extra": 1})", "T.json"), UserError);
  EXPECT_THROW(TokenGroups::from_json(R"({"background_objects": []})", "T.json"), UserError);
}

TEST(Capture, SampleAndStackAreInverse) {
  Capture c;
  c.batch_size = 2;
  c.tensors["up-level2-repeat1-vit-block0-cross-map"] = at::rand({2, 8, 16, 77});
  c.inputs["input.timestep"] = at::tensor({101.0, 101.0});
  auto s0 = c.sample(0, true);
  auto s1 = c.sample(1, true);
  EXPECT_EQ(s0.at("up-level2-repeat1-vit-block0-cross-map").sizes(), (at::IntArrayRef{8, 16, 77}));
  auto back = Capture::from_samples({s0, s1});
  EXPECT_TRUE(at::equal(back.at("up-level2-repeat1-vit-block0-cross-map"), c.tensors.begin()->second));
  EXPECT_TRUE(at::equal(back.inputs.at("input.timestep"), c.inputs.at("input.timestep")));
  EXPECT_THROW(c.at("up-level2-repeat1-vit-block0-cross-q"), UserError);
}

TEST(Capture, KeyGrammar) {
  EXPECT_EQ(self_key_for_cross("mid-vit-block0-cross-map"), "mid-vit-block0-self-map");
  EXPECT_EQ(block_of("up-level1-repeat0-vit-block0-cross-q"), "up-level1-repeat0-vit-block0-cross");
  EXPECT_EQ(block_of("vit-block3-cross-special-post-value"), "vit-block3-cross");
  EXPECT_EQ(block_of("vit-block27-attn-out"), "vit-block27-attn-out");
  EXPECT_THROW(self_key_for_cross("mid-vit-block0-self-map"), UserError);
}

TEST(Capture, KeyBuilder) {
  const std::string cross = attention_block("up-level2-repeat1-vit-block0", AttentionKind::cross);
  EXPECT_EQ(cross, "up-level2-repeat1-vit-block0-cross");
  EXPECT_EQ(capture_key(cross, CaptureTensor::special_post_value), cross + "-special-post-value");
  EXPECT_EQ(capture_key(attention_block("vit-block13", AttentionKind::self), CaptureTensor::map),
            "vit-block13-self-map");
  EXPECT_EQ(attention_output_key("vit-block27"), "vit-block27-attn-out");
  EXPECT_TRUE(is_self_block("mid-vit-block0-self"));
  EXPECT_FALSE(is_self_block(cross));
  // Parsing takes the longest tensor name: "-special-post-value" is not read as a block ending in "-special-post".
  const auto parts = parse_capture_key("vit-block3-cross-special-post-value");
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->block, "vit-block3-cross");
  EXPECT_EQ(parts->tensor, CaptureTensor::special_post_value);
  EXPECT_FALSE(parse_capture_key("vit-block27-attn-out").has_value());
  EXPECT_FALSE(parse_capture_key("-map").has_value());
  // The paper's l.replace('map', ...) on a cross-map key, and the cross block's self sibling.
  EXPECT_EQ(sibling_key("mid-vit-block0-cross-map", CaptureTensor::special_weight),
            "mid-vit-block0-cross-special-weight");
  EXPECT_EQ(self_block_for_cross("mid-vit-block0-cross"), "mid-vit-block0-self");
  EXPECT_THROW(sibling_key("vit-block27-attn-out", CaptureTensor::map), UserError);
  EXPECT_THROW(self_block_for_cross("mid-vit-block0-self"), UserError);
  EXPECT_THROW(self_key_for_cross("mid-vit-block0-cross-q"), UserError);
}

TEST(CaptureSpec, MergeIsUnion) {
  CaptureSpec a, b;
  a.add("x");
  a.self_map_head_mean = true;
  b.add("y");
  b.self_map_head_mean = false;
  a.merge(b);
  EXPECT_TRUE(a.wants("x") && a.wants("y"));
  EXPECT_FALSE(a.self_map_head_mean);
  // A head mean survives a merge only when both sides (or an empty side's partner) ask for it.
  CaptureSpec c, d, e;
  c.add("x");
  c.cross_map_head_mean = true;
  d.add("y");
  d.cross_map_head_mean = true;
  c.merge(d);
  EXPECT_TRUE(c.cross_map_head_mean);
  c.merge(b);  // b stores per-head cross maps
  EXPECT_FALSE(c.cross_map_head_mean);
  e.merge(d);  // e is empty: it takes d's choice
  EXPECT_TRUE(e.cross_map_head_mean);
}

TEST(HeadMeans, AverageMapsAreTheHeadWeightedSumOfTheStoredMaps) {
  at::Tensor maps = at::softmax(at::randn({2, 5, 12, 7}) * 3, -1);  // [B, H, P, T]
  for (auto store : {at::kFloat, at::kBFloat16}) {
    at::Tensor avg = head_average_maps(maps, store);
    ASSERT_EQ(avg.sizes(), at::IntArrayRef({2, 1, 12, 7}));
    EXPECT_EQ(avg.scalar_type(), at::kFloat);
    for (int64_t b = 0; b < 2; ++b) {
      const at::Tensor stored = maps[b].to(store);
      EXPECT_TRUE(at::equal(avg[b][0], head_weighted_sum(stored, head_average_weights(12, 5, stored))));
      EXPECT_TRUE(at::allclose(avg[b][0], stored.to(at::kFloat).mean(0), 1e-6, 1e-7));
    }
  }
  // Per-pixel weights: pixel 0 takes head 1 only.
  at::Tensor w = at::full({12, 5}, 0.2f);
  w[0].zero_();
  w[0][1] = 1.0f;
  at::Tensor m = head_weighted_sum(maps[0], w);
  EXPECT_TRUE(at::allclose(m[0], maps[0][1][0]));
  EXPECT_THROW(head_weighted_sum(maps[0], at::ones({12, 4})), std::logic_error);
}

TEST(Progress, RendersRateAndEta) {
  auto line = Progress::render("voc/sd15", 5, 10, 2.0, "img", 0);
  EXPECT_EQ(line, "voc/sd15 5/10 img | 2.50 img/s | 2.0s | ETA 2.0s");
  auto bar = Progress::render("x", 10, 10, 4.0, "img", 10);
  EXPECT_NE(bar.find("[##########]"), std::string::npos);
  EXPECT_EQ(format_duration(3725), "1h02m");
  EXPECT_EQ(format_duration(185), "3m05s");
}

}  // namespace
}  // namespace gb
