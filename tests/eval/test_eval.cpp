// Evaluation: the paper reduction against the paper's own quantitative_evaluation (goldens from
// tools/parity/eval_goldens.py), the standard reduction, additivity, and the reduced argmax.
#include "harness/core/errors.h"
#include "harness/eval/confusion.h"
#include "harness/eval/evaluator.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

using namespace gb::eval;

namespace {

nlohmann::json load_golden() {
  std::ifstream in(std::string(GB_SOURCE_DIR) + "/tests/eval/golden/paper_eval.json");
  EXPECT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

at::Tensor maps_from_json(const nlohmann::json& j) {
  const int64_t k = j.size(), h = j[0].size(), w = j[0][0].size();
  at::Tensor t = at::empty({k, h, w}, at::kFloat);
  auto a = t.accessor<float, 3>();
  for (int64_t c = 0; c < k; ++c)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const auto& v = j[c][y][x];
        a[c][y][x] = v.is_null() ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(v.get<double>());
      }
  return t;
}

at::Tensor label_from_json(const nlohmann::json& j) {
  const int64_t h = j.size(), w = j[0].size();
  at::Tensor t = at::empty({h, w}, at::kLong);
  auto a = t.accessor<int64_t, 2>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) a[y][x] = j[y][x].get<int64_t>();
  return t;
}

EvalConfig config_of(const nlohmann::json& c, Protocol p = Protocol::paper) {
  EvalConfig cfg;
  cfg.protocol = p;
  cfg.num_classes = c["num_classes"];
  cfg.method = parse_background_method(c["method"]);
  cfg.thresholds = c["thresholds"].get<std::vector<double>>();
  return cfg;
}

// The argmax over all C channels built exactly as the paper does (pred_full), for comparison with the
// evaluator's reduced candidate set.
at::Tensor full_argmax(const at::Tensor& maps, const std::vector<int64_t>& present, int64_t C, int64_t H, int64_t W,
                       double t, float absent_fill) {
  at::Tensor up = at::upsample_bilinear2d(maps.unsqueeze(0), {H, W}, false).squeeze(0);
  at::Tensor full = at::full({C, H, W}, absent_fill, at::kFloat);
  for (size_t k = 0; k < present.size(); ++k) full[present[k]].copy_(up[k]);
  full[0].copy_(at::add(up[up.size(0) - 1], t));
  return full.argmax(0);
}

}  // namespace

TEST(PaperEvaluation, MatchesPaperQuantitativeEvaluationExactly) {
  const auto g = load_golden();
  int checked = 0;
  for (const auto& c : g["cases"]) {
    SweepEvaluator ev(config_of(c));
    for (const auto& img : c["images"]) {
      ev.add_image(maps_from_json(img["maps"]), img["present"].get<std::vector<int64_t>>(),
                   label_from_json(img["label"]));
    }
    const SweepResult r = ev.result();
    ASSERT_EQ(r.per_threshold.size(), c["expected"].size());
    for (size_t i = 0; i < r.per_threshold.size(); ++i) {
      const auto& e = c["expected"][i];
      const Metrics& m = r.per_threshold[i].metrics;
      EXPECT_EQ(m.intersection, e["intersection"].get<std::vector<int64_t>>()) << c["name"] << " t=" << e["threshold"];
      EXPECT_EQ(m.union_, e["union"].get<std::vector<int64_t>>()) << c["name"] << " t=" << e["threshold"];
      EXPECT_NEAR(m.miou, e["miou"].get<double>(), 1e-12) << c["name"] << " t=" << e["threshold"];
      EXPECT_EQ(m.miou, e["miou"].get<double>()) << "bit-identical mean expected (numpy pairwise order) " << c["name"];
      ++checked;
    }
  }
  EXPECT_EQ(checked, 92);
}

