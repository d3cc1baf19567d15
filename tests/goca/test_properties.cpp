// Invariants of the GoCA operations that hold for any input, plus error handling of Segmentor.
#include "../test_support.h"
#include "goca/ops.h"
#include "goca/segmentor.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

using namespace gb::goca;

namespace {

struct Layer {
  at::Tensor A, V, Z, W;
};

Layer random_layer(int64_t H, int64_t P, int64_t T, int64_t d, int64_t dout, const at::TensorOptions& o = at::kFloat) {
  Layer l;
  l.A = at::softmax(at::randn({H, P, T}, o) * 2, -1);
  l.V = at::randn({H, T, d}, o);
  l.Z = at::bmm(l.A, l.V).permute({1, 0, 2}).reshape({P, H * d}).contiguous();
  l.W = at::randn({dout, H * d}, o) / std::sqrt(double(H * d));
  return l;
}

at::Tensor self_softmax(int64_t heads, int64_t P) { return at::softmax(at::randn({heads, P, P}) * 3, -1); }

gb::TensorMap sample_for(const std::vector<std::pair<std::string, int64_t>>& layers, int64_t T, int64_t r) {
  gb::TensorMap s;
  for (const auto& [name, side] : layers) {
    auto l = random_layer(4, side * side, T, 6, 20);
    s[name + "-cross-map"] = l.A;
    s[name + "-cross-special-value"] = l.V;
    s[name + "-cross-special-post-value"] = l.Z;
    s[name + "-cross-special-weight"] = l.W;
    s[name + "-self-map"] = self_softmax(2, side * side);
  }
  s["ref-cross-q"] = at::randn({5, r, r});
  return s;
}

gb::TokenGroups groups() {
  gb::TokenGroups g;
  g.objects = {{1, {1, 2}}, {4, {3}}};
  g.background_objects = {{5}};
  g.rescaling_token_ids = {1, 2, 3, 5};
  return g;
}

MethodConfig cfg_for(const std::vector<std::string>& names) {
  MethodConfig c;
  for (const auto& n : names) c.layers.push_back(n + "-cross-map");
  c.ref_layer = "ref-cross-q";
  c.output_size = 8;
  return c;
}

}  // namespace

TEST(GocaProperties, HeadWeightsSumToOneWhereDefined) {
  at::manual_seed(3);
  auto l = random_layer(6, 49, 11, 5, 17);
  for (auto m : all_head_methods()) {
    auto w = head_weights(m, 6, l.Z, l.W, l.V, at::kFloat);
    ASSERT_EQ(w.sizes(), (std::vector<int64_t>{49, 6})) << to_string(m);
    EXPECT_FALSE(at::isnan(w).any().item<bool>()) << to_string(m);
    EXPECT_TRUE(at::allclose(w.sum(1), at::ones({49}), 1e-4, 1e-5)) << to_string(m);
  }
  EXPECT_TRUE(
      at::allclose(head_weights(HeadMethod::Average, 6, l.Z, l.W, l.V, at::kFloat), at::full({49, 6}, 1.0 / 6)));
  // l2-norm weights are non-negative, dot-product (clamped) too
  EXPECT_TRUE((head_weights(HeadMethod::L2Norm, 6, l.Z, l.W, l.V, at::kFloat) >= 0).all().item<bool>());
  EXPECT_TRUE((head_weights(HeadMethod::DotProduct, 6, l.Z, l.W, l.V, at::kFloat) >= 0).all().item<bool>());
}

TEST(GocaProperties, ZeroOutputPixelNaNPatternsAndDotProductOnes) {
  at::manual_seed(4);
  auto l = random_layer(4, 16, 7, 3, 9);
  l.Z[5].zero_();
  for (auto m : all_head_methods()) {
    auto w = head_weights(m, 4, l.Z, l.W, l.V, at::kFloat);
    auto row = w[5];
    switch (m) {
      case HeadMethod::Average: EXPECT_TRUE(row.eq(0.25).all().item<bool>()); break;
      case HeadMethod::DotProduct: EXPECT_TRUE(row.eq(1).all().item<bool>()) << "Q3: all weights 1"; break;
      default: EXPECT_TRUE(at::isnan(row).all().item<bool>()) << to_string(m); break;
    }
    // the other pixels are unaffected
    EXPECT_FALSE(at::isnan(w.narrow(0, 0, 5)).any().item<bool>()) << to_string(m);
    // NaN weights make the aggregated row NaN
    auto M = aggregate_heads(l.A, w);
    EXPECT_EQ(at::isnan(M[5]).all().item<bool>(), at::isnan(row).any().item<bool>()) << to_string(m);
  }
}

