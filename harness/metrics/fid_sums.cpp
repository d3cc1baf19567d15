#include "harness/metrics/fid_sums.h"

#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/io/safetensors.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <filesystem>
#include <unistd.h>

namespace gb::metrics {

namespace {

// hi + lo += p, with the rounding error of the float64 addition carried into lo exactly (TwoSum).
inline void two_sum_add(double& hi, double& lo, double p) {
  const double s = hi + p;
  const double b = s - hi;
  lo += (hi - (s - b)) + (p - b);
  hi = s;
}

}  // namespace

FeatureSums::FeatureSums(int64_t dim) : dim_(dim) {
  if (dim < 1) fail("FID feature sums: dimension must be positive, got {}", dim);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  sum_hi_ = at::zeros({dim}, opts);
  sum_lo_ = at::zeros({dim}, opts);
  outer_hi_ = at::zeros({dim, dim}, opts);
  outer_lo_ = at::zeros({dim, dim}, opts);
}

void FeatureSums::add(const at::Tensor& features) {
  if (features.dim() != 2 || features.size(1) != dim_)
    fail("FID feature sums: features must be [B, {}], got {}", dim_, bb::shape_str(features.sizes()));
  // float32 first (the network's output dtype), then float64: every product below is exact.
  const at::Tensor f = features.to(at::kCPU).to(at::kFloat).to(at::kDouble).contiguous();
  const int64_t B = f.size(0), D = dim_;
  const double* fp = f.data_ptr<double>();
  double* sh = sum_hi_.data_ptr<double>();
  double* sl = sum_lo_.data_ptr<double>();
  double* oh = outer_hi_.data_ptr<double>();
  double* ol = outer_lo_.data_ptr<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < D; ++i) two_sum_add(sh[i], sl[i], fp[b * D + i]);
  at::parallel_for(0, D, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t b = 0; b < B; ++b) {
        const double* row = fp + b * D;
        const double fi = row[i];
        double* hi = oh + i * D;
        double* lo = ol + i * D;
        for (int64_t j = i; j < D; ++j) two_sum_add(hi[j], lo[j], fi * row[j]);
      }
  });
  count_ += B;
}

void FeatureSums::merge(const FeatureSums& o) {
  if (o.dim_ != dim_) fail("FID feature sums: cannot merge dimension {} into {}", o.dim_, dim_);
  auto merge_pair = [](at::Tensor& hi, at::Tensor& lo, const at::Tensor& ohi, const at::Tensor& olo) {
    double* h = hi.data_ptr<double>();
    double* l = lo.data_ptr<double>();
    const double* a = ohi.data_ptr<double>();
    const double* b = olo.data_ptr<double>();
    const int64_t n = hi.numel();
    at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        two_sum_add(h[k], l[k], a[k]);
        l[k] += b[k];
      }
    });
  };
  merge_pair(sum_hi_, sum_lo_, o.sum_hi_, o.sum_lo_);
  merge_pair(outer_hi_, outer_lo_, o.outer_hi_, o.outer_lo_);
  count_ += o.count_;
}

FidStats FeatureSums::stats() const {
  if (count_ < 2) fail("FID needs at least 2 images, got {}", count_);
  const double n = static_cast<double>(count_);
  const at::Tensor s = sum_hi_ + sum_lo_;
  at::Tensor q = (outer_hi_ + outer_lo_).triu();
  q = q + q.triu(1).transpose(0, 1);
  FidStats st;
  st.mu = s / n;
  st.sigma = (q - at::outer(s, s) / n) / (n - 1);
  st.count = count_;
  return st;
}

void FeatureSums::save(const std::string& path) const {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  // safetensors has no atomic writer of its own: write beside, rename.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  const at::Tensor upper = at::ones({dim_, dim_}, at::TensorOptions().dtype(at::kBool)).triu();
  save_safetensors(tmp, {{"sum_hi", sum_hi_},
                         {"sum_lo", sum_lo_},
                         {"outer_hi", outer_hi_.masked_select(upper)},
                         {"outer_lo", outer_lo_.masked_select(upper)},
                         {"count", at::full({1}, count_, at::TensorOptions().dtype(at::kLong))}});
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail_file(path, "cannot write the FID feature sums: {}", ec.message());
}

FeatureSums FeatureSums::load(const std::string& path, int64_t dim) {
  if (!std::filesystem::is_regular_file(path)) fail_file(path, "FID feature sums not found");
  SafetensorsFile f(path);
  for (const char* k : {"sum_hi", "sum_lo", "outer_hi", "outer_lo", "count"})
    if (!f.contains(k)) fail_file(path, "no tensor '{}' (not a goca-bench FID feature-sums file)", k);
  const at::Tensor sh = f.load("sum_hi");
  const int64_t D = sh.dim() == 1 ? sh.size(0) : -1;
  if (D < 1 || (dim > 0 && D != dim))
    fail_file(path, "'sum_hi' must be [{}], got {}", dim > 0 ? dim : D, bb::shape_str(sh.sizes()));
  FeatureSums out(D);
  auto take = [&](const char* key, at::IntArrayRef shape) {
    at::Tensor t = f.load(key);
    if (t.scalar_type() != at::kDouble || t.sizes() != shape)
      fail_file(path, "'{}' must be float64 {}, got {} {}", key, bb::shape_str(shape), c10::toString(t.scalar_type()),
                bb::shape_str(t.sizes()));
    return t.contiguous().clone();
  };
  out.sum_hi_ = take("sum_hi", {D});
  out.sum_lo_ = take("sum_lo", {D});
  const at::Tensor upper = at::ones({D, D}, at::TensorOptions().dtype(at::kBool)).triu();
  out.outer_hi_.masked_scatter_(upper, take("outer_hi", {D * (D + 1) / 2}));
  out.outer_lo_.masked_scatter_(upper, take("outer_lo", {D * (D + 1) / 2}));
  const at::Tensor c = f.load("count");
  if (c.numel() != 1 || c.scalar_type() != at::kLong || c.item<int64_t>() < 0)
    fail_file(path, "'count' must be one non-negative int64");
  out.count_ = c.item<int64_t>();
  return out;
}

}  // namespace gb::metrics
