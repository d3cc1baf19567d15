#include "reports/metrics.h"

#include "harness/core/errors.h"

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

Metrics compute_metrics(const ConfusionMatrix& cm, Reduction reduction) {
  const int64_t C = cm.num_classes;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Metrics m;
  m.per_class_iou.assign(static_cast<size_t>(C), 0.0);
  m.per_class_acc.assign(static_cast<size_t>(C), 0.0);
  const bool paper = reduction == Reduction::Paper;
  std::vector<double> gt(C, 0), pred(C, 0), inter(C, 0);
  double correct = 0, valid = 0;
  for (int64_t r = 0; r <= C; ++r) {
    if (r == C && !paper) break;  // standard: ignored ground truth
    for (int64_t c = 0; c < C; ++c) {
      const double v = static_cast<double>(cm.at(r, c));
      pred[c] += v;
      valid += v;
      if (r < C) gt[r] += v;
      if (r == c) {
        inter[c] += v;
        correct += v;
      }
    }
  }
  double iou_sum = 0, acc_sum = 0, fw = 0;
  int64_t iou_n = 0, acc_n = 0;
  for (int64_t c = 0; c < C; ++c) {
    const double uni = gt[c] + pred[c] - inter[c];
    double iou, acc;
    if (paper) {
      iou = inter[c] / (1e-8 + uni);
      acc = inter[c] / (1e-8 + gt[c]);
      iou_sum += iou;
      acc_sum += acc;
      ++iou_n;
      ++acc_n;
    } else {
      iou = uni > 0 ? inter[c] / uni : nan;
      acc = gt[c] > 0 ? inter[c] / gt[c] : nan;
      if (!std::isnan(iou)) iou_sum += iou, ++iou_n;
      if (!std::isnan(acc)) acc_sum += acc, ++acc_n;
    }
    m.per_class_iou[c] = iou;
    m.per_class_acc[c] = acc;
  }
  double gt_all = 0;
  for (int64_t c = 0; c < C; ++c) gt_all += gt[c];
  for (int64_t c = 0; c < C; ++c)
    if (gt_all > 0 && !std::isnan(m.per_class_iou[c])) fw += gt[c] / gt_all * m.per_class_iou[c];
  m.miou = iou_n ? iou_sum / static_cast<double>(iou_n) : nan;
  m.macc = acc_n ? acc_sum / static_cast<double>(acc_n) : nan;
  m.aacc = valid > 0 ? correct / valid : nan;
  m.fwiou = fw;
  return m;
}

}  // namespace gb::reports
