#pragma once
// Fully-connected CRF with Gaussian edge potentials and mean-field inference (Krähenbühl & Koltun,
// "Efficient Inference in Fully Connected CRFs with Gaussian Edge Potentials", NIPS 2011), with the
// semantics of pydensecrf's DenseCRF2D (the library FTTM's `dcrf` post-processing calls):
//
//   unary_from_softmax(p)         U = -log(clip(p, 1e-5, 1))            (NaN stays NaN)
//   addPairwiseGaussian(sxy, w)   features (x/sxy, y/sxy),              Potts weight w
//   addPairwiseBilateral(sxy, srgb, im, w)
//                                 features (x/sxy, y/sxy, im0/srgb, im1/srgb, im2/srgb), Potts weight w
//   kernels                       k(f_i, f_j) = exp(-|f_i - f_j|^2 / 2), self term included, filtered on
//                                 the permutohedral lattice, symmetric normalisation
//                                 K~ = D^-1/2 K D^-1/2 with D = diag(K 1)
//   inference(n)                  Q0 = softmax(-U); n times: Q = softmax(-U + sum_m w_m K~_m Q)
//   returns                       the marginals Q, labels x pixels.
//
// Pixel i = y*W + x (row-major); images are H x W x 3 uint8 in the channel order given.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace gb::baselines {

class PermutohedralLattice;

// -log(clip(p, clip, 1)) elementwise, float32, any shape (pydensecrf.utils.unary_from_softmax, scale=None).
at::Tensor unary_from_softmax(const at::Tensor& probs, double clip = 1e-5);

class DenseCrf {
 public:
  DenseCrf(int64_t pixels, int64_t labels);
  ~DenseCrf();
  DenseCrf(DenseCrf&&) noexcept;
  DenseCrf& operator=(DenseCrf&&) noexcept;

  // [labels, pixels] (or [labels, ...] with `pixels` elements per label), float32 energies.
  void set_unary(const at::Tensor& unary);
  // features: [pixels, d] float32. Potts compatibility with weight `potts_weight` (pydensecrf `compat=w`).
  void add_pairwise(const at::Tensor& features, float potts_weight);
  // Mean-field marginals after `iterations` updates: [labels, pixels] float32.
  at::Tensor inference(int iterations) const;

  int64_t pixels() const { return n_; }
  int64_t labels() const { return k_; }

 protected:
  struct Pairwise;
  int64_t n_;
  int64_t k_;
  std::vector<float> unary_;  // pixel-major: unary_[i*k + l]
  bool has_unary_ = false;
  std::vector<std::unique_ptr<Pairwise>> pairwise_;
};

class DenseCrf2D : public DenseCrf {
 public:
  DenseCrf2D(int64_t width, int64_t height, int64_t labels);

  void add_pairwise_gaussian(float sx, float sy, float potts_weight);
  // image: [height, width, 3] uint8, contiguous on CPU.
  void add_pairwise_bilateral(float sx, float sy, float sr, float sg, float sb, const at::Tensor& image,
                              float potts_weight);

  int64_t width() const { return w_; }
  int64_t height() const { return h_; }

 private:
  int64_t w_;
  int64_t h_;
};

// pydensecrf-style one-call CRF: probs [K, H, W] (unnormalised probabilities), image [H, W, 3] uint8.
struct DenseCrfParams {
  int iterations = 10;
  float gaussian_sxy = 1.0f;
  float gaussian_compat = 3.0f;
  float bilateral_sxy = 67.0f;
  float bilateral_srgb = 3.0f;
  float bilateral_compat = 4.0f;
  double unary_clip = 1e-5;
};
// Returns the marginals [K, H, W] float32.
at::Tensor dense_crf_2d(const at::Tensor& probs, const at::Tensor& image, const DenseCrfParams& params = {});

}  // namespace gb::baselines
