// Dense CRF mean-field inference (see dense_crf.h).
#include "baselines/dense_crf.h"

#include "baselines/permutohedral.h"
#include "harness/core/errors.h"
#include "harness/core/shape.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

namespace gb::baselines {

struct DenseCrf::Pairwise {
  std::unique_ptr<PermutohedralLattice> lattice;
  std::vector<float> norm;  // D^-1/2 per pixel
  float weight = 0.0f;      // Potts compatibility weight
};

at::Tensor unary_from_softmax(const at::Tensor& probs, double clip) {
  at::Tensor p = probs.to(at::kCPU, at::kFloat).contiguous();
  at::Tensor out = at::empty_like(p);
  const float lo = static_cast<float>(clip);
  const float* src = p.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, p.numel(), 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float v = src[i];
      // np.clip keeps NaN; -log(NaN) = NaN.
      if (v < lo) v = lo;
      if (v > 1.0f) v = 1.0f;
      dst[i] = -std::log(v);
    }
  });
  return out;
}

DenseCrf::DenseCrf(int64_t pixels, int64_t labels) : n_(pixels), k_(labels) {
  if (pixels < 1 || labels < 1) fail("dense CRF: needs at least one pixel and one label (got {} x {})", pixels, labels);
}
DenseCrf::~DenseCrf() = default;
DenseCrf::DenseCrf(DenseCrf&&) noexcept = default;
DenseCrf& DenseCrf::operator=(DenseCrf&&) noexcept = default;

void DenseCrf::set_unary(const at::Tensor& unary) {
  if (unary.dim() < 1 || unary.size(0) != k_ || unary.numel() != n_ * k_)
    fail("dense CRF: unary must be [{} labels, {} pixels], got {}", k_, n_, gb::shape_str(unary.sizes()));
  // Stored pixel-major so that a pixel's labels are contiguous (the lattice's value vector).
  at::Tensor u = unary.to(at::kCPU, at::kFloat).reshape({k_, n_}).t().contiguous();
  unary_.assign(u.data_ptr<float>(), u.data_ptr<float>() + n_ * k_);
  has_unary_ = true;
}

void DenseCrf::add_pairwise(const at::Tensor& features, float potts_weight) {
  if (features.dim() != 2 || features.size(0) != n_ || features.size(1) < 1)
    fail("dense CRF: pairwise features must be [{} pixels, d], got {}", n_, gb::shape_str(features.sizes()));
  at::Tensor f = features.to(at::kCPU, at::kFloat).contiguous();
  auto pw = std::make_unique<Pairwise>();
  pw->lattice = std::make_unique<PermutohedralLattice>(f.data_ptr<float>(), n_, static_cast<int>(f.size(1)));
  // Symmetric normalisation: norm_i = 1 / sqrt((K 1)_i), computed in double as densecrf does.
  std::vector<float> ones(static_cast<size_t>(n_), 1.0f);
  pw->norm.resize(static_cast<size_t>(n_));
  pw->lattice->filter(ones.data(), pw->norm.data(), 1);
  for (auto& v : pw->norm) v = static_cast<float>(1.0 / std::sqrt(static_cast<double>(v) + 1e-20));
  pw->weight = potts_weight;
  pairwise_.push_back(std::move(pw));
}

namespace {

// Per pixel: q = exp(x - max x) / sum. A NaN anywhere in the row makes the whole row NaN.
void exp_normalize(const float* in, float* out, int64_t n, int64_t k) {
  at::parallel_for(0, n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* x = in + i * k;
      float* q = out + i * k;
      float mx = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t l = 0; l < k; ++l) {
        if (std::isnan(x[l])) nan = true;
        if (x[l] > mx) mx = x[l];
      }
      if (nan) {
        for (int64_t l = 0; l < k; ++l) q[l] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      float sum = 0.0f;
      for (int64_t l = 0; l < k; ++l) {
        q[l] = std::exp(x[l] - mx);
        sum += q[l];
      }
      for (int64_t l = 0; l < k; ++l) q[l] = q[l] / sum;
    }
  });
}

}  // namespace