TEST(GocaProperties, DotProductFastPathEqualsPerHeadPath) {
  // A Half capture dtype with outputs that could reach 65504 by the Cauchy-Schwarz bound forces the explicit
  // per-head path; the values stay far below the bound, so nan_to_num changes nothing and both must agree.
  at::manual_seed(5);
  auto l = random_layer(4, 25, 7, 16, 12);
  l.Z.mul_(300.0);
  l.W.mul_(30.0);
  for (auto m : {HeadMethod::DotProduct, HeadMethod::DotProductNoClamp, HeadMethod::DotProductVW}) {
    auto fast = head_weights(m, 4, l.Z, l.W, l.V, at::kFloat);
    auto slow = head_weights(m, 4, l.Z, l.W, l.V, at::kHalf);
    EXPECT_TRUE(at::allclose(fast, slow, 1e-4, 1e-6)) << to_string(m);
  }
  // and a capture-dtype overflow is clamped to the fp16 maximum, like the paper's fp16 nan_to_num
  auto Z = at::zeros({1, 2});
  Z[0][0] = 1e5;
  auto W = at::eye(2);
  auto w = head_weights(HeadMethod::L2Norm, 2, Z, W, at::Tensor(), at::kHalf);  // ||o_0|| = 65504, ||o_1|| = 0
  EXPECT_FLOAT_EQ(w[0][0].item<float>(), 1.0f);
  EXPECT_NEAR(max_finite(at::kHalf), 65504.0, 0);
}

TEST(GocaProperties, AggregatedSumsToOnePerPixel) {
  at::manual_seed(6);
  auto s = sample_for({{"a", 8}, {"b", 4}, {"c", 2}}, 9, 4);
  for (auto lm : all_layer_methods()) {
    auto c = cfg_for({"a", "b", "c"});
    c.layer_method = lm;
    auto out = Segmentor(c).run(s, groups());
    ASSERT_EQ(out.aggregated.sizes(), (std::vector<int64_t>{8, 8, 9}));
    EXPECT_TRUE(at::allclose(out.aggregated.sum(2), at::ones({8, 8}), 1e-5, 1e-6)) << to_string(lm);
    EXPECT_TRUE((out.aggregated >= 0).all().item<bool>());
    if (lm == LayerMethod::Vanilla) {
      EXPECT_EQ(out.layer_weights.sizes(), (std::vector<int64_t>{3, 8, 8}));
      EXPECT_TRUE(out.layer_weights.eq(1.0f / 3).all().item<bool>());
    } else {
      EXPECT_EQ(out.layer_weights.sizes(), (std::vector<int64_t>{3}));
      EXPECT_NEAR(out.layer_weights.sum().item<float>(), 1.0f, 1e-6);
    }
    EXPECT_EQ(out.pre_propagation.sizes(), (std::vector<int64_t>{3, 8, 8}));
    for (const auto& k : c.layers) EXPECT_TRUE(out.head_weights.count(k));
  }
}

TEST(GocaProperties, RescaleAndTokenInvariants) {
  at::manual_seed(7);
  auto agg = at::softmax(at::randn({10, 8, 8}), 0);
  auto g = groups();
  auto ch = token_channels(agg, g, MultiToken::Mean);
  ASSERT_EQ(ch.size(0), 4);
  EXPECT_TRUE(at::allclose(ch[0], (agg[1] + agg[2]) / 2));
  EXPECT_TRUE(at::allclose(ch[3], agg[1] + agg[2] + agg[3] + agg[5]));
  auto chs = token_channels(agg, g, MultiToken::Sum);
  EXPECT_TRUE(at::allclose(chs[0], agg[1] + agg[2]));
  // minmax-based methods land in [0, 1] with both ends reached
  for (auto m :
       {RescaleMethod::PerTokenRenormPlus, RescaleMethod::Sum1RenormPlus, RescaleMethod::Sum1RenormPlusXRawRenorm}) {
    auto r = rescale(ch, m);
    EXPECT_EQ(r.size(0), 3);
    EXPECT_NEAR(r.amin({1, 2}).max().item<float>(), 0.0f, 1e-7) << to_string(m);
    EXPECT_NEAR(r.amax({1, 2}).min().item<float>(), 1.0f, 1e-6) << to_string(m);
  }
  // sum-1: object maps divided by rho
  EXPECT_TRUE(at::allclose(rescale(ch, RescaleMethod::Sum1), ch.narrow(0, 0, 3) / ch[3]));
  // an empty token list is NaN under mean, zero under sum
  gb::TokenGroups e = g;
  e.objects[1].tokens.clear();
  EXPECT_TRUE(at::isnan(token_channels(agg, e, MultiToken::Mean)[1]).all().item<bool>());
  EXPECT_TRUE(token_channels(agg, e, MultiToken::Sum)[1].eq(0).all().item<bool>());
  e.objects[1].tokens = {10};
  EXPECT_NE(gb::test::user_error_message([&] { token_channels(agg, e, MultiToken::Mean); }).find("outside [0, 10)"),
            std::string::npos);
}

