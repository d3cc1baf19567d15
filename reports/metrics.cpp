#include "reports/metrics.h"

#include "harness/core/errors.h"
#include "harness/eval/confusion.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace gb::reports {

Reduction parse_reduction(const std::string& name) {
  if (name == "paper") return Reduction::Paper;
  if (name == "standard") return Reduction::Standard;
  fail("unknown metric reduction '{}' (expected paper or standard)", name);
}

std::string to_string(Reduction r) { return r == Reduction::Paper ? "paper" : "standard"; }

ConfusionMatrix& ConfusionMatrix::operator+=(const ConfusionMatrix& o) {
  if (o.num_classes != num_classes || o.counts.size() != counts.size())
    throw std::invalid_argument("confusion matrices of different sizes cannot be added");
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
  return *this;
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t v : counts) t += v;
  return t;
}

// One implementation of the reductions in the project: harness/eval's (checked against the paper's own
// evaluation function); this adapter only converts the stored matrix.
Metrics compute_metrics(const ConfusionMatrix& cm, Reduction reduction) {
  const int64_t C = cm.num_classes;
  gb::eval::ConfusionMatrix m(C);
  if (C > 0) {
    std::vector<int64_t> copy = cm.counts;
    m.add_counts(at::from_blob(copy.data(), {C + 1, C}, at::kLong).clone());
  }
  const gb::eval::Metrics e =
      gb::eval::reduce(m, reduction == Reduction::Paper ? gb::eval::Protocol::paper : gb::eval::Protocol::standard);
  Metrics out;
  out.miou = e.miou;
  out.aacc = e.aacc;
  out.macc = e.macc;
  out.fwiou = e.fwiou;
  out.per_class_iou = e.iou;
  out.per_class_acc = e.acc;
  return out;
}

}  // namespace gb::reports
