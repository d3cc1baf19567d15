#include "harness/eval/confusion.h"

#include "harness/core/errors.h"
#include "harness/io/json_io.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace gb::eval {

ConfusionMatrix::ConfusionMatrix(int64_t num_classes) : num_classes_(num_classes) {
  if (num_classes <= 0) fail("number of classes must be positive, got {}", num_classes);
  counts_.assign(static_cast<size_t>((num_classes + 1) * num_classes), 0);
}

size_t ConfusionMatrix::index(int64_t r, int64_t c) const {
  if (r < 0 || r > num_classes_ || c < 0 || c >= num_classes_) {
    fail("confusion cell (row {}, column {}) outside the {}x{} matrix", r, c, num_classes_ + 1, num_classes_);
  }
  return static_cast<size_t>(r * num_classes_ + c);
}

void ConfusionMatrix::add(const at::Tensor& pred, const at::Tensor& label, Protocol protocol, int64_t ignore_index) {
  const int64_t C = num_classes_;
  if (C <= 0) fail("confusion matrix used before it was sized");
  if (pred.numel() != label.numel()) {
    fail("prediction has {} pixels but the label map has {}", pred.numel(), label.numel());
  }
  if (at::isFloatingType(pred.scalar_type()) || at::isFloatingType(label.scalar_type())) {
    fail("prediction and label maps must be integer tensors");
  }
  at::Tensor p = pred.reshape({-1}).to(at::kLong);
  at::Tensor y = label.reshape({-1}).to(p.device(), at::kLong);
  if (protocol == Protocol::standard) {
    at::Tensor keep = y.ne(ignore_index);
    p = p.masked_select(keep);
    y = y.masked_select(keep);
  }
  if (p.numel() == 0) return;
  if (p.min().item<int64_t>() < 0 || p.max().item<int64_t>() >= C) {
    fail("predicted class ids must lie in [0, {}), found {}..{}", C, p.min().item<int64_t>(), p.max().item<int64_t>());
  }
  at::Tensor row = at::where(y.ge(0).logical_and(y.lt(C)), y, at::full({}, C, y.options()));
  add_counts(at::bincount(row * C + p, {}, (C + 1) * C).reshape({C + 1, C}));
}

void ConfusionMatrix::add_counts(const at::Tensor& m) {
  if (m.dim() != 2 || m.size(0) != num_classes_ + 1 || m.size(1) != num_classes_) {
    fail("confusion counts must be ({}, {}), got {} dimensions of sizes {}x{}", num_classes_ + 1, num_classes_, m.dim(),
         m.dim() > 0 ? m.size(0) : 0, m.dim() > 1 ? m.size(1) : 0);
  }
  const at::Tensor host = m.to(at::kCPU, at::kLong).contiguous();
  const int64_t* v = host.data_ptr<int64_t>();
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += v[i];
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  if (num_classes_ == 0) {
    *this = other;
    return;
  }
  if (other.num_classes_ != num_classes_) {
    fail("cannot add confusion matrices with {} and {} classes", num_classes_, other.num_classes_);
  }
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

at::Tensor ConfusionMatrix::counts() const {
  if (num_classes_ == 0) return at::zeros({0, 0}, at::kLong);
  std::vector<int64_t> copy = counts_;
  return at::from_blob(copy.data(), {num_classes_ + 1, num_classes_}, at::kLong).clone();
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t v : counts_) t += v;
  return t;
}

std::string ConfusionMatrix::to_json() const {
  nlohmann::json j;
  j["num_classes"] = num_classes_;
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t r = 0; r <= num_classes_ && num_classes_ > 0; ++r) {
    rows.push_back(std::vector<int64_t>(counts_.begin() + r * num_classes_, counts_.begin() + (r + 1) * num_classes_));
  }
  j["counts"] = rows;
  return j.dump();
}