TEST(GocaProperties, BlurKernelAndResizeRules) {
  // a unit impulse far from the border reproduces the spec's kernel (outer product of the 1-D taps)
  auto x = at::zeros({1, 9, 9});
  x[0][4][4] = 1;
  auto b = gaussian_blur5(x)[0];
  const float k[5] = {0.070766f, 0.244460f, 0.369546f, 0.244460f, 0.070766f};
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) EXPECT_NEAR(b[2 + i][2 + j].item<float>(), k[i] * k[j], 2e-6);
  // a constant map stays constant (reflect padding), and MinMax of a constant is NaN
  auto c = gaussian_blur5(at::full({2, 6, 6}, 3.0f));
  EXPECT_TRUE(at::allclose(c, at::full({2, 6, 6}, 3.0f)));
  EXPECT_TRUE(at::isnan(minmax(c)).all().item<bool>());
  // torch 'nearest': src = floor(dst * in / out)
  auto n = nearest_source_indices(3, 8, at::kCPU);
  std::vector<int64_t> expect;
  for (int i = 0; i < 8; ++i) expect.push_back(std::min<int64_t>(int64_t(std::floor(i * (3.0f / 8.0f))), 2));
  EXPECT_TRUE(n.equal(at::tensor(expect)));
  // a pairwise map at the output size is unchanged; a resized one matches an explicit per-row interpolation
  auto pw = at::rand({16, 16});
  EXPECT_TRUE(resize_pairwise(pw, 4).equal(pw));
  auto up = resize_pairwise(pw, 8);  // [64, 64]
  auto q = nearest_source_indices(4, 8, at::kCPU);
  for (int64_t qy : {0, 5}) {
    for (int64_t qx : {3, 7}) {
      auto row = pw[q[qy].item<int64_t>() * 4 + q[qx].item<int64_t>()].view({1, 1, 4, 4});
      auto ref = at::upsample_bilinear2d(row, {8, 8}, false, c10::nullopt, c10::nullopt).view({64});
      EXPECT_TRUE(at::allclose(up[qy * 8 + qx], ref));
    }
  }
}

TEST(GocaProperties, PropagationNullSupportAndConstantMaps) {
  at::manual_seed(8);
  auto A = at::rand({16, 16});
  auto maps = at::rand({3, 4, 4});
  maps[2].zero_();
  auto out = propagate(maps, A, 2);
  EXPECT_TRUE(out[2].eq(0).all().item<bool>());
  auto x = maps.narrow(0, 0, 2).reshape({2, 16}).t();
  auto expect = minmax(at::mm(A, at::mm(A, x)).t().reshape({2, 4, 4}));
  EXPECT_TRUE(at::allclose(out.narrow(0, 0, 2), expect, 1e-5, 1e-6));
  // a non-zero last map is propagated; order 0 is MinMax only; a constant map becomes NaN
  maps[2].fill_(0.5);
  auto out2 = propagate(maps, A, 0);
  EXPECT_TRUE(at::isnan(out2[2]).all().item<bool>());
  EXPECT_TRUE(at::allclose(out2[0], minmax(maps.narrow(0, 0, 1))[0]));
  // merge_background: max over background maps, zeros without
  auto m = at::rand({4, 3, 3});
  auto merged = merge_background(m, 2);
  EXPECT_TRUE(merged[2].equal(at::maximum(m[2], m[3])));
  EXPECT_TRUE(merge_background(m, 4)[4].eq(0).all().item<bool>());
}

TEST(GocaProperties, HalfCaptureGivesFp32Results) {
  at::manual_seed(9);
  auto s = sample_for({{"a", 8}, {"b", 4}}, 7, 4);
  gb::TensorMap half;
  for (auto& [k, v] : s) {
    half[k] = v.to(at::kHalf);
    s[k] = half[k].to(at::kFloat);
  }
  auto c = cfg_for({"a", "b"});
  c.self_layers = {"a-self-map"};
  Segmentor seg(c);
  auto a = seg.run(s, groups()), b = seg.run(half, groups());
  EXPECT_EQ(b.scores.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(a.scores, b.scores, 1e-5, 1e-6));
}

TEST(GocaProperties, ForceAverageWithoutSpecialValue) {
  at::manual_seed(10);
  auto s = sample_for({{"a", 8}, {"b", 4}}, 7, 4);
  s.erase("b-cross-special-value");
  auto out = Segmentor(cfg_for({"a", "b"})).run(s, groups());
  EXPECT_TRUE(out.head_weights.at("b-cross-map").eq(0.25f).all().item<bool>());
  EXPECT_FALSE(out.head_weights.at("a-cross-map").eq(0.25f).all().item<bool>());
}

