#pragma once
// Confusion matrix and the two metric reductions (docs/evaluation.md).
//
// Rows are ground-truth labels 0..C-1 plus one extra row C for every label value outside [0, C)
// (negative values, 255 under the paper protocol, ...); columns are predictions 0..C-1. Counts are
// int64 and additive: matrices of images, batches or shards are simply summed.
//
// From this matrix the paper's per-image union counting |{pred=c} ∪ {y=c}| is exactly
//   U_c = row_c + col_c - M[c][c]        (col_c includes row C: an out-of-range label predicted as c is an FP of c)
//   I_c = M[c][c].
#include "harness/core/protocol.h"
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gb::eval {

using gb::parse_protocol;
using gb::Protocol;  // harness/core/protocol.h
using gb::to_string;

// The one confusion-matrix type of the program: the evaluator accumulates it, the journal and results.json store
// it, merge and compare add and compare it. Counts live on the host (a (C+1)*C row-major vector); add() counts on
// the inputs' device and adds the (C+1)*C result here.
class ConfusionMatrix {
 public:
  ConfusionMatrix() = default;
  explicit ConfusionMatrix(int64_t num_classes);

  int64_t num_classes() const { return num_classes_; }
  // `pred`: integer predictions in [0, C) (checked); `label`: integer label map of the same number of elements.
  // paper: every pixel counts (out-of-range labels go to row C).
  // standard: pixels whose label equals `ignore_index` are dropped; other out-of-range labels go to row C
  // (as mmseg's histc does). Works on CPU or CUDA tensors.
  void add(const at::Tensor& pred, const at::Tensor& label, Protocol protocol, int64_t ignore_index = 255);
  void add_counts(const at::Tensor& counts_c1_by_c);  // another (C+1, C) int64 matrix
  // Adds another matrix of the same size (an empty matrix adopts the other's size); UserError on a size mismatch.
  void merge(const ConfusionMatrix& other);
  ConfusionMatrix& operator+=(const ConfusionMatrix& other) {
    merge(other);
    return *this;
  }
  bool operator==(const ConfusionMatrix& o) const { return num_classes_ == o.num_classes_ && counts_ == o.counts_; }
  bool operator!=(const ConfusionMatrix& o) const { return !(*this == o); }

  // (C+1, C) int64 on CPU, a copy.
  at::Tensor counts() const;
  int64_t at(int64_t gt_row, int64_t pred_col) const { return counts_[index(gt_row, pred_col)]; }
  int64_t& at(int64_t gt_row, int64_t pred_col) { return counts_[index(gt_row, pred_col)]; }
  int64_t total() const;

  std::string to_json() const;  // {"num_classes": C, "counts": [[...], ...]}
  static ConfusionMatrix from_json(const std::string& text, const std::string& source);

 private:
  size_t index(int64_t gt_row, int64_t pred_col) const;  // checked: row in [0, C], column in [0, C)
  int64_t num_classes_ = 0;
  std::vector<int64_t> counts_;  // (C+1)*C, row-major
};

struct Metrics {
  Protocol protocol = Protocol::paper;
  std::vector<int64_t> intersection;  // per class
  std::vector<int64_t> union_;        // per class
  std::vector<int64_t> label_area;    // pixels with label c
  std::vector<int64_t> pred_area;     // pixels predicted c (including pixels with out-of-range labels)
  std::vector<double> iou;            // paper: I/(1e-8+U) (absent → 0); standard: I/U (absent → NaN)
  std::vector<double> acc;            // per-class accuracy, same convention
  double miou = 0;                    // paper: mean over all C (numpy pairwise order); standard: nanmean
  double macc = 0;
  double aacc = 0;                  // paper: correct / all counted pixels; standard: correct / labelled pixels in [0,C)
  double fwiou = 0;                 // sum_c (label_area_c / sum label_area) * IoU_c over classes with label_area > 0
  int64_t pixels = 0;               // pixels counted (all rows)
  int64_t out_of_range_pixels = 0;  // row C
};

Metrics reduce(const ConfusionMatrix& cm, Protocol protocol);

// numpy's float64 pairwise summation (np.add.reduce / ndarray.mean), reproduced for bit-identical means.
double numpy_pairwise_sum(const double* a, int64_t n);

}  // namespace gb::eval