TEST(PaperEvaluation, ReducedArgmaxEqualsFullArgmaxIncludingNaNAndTies) {
  at::manual_seed(3);
  const int64_t C = 12, H = 13, W = 9;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<int64_t> present = {7, 3, 0, 11};
    if (trial % 3 == 0) present = {5};
    at::Tensor maps = at::rand({static_cast<int64_t>(present.size()) + 1, 4, 4});
    if (trial % 2) maps = at::round(maps * 2) / 2;  // ties
    if (trial % 4 == 1) maps[0].index_put_({at::indexing::Slice(0, 2)}, std::numeric_limits<float>::quiet_NaN());
    for (Protocol p : {Protocol::paper, Protocol::standard}) {
      EvalConfig cfg;
      cfg.protocol = p;
      cfg.num_classes = C;
      cfg.method = BackgroundMethod::offset;
      SweepEvaluator ev(cfg);
      for (double t : cfg.thresholds) {
        const float fill = p == Protocol::paper ? 0.f : -std::numeric_limits<float>::infinity();
        EXPECT_TRUE(at::equal(ev.predict(maps, present, H, W, t), full_argmax(maps, present, C, H, W, t, fill)))
            << "trial " << trial << " t " << t;
      }
    }
  }
}

namespace {
// A 3-class matrix from its 12 counts, row-major (row 3: labels outside the classes).
ConfusionMatrix cm3(const std::vector<int64_t>& v) {
  ConfusionMatrix c(3);
  for (size_t i = 0; i < v.size(); ++i) c.at(static_cast<int64_t>(i) / 3, static_cast<int64_t>(i) % 3) = v[i];
  return c;
}
}  // namespace

TEST(Metrics, PaperReductionMatchesHandComputation) {
  const auto c = cm3({5, 1, 0, 2, 6, 0, 0, 1, 3, 1, 0, 0});
  const Metrics m = reduce(c, gb::Protocol::paper);
  // class 0: I=5, gt=6, pred=5+2+0+1=8, U=9; class 1: I=6, gt=8, pred=8, U=10; class 2: I=3, gt=4, pred=3, U=4
  EXPECT_NEAR(m.iou[0], 5.0 / 9, 1e-7);
  EXPECT_NEAR(m.iou[1], 6.0 / 10, 1e-7);
  EXPECT_NEAR(m.iou[2], 3.0 / 4, 1e-7);
  EXPECT_NEAR(m.miou, (5.0 / 9 + 0.6 + 0.75) / 3, 1e-7);
  EXPECT_NEAR(m.aacc, 14.0 / 19, 1e-7);  // the out-of-range pixel counts in the paper protocol
  EXPECT_NEAR(m.macc, (5.0 / 6 + 6.0 / 8 + 3.0 / 4) / 3, 1e-7);
  EXPECT_NEAR(m.fwiou, (6 * 5.0 / 9 + 8 * 0.6 + 4 * 0.75) / 18, 1e-7);
}

TEST(Metrics, StandardReductionSkipsAbsentClasses) {
  const auto c = cm3({5, 1, 0, 2, 6, 0, 0, 0, 0, 1, 0, 0});
  const Metrics m = reduce(c, gb::Protocol::standard);
  // Under the standard protocol the ignore index never reaches the matrix (harness/eval drops it when
  // counting); row C holds other out-of-range labels, which count as false positives of the prediction.
  EXPECT_NEAR(m.iou[0], 5.0 / 9, 1e-7);
  EXPECT_TRUE(std::isnan(m.iou[2]));
  EXPECT_NEAR(m.miou, (5.0 / 9 + 6.0 / 9) / 2, 1e-7);
  EXPECT_NEAR(m.aacc, 11.0 / 14, 1e-7);
  const Metrics p = reduce(c, gb::Protocol::paper);
  EXPECT_EQ(p.iou[2], 0.0);  // absent class scores 0 and stays in the mean
  EXPECT_NEAR(p.miou, (5.0 / 9 + 6.0 / 9 + 0) / 3, 1e-7);
}

