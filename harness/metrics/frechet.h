#pragma once
// FID statistics and the Fréchet distance with pytorch-fid's numerics (docs/metrics.md, "Numerics").
//
//  - statistics: mu = mean of the features, sigma = their covariance with N - 1 (numpy.cov(rowvar=False)),
//    both float64, computed from the features cast to float64 and centred first, as numpy does;
//  - d² = |mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 · sigma2)).
//
// tr(sqrtm(A)) is the sum of the principal square roots of A's eigenvalues: scipy.linalg.sqrtm computes the
// Schur form A = Z T Zᴴ and the upper (quasi-)triangular square root R of T, whose diagonal (or 2x2 blocks) are
// the principal roots of T's eigenvalues, and tr(Z R Zᴴ) = tr(R). Here the eigenvalues come from LAPACK's
// geev (at::linalg_eigvals, float64), so the value agrees with scipy to rounding (about 1e-13 relative for
// full-rank statistics; for singular ones, fewer images than feature dimensions, the near-zero eigenvalues
// are rounding noise in both and contribute about 1e-8 relative). pytorch-fid's two guards are kept:
//  - a non-finite square root (eigenvalue routine failed) retries with eps = 1e-6 added to both diagonals;
//  - an imaginary part: scipy returns a complex root exactly when some eigenvalue is negative real; its
//    diagonal's imaginary parts are then of the size of sqrt(|λ|), and pytorch-fid raises when they exceed
//    1e-3. Here: a UserError when a negative real eigenvalue has sqrt(-λ) > 1e-3.
#include <ATen/core/Tensor.h>

#include <string>

namespace gb::metrics {

struct FidStats {
  at::Tensor mu;      // float64 [D]
  at::Tensor sigma;   // float64 [D, D]
  int64_t count = 0;  // number of feature vectors (0 when read from a file)
};

// features [N, D] (any floating dtype, N >= 2) -> statistics.
FidStats stats_from_features(const at::Tensor& features);

// pytorch-fid / T2IBenchmark .npz (`mu` [D], `sigma` [D, D], float32 or float64; other arrays ignored).
FidStats read_fid_stats(const std::string& path);
void write_fid_stats(const std::string& path, const FidStats& stats);

struct FrechetResult {
  double distance = 0;
  double trace_sqrt = 0;     // tr(sqrtm(sigma1 · sigma2)), real part
  bool used_offset = false;  // the eps fallback ran
};

FrechetResult frechet_distance(const FidStats& a, const FidStats& b, double eps = 1e-6);

}  // namespace gb::metrics
