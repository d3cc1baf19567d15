#include "harness/eval/evaluator.h"

#include "harness/core/errors.h"
#include "harness/eval/metrics_json.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace gb::eval {

BackgroundMethod parse_background_method(const std::string& s) {
  if (s == "vanilla") return BackgroundMethod::vanilla;
  if (s == "max") return BackgroundMethod::max;
  if (s == "exact") return BackgroundMethod::exact;
  if (s == "avg") return BackgroundMethod::avg;
  if (s == "offset") return BackgroundMethod::offset;
  fail("unknown background method '{}' (expected vanilla, max, exact, avg or offset)", s);
}

std::string to_string(BackgroundMethod m) {
  switch (m) {
    case BackgroundMethod::vanilla: return "vanilla";
    case BackgroundMethod::max: return "max";
    case BackgroundMethod::exact: return "exact";
    case BackgroundMethod::avg: return "avg";
    case BackgroundMethod::offset: return "offset";
  }
  return "?";
}

ThresholdRule ThresholdRule::parse(const std::string& text) {
  std::string s;
  for (char c : text) {
    if (c != ' ') s += c;
  }
  ThresholdRule r;
  if (s == "best") return r;
  if (s.rfind("fixed:", 0) == 0) {
    const std::string v = s.substr(6);
    try {
      size_t used = 0;
      r.value = std::stod(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      fail("threshold rule '{}': expected 'best' or 'fixed: <number>'", text);
    }
    r.kind = Kind::fixed;
    return r;
  }
  fail("threshold rule '{}': expected 'best' or 'fixed: <number>'", text);
}

std::string ThresholdRule::to_string() const {
  return kind == Kind::best ? std::string("best") : fmt::format("fixed: {}", value);
}

SweepEvaluator::SweepEvaluator(EvalConfig config) : config_(std::move(config)) {
  if (config_.num_classes <= 0) fail("evaluation needs a positive number of classes, got {}", config_.num_classes);
  if (config_.thresholds.empty()) fail("evaluation needs at least one background threshold");
  std::set<double> seen;
  for (double t : config_.thresholds) {
    if (!std::isfinite(t)) fail("background threshold {} is not finite", t);
    if (!seen.insert(t).second) fail("background threshold {} is listed twice", t);
  }
  if (config_.rule.kind == ThresholdRule::Kind::fixed && !seen.count(config_.rule.value)) {
    fail("threshold rule 'fixed: {}' names a threshold that is not in the sweep", config_.rule.value);
  }
  for (size_t i = 0; i < config_.thresholds.size(); ++i) matrices_.emplace_back(config_.num_classes);
}

void SweepEvaluator::prepare(const at::Tensor& maps, const std::vector<int64_t>& present, int64_t H, int64_t W,
                             at::Tensor& ids, at::Tensor& stack, at::Tensor& support) const {
  const int64_t C = config_.num_classes;
  if (maps.dim() != 3) fail("score maps must be (K+1, S, S), got {} dimensions", maps.dim());
  if (maps.size(0) != static_cast<int64_t>(present.size()) + 1) {
    fail("score maps have {} channels but {} classes are present (expected K+1 = {})", maps.size(0), present.size(),
         present.size() + 1);
  }
  std::set<int64_t> seen;
  for (int64_t c : present) {
    if (c < 0 || c >= C) fail("present class id {} is outside [0, {})", c, C);
    if (!seen.insert(c).second) fail("present class id {} is listed twice", c);
  }
  // pred = F.interpolate(pred.unsqueeze(0), label.shape, mode='bilinear')  (align_corners=False)
  at::Tensor up = at::upsample_bilinear2d(maps.to(at::kFloat).unsqueeze(0), {H, W}, false).squeeze(0);
  support = up[up.size(0) - 1];
  // Candidate channels, ascending by class id: 0, the present classes and the lowest absent class. Every
  // absent class has the same constant score, so the lowest one stands for all of them in the argmax
  // (ties go to the lowest id), and the reduced argmax equals the argmax over all C channels.
  std::vector<int64_t> cand(seen.begin(), seen.end());
  cand.push_back(0);
  for (int64_t c = 0; c < C; ++c) {
    if (c != 0 && !seen.count(c)) {
      cand.push_back(c);
      break;
    }
  }
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  const float absent = config_.protocol == Protocol::paper ? 0.0f : -std::numeric_limits<float>::infinity();
  std::vector<at::Tensor> rows;
  for (int64_t c : cand) {
    auto it = std::find(present.begin(), present.end(), c);
    if (c != 0 && it != present.end()) {
      rows.push_back(up[it - present.begin()]);
    } else {
      // channel 0 is overwritten per threshold; absent classes keep the fill value
      rows.push_back(at::full({H, W}, absent, up.options()));
    }
  }
  stack = at::stack(rows, 0).contiguous();
  ids = at::tensor(cand, at::kLong).to(up.device());
}

void SweepEvaluator::fill_background(at::Tensor& stack, at::Tensor& support, const at::Tensor& beta0, double t) const {
  at::Tensor bg;
  switch (config_.method) {
    case BackgroundMethod::vanilla: stack[0].fill_(t); return;
    case BackgroundMethod::max:
      // paper: supporting_target = supporting_target.clamp(min=t), cumulative over the sweep (quirk Q8)
      support = (config_.protocol == Protocol::paper ? support : beta0).clamp_min(t);
      bg = support;
      break;
    case BackgroundMethod::exact: bg = support; break;
    case BackgroundMethod::avg: bg = at::div(at::add(support, t), 2); break;
    case BackgroundMethod::offset: bg = at::add(support, t); break;
  }
  stack[0].copy_(bg);
}

void SweepEvaluator::add_image(const at::Tensor& maps, const std::vector<int64_t>& present, const at::Tensor& label) {
  if (label.dim() != 2) fail("label map must be (H, W), got {} dimensions", label.dim());
  if (at::isFloatingType(label.scalar_type())) fail("label map must be an integer tensor");
  at::Tensor ids, stack, support;
  prepare(maps, present, label.size(0), label.size(1), ids, stack, support);
  const at::Tensor beta0 = support;
  const at::Tensor y = label.to(stack.device(), at::kLong);
  for (size_t i = 0; i < config_.thresholds.size(); ++i) {
    fill_background(stack, support, beta0, config_.thresholds[i]);
    at::Tensor pred = ids.index_select(0, stack.argmax(0).reshape({-1})).reshape(y.sizes());
    matrices_[i].add(pred, y, config_.protocol, config_.ignore_index);
  }
  ++images_;
}

at::Tensor SweepEvaluator::predict(const at::Tensor& maps, const std::vector<int64_t>& present, int64_t H, int64_t W,
                                   double threshold) const {
  at::Tensor ids, stack, support;
  prepare(maps, present, H, W, ids, stack, support);
  const at::Tensor beta0 = support;
  if (config_.method == BackgroundMethod::max && config_.protocol == Protocol::paper) {
    // replay the cumulative clamp of the thresholds before this one
    for (double t : config_.thresholds) {
      if (t == threshold) break;
      support = support.clamp_min(t);
    }
  }
  fill_background(stack, support, beta0, threshold);
  return ids.index_select(0, stack.argmax(0).reshape({-1})).reshape({H, W});
}

void SweepEvaluator::merge(const SweepEvaluator& other) {
  if (other.config_.num_classes != config_.num_classes || other.config_.thresholds != config_.thresholds ||
      other.config_.protocol != config_.protocol || other.config_.method != config_.method) {
    fail("cannot merge evaluations with different classes, thresholds, protocol or background method");
  }
  for (size_t i = 0; i < matrices_.size(); ++i) matrices_[i].merge(other.matrices_[i]);
  images_ += other.images_;
}

SweepResult SweepEvaluator::result() const {
  SweepResult r;
  r.rule = config_.rule;
  r.images = images_;
  for (size_t i = 0; i < matrices_.size(); ++i) {
    r.per_threshold.push_back({config_.thresholds[i], reduce(matrices_[i], config_.protocol)});
  }
  if (config_.rule.kind == ThresholdRule::Kind::fixed) {
    for (size_t i = 0; i < r.per_threshold.size(); ++i) {
      if (r.per_threshold[i].threshold == config_.rule.value) r.chosen = i;
    }
  } else {
    // highest mIoU; the first one in sweep order on ties (NaN never wins)
    double best = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < r.per_threshold.size(); ++i) {
      const double m = r.per_threshold[i].metrics.miou;
      if (!std::isnan(m) && m > best) {
        best = m;
        r.chosen = i;
      }
    }
  }
  return r;
}

std::string SweepResult::to_json() const {
  nlohmann::json j;
  j["images"] = images;
  j["threshold_rule"] = rule.to_string();
  const auto& c = per_threshold.at(chosen);
  j["threshold"] = c.threshold;
  j["protocol"] = to_string(c.metrics.protocol);
  nlohmann::json chosen_metrics = metrics_json(c.metrics);
  for (auto it = chosen_metrics.begin(); it != chosen_metrics.end(); ++it) j[it.key()] = it.value();
  nlohmann::json sweep = nlohmann::json::array();
  for (const auto& t : per_threshold) {
    sweep.push_back(
        {{"threshold", t.threshold}, {"miou", json_number(t.metrics.miou)}, {"aacc", json_number(t.metrics.aacc)}});
  }
  j["sweep"] = sweep;
  return j.dump();
}

}  // namespace gb::eval
