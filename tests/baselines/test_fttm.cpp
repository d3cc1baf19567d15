// FTTM's dcrf step and the dense CRF against goldens from pydensecrf's own C++ core
// (tools/parity/crf_golden.py; the pre-processing there is numpy/torch as in the paper's dcrf.py).
#include "baselines/dense_crf.h"
#include "baselines/fttm.h"
#include "harness/core/errors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace gb::baselines {
namespace {

nlohmann::json golden() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(GB_SOURCE_DIR) + "/tests/baselines/data/crf_golden.json");
    EXPECT_TRUE(in.good()) << "missing tests/baselines/data/crf_golden.json";
    return nlohmann::json::parse(in);
  }();
  return j;
}

const nlohmann::json& find_case(const std::string& name) {
  static const nlohmann::json all = golden();
  for (const auto& c : all["cases"])
    if (c["name"] == name) return c;
  throw std::runtime_error("no golden case " + name);
}

at::Tensor floats(const nlohmann::json& v, std::vector<int64_t> shape) {
  std::vector<float> x = v.get<std::vector<float>>();
  return at::tensor(x).reshape(shape).clone();
}
at::Tensor bytes(const nlohmann::json& v, std::vector<int64_t> shape) {
  std::vector<int> x = v.get<std::vector<int>>();
  at::Tensor t = at::empty({static_cast<int64_t>(x.size())}, at::kByte);
  for (size_t i = 0; i < x.size(); ++i) t[static_cast<int64_t>(i)] = x[i];
  return t.reshape(shape);
}
double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

DenseCrfParams params_of(const nlohmann::json& c) {
  DenseCrfParams p;
  p.iterations = c["iterations"];
  p.gaussian_sxy = c["gaussian_sxy"];
  p.gaussian_compat = c["gaussian_compat"];
  p.bilateral_sxy = c["bilateral_sxy"];
  p.bilateral_srgb = c["bilateral_srgb"];
  p.bilateral_compat = c["bilateral_compat"];
  return p;
}

TEST(Fttm, ImageIsBgrMinusMeanWrappedToUint8) {
  const auto& c = find_case("fttm");
  const int64_t h = c["height"], w = c["width"];
  const at::Tensor rgb = bytes(c["rgb"], {h, w, 3});
  EXPECT_TRUE(at::equal(fttm_crf_image(rgb), bytes(c["crf_image"], {h, w, 3})));
  // Spot values of the wrap: B=100 -> -4.008 -> 252; G=200 -> 83.331 -> 83; R=0 -> -122.675 -> 134.
  at::Tensor px = at::empty({1, 1, 3}, at::kByte);
  px[0][0][0] = 0;    // R
  px[0][0][1] = 200;  // G
  px[0][0][2] = 100;  // B
  const at::Tensor out = fttm_crf_image(px);
  EXPECT_EQ(out[0][0][0].item<int>(), 252);
  EXPECT_EQ(out[0][0][1].item<int>(), 83);
  EXPECT_EQ(out[0][0][2].item<int>(), 134);
}

TEST(Fttm, ProbabilitiesAreBicubicClampedMinMax) {
  const auto& c = find_case("fttm");
  const int64_t h = c["height"], w = c["width"], k = c["labels"], s = c["map_size"];
  const at::Tensor p = fttm_crf_probabilities(floats(c["maps"], {k, s, s}), h, w);
  EXPECT_LT(max_abs(p, floats(c["probabilities"], {k, h, w})), 2e-6);
  // A zero (support) map becomes NaN, as in the paper.
  at::Tensor maps = floats(c["maps"], {k, s, s});
  maps[k - 1].zero_();
  EXPECT_TRUE(at::isnan(fttm_crf_probabilities(maps, h, w)[k - 1]).all().item<bool>());
}

// Same unary in, pydensecrf's marginals out. The lattice construction, splat/blur/slice order and the
// normalisation follow densecrf's float arithmetic; what remains is Eigen's vectorised exp and sums
// (an ulp here and there). Measured: 0, 0, 1.2e-7.
TEST(Fttm, DenseCrfMatchesPydensecrf) {
  for (const char* name : {"fttm", "k2", "k5"}) {
    const auto& c = find_case(name);
    const int64_t h = c["height"], w = c["width"], k = c["labels"];
    const at::Tensor unary = floats(c["unary"], {k, h * w});
    // unary_from_softmax against numpy's clip/log.
    const at::Tensor probs = floats(c["probabilities"], {k, h, w});
    EXPECT_LT(max_abs(unary_from_softmax(probs).reshape({k, h * w}), unary), 2e-6) << name;
    const DenseCrfParams p = params_of(c);
    const at::Tensor image = c.contains("crf_image") ? bytes(c["crf_image"], {h, w, 3}) : bytes(c["rgb"], {h, w, 3});
    DenseCrf2D crf(w, h, k);
    crf.set_unary(unary);
    crf.add_pairwise_gaussian(p.gaussian_sxy, p.gaussian_sxy, p.gaussian_compat);
    crf.add_pairwise_bilateral(p.bilateral_sxy, p.bilateral_sxy, p.bilateral_srgb, p.bilateral_srgb, p.bilateral_srgb,
                               image, p.bilateral_compat);
    const at::Tensor q = crf.inference(p.iterations).reshape({k, h, w});
    const at::Tensor ref = floats(c["marginals"], {k, h, w});
    const double d = max_abs(q, ref);
    std::printf("%s: max |Q - pydensecrf| = %.3g\n", name, d);
    EXPECT_LT(d, 1e-6) << name;
  }
}

TEST(Fttm, EndToEndMatchesGolden) {
  const auto& c = find_case("fttm");
  const int64_t h = c["height"], w = c["width"], k = c["labels"], s = c["map_size"];
  const at::Tensor q = fttm_dcrf(floats(c["maps"], {k, s, s}), bytes(c["rgb"], {h, w, 3}));
  ASSERT_EQ(q.sizes(), (std::vector<int64_t>{k, h, w}));
  EXPECT_LT(max_abs(q, floats(c["marginals"], {k, h, w})), 1e-6);
}

TEST(Fttm, RejectsBadImages) {
  EXPECT_THROW(fttm_crf_image(at::zeros({4, 4, 3}, at::kFloat)), UserError);
  EXPECT_THROW(fttm_crf_image(at::zeros({4, 4}, at::kByte)), UserError);
  EXPECT_THROW(fttm_dcrf(at::zeros({2, 4, 4}), at::zeros({4, 4}, at::kByte)), UserError);
  EXPECT_THROW(fttm_crf_probabilities(at::zeros({4, 4}), 8, 8), UserError);
}

}  // namespace
}  // namespace gb::baselines
