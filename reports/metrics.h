#pragma once
// Segmentation metrics from an int64 confusion matrix (spec goca-method.md §F).
//
// Layout: (C+1) rows × C columns, row = ground-truth class, column = predicted class. Row C collects every
// pixel whose ground truth lies outside [0, C) (255 boundaries, out-of-range ids): the paper's protocol
// counts those pixels as false positives of the predicted class, the standard (mmseg) protocol ignores them.
// Matrices are additive across images, batches and shards.
#include "harness/core/protocol.h"
#include "harness/eval/confusion.h"
#include <cstdint>
#include <string>
#include <vector>

namespace gb::reports {


struct ConfusionMatrix {
  int64_t num_classes = 0;
  std::vector<int64_t> counts;  // (num_classes + 1) * num_classes, row-major

  explicit ConfusionMatrix(int64_t c = 0) : num_classes(c), counts(static_cast<size_t>((c + 1) * c), 0) {}
  int64_t& at(int64_t gt_row, int64_t pred) { return counts[static_cast<size_t>(gt_row * num_classes + pred)]; }
  int64_t at(int64_t gt_row, int64_t pred) const { return counts[static_cast<size_t>(gt_row * num_classes + pred)]; }
  ConfusionMatrix& operator+=(const ConfusionMatrix& o);  // throws std::invalid_argument on size mismatch
  bool operator==(const ConfusionMatrix& o) const { return num_classes == o.num_classes && counts == o.counts; }
  int64_t total() const;
};

// One Metrics type: harness/eval's (per-class iou/acc, mIoU, aAcc, mAcc, fwIoU and the counts behind them).
using Metrics = gb::eval::Metrics;

// paper: no ignore; IoU_c = I/(1e-8 + U) with absent classes scoring 0; mean over all C classes.
// standard: out-of-range rows dropped; classes with U = 0 are NaN and skipped (nanmean).
Metrics compute_metrics(const ConfusionMatrix& cm, gb::Protocol protocol);

}  // namespace gb::reports
