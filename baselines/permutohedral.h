#pragma once
// Permutohedral-lattice Gaussian filtering (Adams, Baek & Davis, "Fast High-Dimensional Filtering Using the
// Permutohedral Lattice", Eurographics 2010), as used by Krähenbühl & Koltun's fully-connected CRF
// (NIPS 2011) and hence by pydensecrf.
//
// For N points with d-dimensional features f_i, filter() approximates
//     out_i = sum_j k(f_i, f_j) in_j,   k(a, b) ~ c * exp(-|a - b|^2 / 2),
// with c an (irrelevant under normalisation) constant. The self term j == i is included, as in densecrf.
// Points are splatted onto the d+1 vertices of their enclosing simplex of the scaled permutohedral
// lattice (barycentric weights), the lattice is blurred with [1/2, 1, 1/2] along each of its d+1 axes,
// and values are sliced back with the same weights times alpha = 1 / (1 + 2^-d).
//
// This is an independent implementation from the paper's description. It reproduces densecrf's
// numerical conventions where they change results: the feature scaling sqrt(2/3)(d+1)/sqrt((i+1)(i+2)),
// round-half-to-even when finding the nearest remainder-0 point (the SSE build of pydensecrf), splat
// sums accumulated in point order, and the blur axis order.
#include <cstdint>
#include <vector>

namespace gb::baselines {

class PermutohedralLattice {
 public:
  // `features`: n points x d floats, row-major (point i at features[i*d .. i*d+d)).
  PermutohedralLattice(const float* features, int64_t n, int d);

  // in/out: n x v floats, row-major (out may alias in). reverse = blur the axes in reverse order.
  void filter(const float* in, float* out, int v, bool reverse = false) const;

  int64_t points() const { return n_; }
  int dims() const { return d_; }
  int64_t vertices() const { return m_; }

 private:
  int64_t n_ = 0;
  int d_ = 0;
  int64_t m_ = 0;
  std::vector<int32_t> vertex_;  // n*(d+1): lattice vertex of point i's j-th simplex corner
  std::vector<float> weight_;    // n*(d+1): its barycentric weight
  // Splat as a gather: for vertex m, entries [splat_begin_[m], splat_begin_[m+1]) of splat_src_ index
  // vertex_/weight_ (point*(d+1)+corner), in increasing point order (the order a scatter would add them).
  std::vector<int64_t> splat_begin_;
  std::vector<int64_t> splat_src_;
  std::vector<int32_t> neighbors_;  // (d+1) axes x m vertices x 2 (minus, plus); -1 when absent
};

}  // namespace gb::baselines