TEST(GocaProperties, MalformedCapturesAreOneLineUserErrors) {
  at::manual_seed(11);
  auto base = sample_for({{"a", 8}, {"b", 4}}, 7, 4);
  auto seg = Segmentor(cfg_for({"a", "b"}));
  auto check = [&](gb::TensorMap s, const std::string& needle) {
    auto msg = gb::test::user_error_message([&] { seg.run(s, groups()); });
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  };
  auto s = base;
  s.erase("b-cross-map");
  check(s, "'b-cross-map'");
  s = base;
  s["a-cross-map"] = s["a-cross-map"][0];
  check(s, "'a-cross-map' has shape [64, 7]");
  s = base;
  s["b-cross-map"] = at::softmax(at::randn({4, 16, 9}), -1);
  check(s, "has 9 tokens");
  s = base;
  s["b-cross-special-value"] = at::randn({3, 7, 6});
  check(s, "heads");
  s = base;
  s.erase("ref-cross-q");
  check(s, "'ref-cross-q'");
  s = base;
  s["b-self-map"] = self_softmax(2, 64);
  check(s, "'b-self-map' has 64 pixels");
  s = base;
  s["a-cross-map"] = at::softmax(at::randn({4, 60, 7}), -1);
  check(s, "not a square grid");
}

TEST(GocaProperties, RequiredCapture) {
  auto c = cfg_for({"a", "b"});
  c.self_layers = {"z-self-map"};
  auto spec = Segmentor(c).required_capture();
  for (const char* k : {"a-cross-map", "a-cross-special-value", "a-cross-special-post-value", "a-cross-special-weight",
                        "a-self-map", "b-self-map", "ref-cross-q", "z-self-map"})
    EXPECT_TRUE(spec.wants(k)) << k;
  EXPECT_TRUE(spec.self_map_head_mean);
  c.head_method = HeadMethod::Average;
  c.layer_method = LayerMethod::Vanilla;
  auto v = Segmentor(c).required_capture();
  EXPECT_EQ(v.keys, (std::set<std::string>{"a-cross-map", "b-cross-map", "z-self-map"}));
}

TEST(GocaProperties, CudaMatchesCpu) {
  if (!gb::compat::cuda_available()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(12);
  auto s = sample_for({{"a", 8}, {"b", 4}}, 7, 4);
  gb::TensorMap g;
  for (auto& [k, v] : s) g[k] = v.to(at::kCUDA);
  for (auto hm : all_head_methods()) {
    auto c = cfg_for({"a", "b"});
    c.head_method = hm;
    c.self_layers = {"a-self-map", "b-self-map"};
    Segmentor seg(c);
    auto a = seg.run(s, groups()), b = seg.run(g, groups());
    EXPECT_TRUE(b.scores.is_cuda());
    EXPECT_TRUE(at::allclose(a.scores, b.scores.cpu(), 1e-4, 1e-5, /*equal_nan=*/true)) << to_string(hm);
    EXPECT_TRUE(at::allclose(a.aggregated, b.aggregated.cpu(), 1e-4, 1e-6, true)) << to_string(hm);
  }
}

TEST(GocaProperties, LargeProductsMatchReference) {
  // Sizes that take the oneDNN GEMM and the Gram-matrix route of the dot-product methods.
  at::manual_seed(13);
  auto x = at::randn({700, 96}), w = at::randn({130, 96});
  EXPECT_TRUE(at::allclose(matmul_nt(x, w), at::mm(x, w.t()), 1e-4, 1e-4));
  auto l = random_layer(8, 1024, 20, 40, 320);
  for (auto m : {HeadMethod::DotProduct, HeadMethod::DotProductNoClamp, HeadMethod::DotProductVW}) {
    auto fast = head_weights(m, 8, l.Z, l.W, l.V, at::kFloat);  // Gram route (P = 1024 >> Hd = 320)
    // explicit per-head reference: o_h = Z_h W_h^T, o = Z W^T, u_h = <o_h, o>
    auto o = at::mm(l.Z, l.W.t());
    std::vector<at::Tensor> u;
    for (int64_t h = 0; h < 8; ++h)
      u.push_back((at::mm(l.Z.narrow(1, h * 40, 40), l.W.narrow(1, h * 40, 40).t()) * o).sum(1));
    auto U = at::stack(u, 1);
    if (m == HeadMethod::DotProductNoClamp) {
      EXPECT_TRUE(at::allclose(fast, U / U.sum(1, true), 1e-4, 1e-5));
    } else if (m == HeadMethod::DotProduct) {
      auto c = U.clamp_min(0);
      EXPECT_TRUE(at::allclose(fast, c / c.sum(1, true), 1e-4, 1e-5));
    }
    EXPECT_TRUE(at::allclose(fast, head_weights(m, 8, l.Z, l.W, l.V, at::kHalf), 1e-4, 1e-5)) << to_string(m);
  }
}