ConfusionMatrix ConfusionMatrix::from_json(const std::string& text, const std::string& source) {
  nlohmann::json j = parse_json(text, source);
  if (!j.is_object() || !j.contains("num_classes") || !j["num_classes"].is_number_integer() || !j.contains("counts")) {
    fail_file(source, "expected {{\"num_classes\": C, \"counts\": [[...]]}}");
  }
  const int64_t C = j["num_classes"].get<int64_t>();
  if (C <= 0) fail_file(source, "num_classes must be positive");
  const auto& rows = j["counts"];
  if (!rows.is_array() || static_cast<int64_t>(rows.size()) != C + 1) {
    fail_file(source, "'counts' must have {} rows (classes + the out-of-range row)", C + 1);
  }
  ConfusionMatrix cm(C);
  for (int64_t r = 0; r <= C; ++r) {
    const auto& row = rows[r];
    if (!row.is_array() || static_cast<int64_t>(row.size()) != C)
      fail_file(source, "counts[{}] must have {} entries", r, C);
    for (int64_t c = 0; c < C; ++c) {
      if (!row[c].is_number_integer() || row[c].get<int64_t>() < 0) {
        fail_file(source, "counts[{}][{}] must be a non-negative integer", r, c);
      }
      cm.at(r, c) = row[c].get<int64_t>();
    }
  }
  return cm;
}

// numpy/core/src/umath/loops_utils.h.src: pairwise_sum with an 8-way unrolled block of at most 128 elements.
double numpy_pairwise_sum(const double* a, int64_t n) {
  if (n < 8) {
    double res = 0.;
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8) {
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

namespace {
double nanmean(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v) {
    if (!std::isnan(x)) {
      s += x;
      ++n;
    }
  }
  return n == 0 ? std::numeric_limits<double>::quiet_NaN() : s / static_cast<double>(n);
}
}  // namespace

Metrics reduce(const ConfusionMatrix& cm, Protocol protocol) {
  const int64_t C = cm.num_classes();
  Metrics r;
  r.protocol = protocol;
  r.intersection.assign(C, 0);
  r.union_.assign(C, 0);
  r.label_area.assign(C, 0);
  r.pred_area.assign(C, 0);
  int64_t correct = 0, labelled = 0;
  for (int64_t row = 0; row <= C; ++row) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t v = cm.at(row, c);
      r.pixels += v;
      r.pred_area[c] += v;
      if (row < C) {
        r.label_area[row] += v;
        labelled += v;
      } else {
        r.out_of_range_pixels += v;
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    r.intersection[c] = cm.at(c, c);
    r.union_[c] = r.label_area[c] + r.pred_area[c] - cm.at(c, c);
    correct += cm.at(c, c);
  }
  r.iou.resize(C);
  r.acc.resize(C);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int64_t c = 0; c < C; ++c) {
    const double I = static_cast<double>(r.intersection[c]);
    if (protocol == Protocol::paper) {
      r.iou[c] = I / (1e-8 + static_cast<double>(r.union_[c]));
      r.acc[c] = I / (1e-8 + static_cast<double>(r.label_area[c]));
    } else {
      r.iou[c] = r.union_[c] == 0 ? nan : I / static_cast<double>(r.union_[c]);
      r.acc[c] = r.label_area[c] == 0 ? nan : I / static_cast<double>(r.label_area[c]);
    }
  }
  if (protocol == Protocol::paper) {
    r.miou = numpy_pairwise_sum(r.iou.data(), C) / static_cast<double>(C);
    r.macc = numpy_pairwise_sum(r.acc.data(), C) / static_cast<double>(C);
    r.aacc = r.pixels == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(r.pixels);
  } else {
    r.miou = nanmean(r.iou);
    r.macc = nanmean(r.acc);
    r.aacc = labelled == 0 ? nan : static_cast<double>(correct) / static_cast<double>(labelled);
  }
  double fw = 0;
  for (int64_t c = 0; c < C; ++c) {
    if (r.label_area[c] > 0 && labelled > 0 && !std::isnan(r.iou[c])) {
      fw += static_cast<double>(r.label_area[c]) / static_cast<double>(labelled) * r.iou[c];
    }
  }
  r.fwiou = labelled == 0 ? (protocol == Protocol::paper ? 0.0 : nan) : fw;
  return r;
}

}  // namespace gb::eval
