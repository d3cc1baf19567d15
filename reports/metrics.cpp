#include "reports/metrics.h"

#include "harness/core/errors.h"
#include "harness/eval/confusion.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace gb::reports {

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
Metrics compute_metrics(const ConfusionMatrix& cm, gb::Protocol protocol) {
  const int64_t C = cm.num_classes;
  gb::eval::ConfusionMatrix m(C);
  if (C > 0) {
    std::vector<int64_t> copy = cm.counts;
    m.add_counts(at::from_blob(copy.data(), {C + 1, C}, at::kLong).clone());
  }
  return gb::eval::reduce(m, protocol);
}

}  // namespace gb::reports
