#include "harness/metrics/frechet.h"

#include <ATen/ATen.h>

#include <cmath>
#include <complex>

#include "harness/core/errors.h"
#include "harness/backbones/weights.h"
#include "harness/core/log.h"
#include "harness/metrics/npz.h"

namespace gb::metrics {
namespace {

// Sum of the principal square roots of A's eigenvalues; `ok` is false when the eigenvalue routine failed or
// returned non-finite values. Throws UserError on a significant imaginary part (pytorch-fid's ValueError).
double trace_sqrtm(const at::Tensor& a, bool& ok) {
  at::Tensor ev;
  try {
    ev = at::linalg_eigvals(a).to(at::kComplexDouble).contiguous();
  } catch (const c10::Error&) {
    ok = false;
    return 0;
  }
  const auto* v = ev.data_ptr<c10::complex<double>>();
  double tr = 0, worst_imag = 0;
  for (int64_t i = 0; i < ev.numel(); ++i) {
    const std::complex<double> z(v[i].real(), v[i].imag());
    if (!std::isfinite(z.real()) || !std::isfinite(z.imag())) {
      ok = false;
      return 0;
    }
    const std::complex<double> r = std::sqrt(z);  // principal branch
    tr += r.real();
    if (z.imag() == 0 && z.real() < 0) worst_imag = std::max(worst_imag, r.imag());
  }
  if (worst_imag > 1e-3)
    fail("FID: imaginary component {} in sqrtm(sigma1 · sigma2) (the statistics are not valid covariances)",
         worst_imag);
  ok = true;
  return tr;
}

void check_stats(const FidStats& s, const std::string& what) {
  if (!s.mu.defined() || !s.sigma.defined()) fail("{}: statistics are empty", what);
  if (s.mu.dim() != 1 || s.sigma.dim() != 2 || s.sigma.size(0) != s.mu.size(0) || s.sigma.size(1) != s.mu.size(0))
    fail("{}: mu must be [D] and sigma [D, D], got mu {} and sigma {}", what, bb::shape_str(s.mu.sizes()),
         bb::shape_str(s.sigma.sizes()));
}

}  // namespace

FidStats stats_from_features(const at::Tensor& features) {
  if (features.dim() != 2) fail("FID features must be [N, D], got {}", bb::shape_str(features.sizes()));
  if (features.size(0) < 2) fail("FID needs at least 2 images for a covariance, got {}", features.size(0));
  at::Tensor x = features.to(at::kCPU, at::kDouble).contiguous();
  FidStats s;
  s.mu = x.mean(0);
  at::Tensor xc = x - s.mu;
  s.sigma = at::mm(xc.t(), xc).div_(static_cast<double>(x.size(0) - 1));
  s.count = x.size(0);
  return s;
}

FidStats read_fid_stats(const std::string& path) {
  auto arrays = read_npz(path);
  for (const char* key : {"mu", "sigma"})
    if (!arrays.count(key)) fail_file(path, "no '{}' array (FID statistics need 'mu' and 'sigma')", key);
  FidStats s;
  for (const char* key : {"mu", "sigma"}) {
    const at::Tensor& t = arrays[key];
    if (!at::isFloatingType(t.scalar_type()))
      fail_file(path, "'{}' is {}, expected a float array", key, c10::toString(t.scalar_type()));
  }
  s.mu = arrays["mu"].to(at::kDouble);
  s.sigma = arrays["sigma"].to(at::kDouble);
  if (s.mu.dim() != 1) fail_file(path, "'mu' must be 1-D, got shape {}", bb::shape_str(s.mu.sizes()));
  if (s.sigma.dim() != 2 || s.sigma.size(0) != s.mu.size(0) || s.sigma.size(1) != s.mu.size(0))
    fail_file(path, "'sigma' must be [{}, {}] to match 'mu', got shape {}", s.mu.size(0), s.mu.size(0),
              bb::shape_str(s.sigma.sizes()));
  if (!at::isfinite(s.mu).all().item<bool>() || !at::isfinite(s.sigma).all().item<bool>())
    fail_file(path, "'mu' or 'sigma' holds non-finite values");
  return s;
}

void write_fid_stats(const std::string& path, const FidStats& stats) {
  check_stats(stats, path);
  write_npz(path, {{"mu", stats.mu.to(at::kDouble)}, {"sigma", stats.sigma.to(at::kDouble)}});
}

FrechetResult frechet_distance(const FidStats& a, const FidStats& b, double eps) {
  check_stats(a, "FID statistics 1");
  check_stats(b, "FID statistics 2");
  if (a.mu.size(0) != b.mu.size(0))
    fail("FID statistics have different dimensions: {} and {}", a.mu.size(0), b.mu.size(0));
  const at::Tensor mu1 = a.mu.to(at::kCPU, at::kDouble), mu2 = b.mu.to(at::kCPU, at::kDouble);
  const at::Tensor s1 = a.sigma.to(at::kCPU, at::kDouble), s2 = b.sigma.to(at::kCPU, at::kDouble);
  const at::Tensor diff = mu1 - mu2;
  FrechetResult r;
  bool ok = false;
  r.trace_sqrt = trace_sqrtm(at::mm(s1, s2), ok);
  if (!ok) {
    log::warn("fid calculation produces singular product; adding {} to diagonal of cov estimates", eps);
    const at::Tensor offset = at::eye(s1.size(0), s1.options()).mul_(eps);
    r.trace_sqrt = trace_sqrtm(at::mm(s1 + offset, s2 + offset), ok);
    r.used_offset = true;
    if (!ok) fail("FID: the square root of sigma1 · sigma2 is not finite, even with {} added to the diagonals", eps);
  }
  r.distance =
      at::dot(diff, diff).item<double>() + s1.trace().item<double>() + s2.trace().item<double>() - 2 * r.trace_sqrt;
  return r;
}

}  // namespace gb::metrics