TEST(ConfusionMatrix, UnionCountingWithOutOfRangeLabels) {
  // paper: label 255 and -1 are counted; a prediction on them is an FP of the predicted class
  at::Tensor pred = at::tensor({0, 1, 1, 2, 2, 0}, at::kLong);
  at::Tensor label = at::tensor({0, 1, 255, 2, -1, 1}, at::kLong);
  ConfusionMatrix cm(3);
  cm.add(pred, label, Protocol::paper);
  Metrics m = reduce(cm, Protocol::paper);
  // class 1: pred {1,2}, label {1,5}: I=1, U=3; class 2: pred {3,4}, label {3}: I=1 U=2; class 0: pred {0,5} label {0}:
  // I=1 U=2
  EXPECT_EQ(m.intersection, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(m.union_, (std::vector<int64_t>{2, 3, 2}));
  EXPECT_EQ(m.out_of_range_pixels, 2);
  EXPECT_DOUBLE_EQ(m.aacc, 3.0 / 6.0);
  // standard: 255 dropped entirely, -1 still an FP of the predicted class (mmseg histc)
  ConfusionMatrix cs(3);
  cs.add(pred, label, Protocol::standard, 255);
  Metrics s = reduce(cs, Protocol::standard);
  EXPECT_EQ(s.union_, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_DOUBLE_EQ(s.aacc, 3.0 / 4.0);
}

TEST(ConfusionMatrix, CopiesAndReadCountsAreIndependent) {
  at::Tensor pred = at::tensor({0, 1, 1}, at::kLong), label = at::tensor({0, 1, 0}, at::kLong);
  ConfusionMatrix a(2);
  a.add(pred, label, Protocol::paper);
  ConfusionMatrix b = a;  // copy construction
  b.add(pred, label, Protocol::paper);
  EXPECT_EQ(a.at(0, 1), 1);
  EXPECT_EQ(b.at(0, 1), 2);
  ConfusionMatrix c(2);
  c = b;  // copy assignment
  c.add(pred, label, Protocol::paper);
  EXPECT_EQ(b.at(0, 1), 2);
  EXPECT_EQ(c.at(0, 1), 3);
  a.counts().fill_(7);  // counts() is a copy
  EXPECT_EQ(a.at(0, 0), 1);
  EvalConfig cfg;
  cfg.num_classes = 2;
  SweepEvaluator e1(cfg);
  e1.matrices()[0].add(pred, label, Protocol::paper);
  SweepEvaluator e2 = e1;
  e2.matrices()[0].add(pred, label, Protocol::paper);
  EXPECT_EQ(e1.matrices()[0].at(1, 1), 1);
  EXPECT_EQ(e2.matrices()[0].at(1, 1), 2);
}

TEST(ConfusionMatrix, CellsAreCheckedAndOnlyEqualSizesAdd) {
  ConfusionMatrix a = cm3({1, 0, 0, 0, 2, 0, 0, 0, 3, 4, 0, 0});
  EXPECT_EQ(a.total(), 10);
  EXPECT_EQ(a.at(3, 0), 4);  // row C exists
  EXPECT_THROW(a.at(4, 0), gb::UserError);
  EXPECT_THROW(a.at(0, 3), gb::UserError);
  EXPECT_THROW(a.at(-1, 0), gb::UserError);
  ConfusionMatrix sum;  // an empty matrix adopts the other's size
  sum += a;
  sum += a;
  EXPECT_EQ(sum.at(2, 2), 6);
  EXPECT_NE(sum, a);
  EXPECT_EQ(sum.counts()[3][0].item<int64_t>(), 8);
  ConfusionMatrix two(2);
  EXPECT_THROW(sum += two, gb::UserError);
  EXPECT_EQ(ConfusionMatrix::from_json(a.to_json(), "a.json"), a);
}

TEST(ConfusionMatrix, StandardReductionUsesNanmeanAndPaperCountsAbsentAsZero) {
  at::Tensor pred = at::tensor({0, 0, 1, 1}, at::kLong);
  at::Tensor label = at::tensor({0, 0, 1, 0}, at::kLong);
  ConfusionMatrix cm(4);  // classes 2 and 3 never occur
  cm.add(pred, label, Protocol::standard);
  Metrics s = reduce(cm, Protocol::standard);
  EXPECT_TRUE(std::isnan(s.iou[2]));
  EXPECT_DOUBLE_EQ(s.miou, (2.0 / 3.0 + 1.0 / 2.0) / 2.0);
  EXPECT_DOUBLE_EQ(s.macc, (2.0 / 3.0 + 1.0) / 2.0);
  EXPECT_DOUBLE_EQ(s.fwiou, 0.75 * (2.0 / 3.0) + 0.25 * 0.5);
  Metrics p = reduce(cm, Protocol::paper);
  EXPECT_EQ(p.iou[2], 0.0);
  EXPECT_NEAR(p.miou, (2.0 / 3.0 + 1.0 / 2.0) / 4.0, 1e-8);
}

TEST(ConfusionMatrix, AdditiveAcrossShardsAndJsonRoundTrip) {
  at::manual_seed(1);
  EvalConfig cfg;
  cfg.num_classes = 6;
  cfg.method = BackgroundMethod::max;
  cfg.thresholds = {0.3, -0.1, 0.5};
  SweepEvaluator all(cfg), a(cfg), b(cfg);
  for (int i = 0; i < 4; ++i) {
    at::Tensor maps = at::rand({3, 5, 5});
    at::Tensor label = at::randint(-1, 8, {7, 9}, at::kLong);
    std::vector<int64_t> present = {1 + i % 5, 0};
    all.add_image(maps, present, label);
    (i % 2 ? a : b).add_image(maps, present, label);
  }
  a.merge(b);
  for (size_t t = 0; t < cfg.thresholds.size(); ++t) {
    EXPECT_TRUE(at::equal(a.matrices()[t].counts(), all.matrices()[t].counts()));
    auto back = ConfusionMatrix::from_json(all.matrices()[t].to_json(), "cm.json");
    EXPECT_TRUE(at::equal(back.counts(), all.matrices()[t].counts()));
  }
  EXPECT_EQ(a.images(), 4);
}

TEST(ThresholdRule, BestAndFixedAreExplicit) {
  EXPECT_EQ(ThresholdRule::parse("best").kind, ThresholdRule::Kind::best);
  auto f = ThresholdRule::parse("fixed: 0.1");
  EXPECT_EQ(f.kind, ThresholdRule::Kind::fixed);
  EXPECT_DOUBLE_EQ(f.value, 0.1);
  EXPECT_THROW(ThresholdRule::parse("fixed: abc"), gb::UserError);
  EXPECT_THROW(ThresholdRule::parse("median"), gb::UserError);
  EvalConfig cfg;
  cfg.num_classes = 3;
  cfg.rule = ThresholdRule::parse("fixed: 0.05");
  EXPECT_THROW(SweepEvaluator{cfg}, gb::UserError);
  cfg.rule = ThresholdRule::parse("fixed: 0.1");
  SweepEvaluator ev(cfg);
  ev.add_image(at::rand({2, 4, 4}), {2}, at::randint(0, 3, {5, 5}, at::kLong));
  auto r = ev.result();
  EXPECT_DOUBLE_EQ(r.per_threshold[r.chosen].threshold, 0.1);
  auto j = nlohmann::json::parse(r.to_json());
  EXPECT_EQ(j["threshold_rule"], "fixed: 0.1");
  EXPECT_EQ(j["per_class"].size(), 3u);
}

TEST(ThresholdRule, BestPicksHighestMiou) {
  EvalConfig cfg;
  cfg.num_classes = 3;
  cfg.method = BackgroundMethod::vanilla;
  cfg.thresholds = {2.0, 0.5, -1.0};
  SweepEvaluator ev(cfg);
  // class 2 scores 1 on the left half, 0 on the right; label: left 2, right 0. Only tau=0.5 separates them.
  at::Tensor maps = at::zeros({2, 4, 4});
  maps[0].index_put_({at::indexing::Slice(), at::indexing::Slice(0, 2)}, 1.0);
  at::Tensor label = at::zeros({4, 4}, at::kLong);
  label.index_put_({at::indexing::Slice(), at::indexing::Slice(0, 2)}, 2);
  ev.add_image(maps, {2}, label);
  auto r = ev.result();
  EXPECT_DOUBLE_EQ(r.per_threshold[r.chosen].threshold, 0.5);
  EXPECT_NEAR(r.per_threshold[r.chosen].metrics.miou, 2.0 / 3.0, 1e-8);
}

TEST(Evaluator, BadInputIsAUserError) {
  EvalConfig cfg;
  cfg.num_classes = 4;
  SweepEvaluator ev(cfg);
  at::Tensor label = at::zeros({5, 5}, at::kLong);
  EXPECT_THROW(ev.add_image(at::rand({3, 4, 4}), {1}, label), gb::UserError);              // channel count
  EXPECT_THROW(ev.add_image(at::rand({2, 4, 4}), {4}, label), gb::UserError);              // class out of range
  EXPECT_THROW(ev.add_image(at::rand({3, 4, 4}), {1, 1}, label), gb::UserError);           // duplicate
  EXPECT_THROW(ev.add_image(at::rand({2, 4, 4}), {1}, at::zeros({5, 5})), gb::UserError);  // float label
  cfg.thresholds = {0.1, 0.1};
  EXPECT_THROW(SweepEvaluator{cfg}, gb::UserError);
  ConfusionMatrix cm(3);
  EXPECT_THROW(cm.add(at::tensor({3}, at::kLong), at::tensor({0}, at::kLong), Protocol::paper), gb::UserError);
  EXPECT_THROW(ConfusionMatrix::from_json("{\"num_classes\": 2, \"counts\": [[1]]}", "x.json"), gb::UserError);
}

TEST(NumpyPairwiseSum, MatchesNaiveForShortAndIsStableForLong) {
  std::vector<double> v;
  for (int i = 0; i < 300; ++i) v.push_back(1.0 / (i + 1));
  double naive = 0;
  for (int i = 0; i < 7; ++i) naive += v[i];
  EXPECT_EQ(numpy_pairwise_sum(v.data(), 7), naive);
  double s = 0;
  for (double x : v) s += x;
  EXPECT_NEAR(numpy_pairwise_sum(v.data(), 300), s, 1e-12);
}

TEST(Evaluator, MaxMethodIsCumulativeUnderPaperOnly) {
  // support map 0.1 everywhere; one present class scoring 0.35. Sweep [0.5, 0.2]: the paper keeps max(beta, 0.5)
  // for tau = 0.2 as well (background wins), the standard protocol clamps afresh (class wins).
  at::Tensor maps = at::stack({at::full({4, 4}, 0.35f), at::full({4, 4}, 0.1f)});
  for (Protocol p : {Protocol::paper, Protocol::standard}) {
    EvalConfig cfg;
    cfg.protocol = p;
    cfg.num_classes = 3;
    cfg.method = BackgroundMethod::max;
    cfg.thresholds = {0.5, 0.2};
    SweepEvaluator ev(cfg);
    const int64_t expected = p == Protocol::paper ? 0 : 2;
    EXPECT_EQ(ev.predict(maps, {2}, 4, 4, 0.2)[0][0].item<int64_t>(), expected);
    ev.add_image(maps, {2}, at::full({4, 4}, 2, at::kLong));
    EXPECT_EQ(ev.matrices()[1].at(2, expected), 16);
  }
}
