#pragma once
// FID statistics kept as sums, so that shards of one run merge into exactly the statistics of a single run
// (`goca-bench run` with a `generation:` section, docs/generation.md "Shards and merge").
//
// Per image the pool3 features f (float32) enter as float64 sums: S = Σ f and Q = Σ f fᵀ (upper triangle), plus the
// count N. Every product of two float32 values is exact in float64, and each sum is held as an unevaluated pair
// hi + lo (Knuth's TwoSum: hi the running float64 sum, lo the exact rounding errors), so the stored value is the exact
// sum to about 2^-100 relative — independent of the order the images (or the shards) were added in, up to that
// residue. merge() adds two pairs the same way. stats() then gives mu = S / N and
// sigma = (Q - S Sᵀ / N) / (N - 1) in float64 (numpy.cov's N - 1), equal to stats_from_features() on the same
// features to float64 rounding.
//
// The file form (save/load) is a safetensors file with float64 `sum_hi`, `sum_lo` [D], `outer_hi`, `outer_lo`
// [D (D + 1) / 2] (the upper triangle of Q, row by row; 32 MB for D = 2048) and int64 `count` [1].
#include "harness/metrics/frechet.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace gb::metrics {

class FeatureSums {
 public:
  explicit FeatureSums(int64_t dim = 2048);
  int64_t dim() const { return dim_; }
  int64_t count() const { return count_; }
  // Adds every row of `features` [B, D] (float32; other dtypes are cast to float32 first).
  void add(const at::Tensor& features);
  // Adds another accumulator of the same dimension.
  void merge(const FeatureSums& other);
  // mu and sigma; UserError when fewer than 2 feature vectors were added.
  FidStats stats() const;

  void save(const std::string& path) const;  // atomic
  // UserError naming the file when it is missing, malformed or of another dimension than `dim` (0: any).
  static FeatureSums load(const std::string& path, int64_t dim = 0);

 private:
  int64_t dim_ = 0, count_ = 0;
  at::Tensor sum_hi_, sum_lo_, outer_hi_, outer_lo_;  // float64, CPU
};

}  // namespace gb::metrics