at::Tensor DenseCrf::inference(int iterations) const {
  if (iterations < 0) fail("dense CRF: negative iteration count {}", iterations);
  const int64_t nk = n_ * k_;
  std::vector<float> neg_unary(static_cast<size_t>(nk), 0.0f);
  if (has_unary_)
    for (int64_t i = 0; i < nk; ++i) neg_unary[i] = -unary_[i];

  std::vector<float> q(static_cast<size_t>(nk)), energy(static_cast<size_t>(nk)), msg(static_cast<size_t>(nk));
  exp_normalize(neg_unary.data(), q.data(), n_, k_);
  const int64_t k = k_;
  for (int it = 0; it < iterations; ++it) {
    energy = neg_unary;
    for (const auto& pw : pairwise_) {
      const float* norm = pw->norm.data();
      at::parallel_for(0, n_, 8192, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          for (int64_t l = 0; l < k; ++l) msg[i * k + l] = q[i * k + l] * norm[i];
      });
      pw->lattice->filter(msg.data(), msg.data(), static_cast<int>(k_));
      // Potts: the compatibility message is -w * (K~ Q); the energy subtracts it.
      const float neg_w = -pw->weight;
      at::parallel_for(0, n_, 8192, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          for (int64_t l = 0; l < k; ++l) energy[i * k + l] -= neg_w * (msg[i * k + l] * norm[i]);
      });
    }
    exp_normalize(energy.data(), q.data(), n_, k_);
  }
  at::Tensor out = at::from_blob(q.data(), {n_, k_}, at::kFloat).t().contiguous();
  return out;
}

DenseCrf2D::DenseCrf2D(int64_t width, int64_t height, int64_t labels)
    : DenseCrf(width * height, labels), w_(width), h_(height) {
  if (width < 1 || height < 1) fail("dense CRF: image must be at least 1x1, got {}x{}", width, height);
}

void DenseCrf2D::add_pairwise_gaussian(float sx, float sy, float potts_weight) {
  at::Tensor f = at::empty({n_, 2}, at::kFloat);
  float* p = f.data_ptr<float>();
  for (int64_t y = 0; y < h_; ++y)
    for (int64_t x = 0; x < w_; ++x) {
      p[(y * w_ + x) * 2 + 0] = static_cast<float>(x) / sx;
      p[(y * w_ + x) * 2 + 1] = static_cast<float>(y) / sy;
    }
  add_pairwise(f, potts_weight);
}

void DenseCrf2D::add_pairwise_bilateral(float sx, float sy, float sr, float sg, float sb, const at::Tensor& image,
                                        float potts_weight) {
  if (image.scalar_type() != at::kByte || image.dim() != 3 || image.size(0) != h_ || image.size(1) != w_ ||
      image.size(2) != 3)
    fail("dense CRF: bilateral image must be uint8 [{}, {}, 3], got {} {}", h_, w_,
         std::string(c10::toString(image.scalar_type())), gb::shape_str(image.sizes()));
  at::Tensor im = image.to(at::kCPU).contiguous();
  const uint8_t* src = im.data_ptr<uint8_t>();
  at::Tensor f = at::empty({n_, 5}, at::kFloat);
  float* p = f.data_ptr<float>();
  const float s[3] = {sr, sg, sb};
  for (int64_t y = 0; y < h_; ++y)
    for (int64_t x = 0; x < w_; ++x) {
      const int64_t i = y * w_ + x;
      p[i * 5 + 0] = static_cast<float>(x) / sx;
      p[i * 5 + 1] = static_cast<float>(y) / sy;
      for (int c = 0; c < 3; ++c) p[i * 5 + 2 + c] = static_cast<float>(src[i * 3 + c]) / s[c];
    }
  add_pairwise(f, potts_weight);
}

at::Tensor dense_crf_2d(const at::Tensor& probs, const at::Tensor& image, const DenseCrfParams& params) {
  if (probs.dim() != 3) fail("dense CRF: probabilities must be [K, H, W], got {}", gb::shape_str(probs.sizes()));
  const int64_t k = probs.size(0), h = probs.size(1), w = probs.size(2);
  DenseCrf2D crf(w, h, k);
  crf.set_unary(unary_from_softmax(probs, params.unary_clip).reshape({k, h * w}));
  crf.add_pairwise_gaussian(params.gaussian_sxy, params.gaussian_sxy, params.gaussian_compat);
  crf.add_pairwise_bilateral(params.bilateral_sxy, params.bilateral_sxy, params.bilateral_srgb, params.bilateral_srgb,
                             params.bilateral_srgb, image, params.bilateral_compat);
  return crf.inference(params.iterations).reshape({k, h, w});
}

}  // namespace gb::baselines
