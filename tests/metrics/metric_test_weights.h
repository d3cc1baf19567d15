#pragma once
// The test weights of tools/parity/metrics_goldens.py (FID Inception, tiny CLIPModel), regenerated
// bit-identically (the Inception's are 95 MB, the tiny CLIP's token embedding 6 MB): per key, seed = FNV-1a-64(key),
// u_j = (splitmix64(seed + (j+1)·golden) >> 40) / 2^24, then in float64, cast to float32:
//   conv weight [o, i, kh, kw]: (2u - 1)·sqrt(6 / (i·kh·kw));  bn.weight: 1 + (2u - 1)/4;
//   bn.bias, bn.running_mean: (2u - 1)/8;  bn.running_var: 1 + u/2.
#include "harness/core/hash.h"
#include "harness/backbones/weights.h"
#include "harness/metrics/fid_inception.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

namespace gb::testing {

inline uint64_t fnv1a64(const std::string& s) { return gb::fnv1a(s, gb::kFnvStandardOffset); }

// u_j in [0, 1) for key `key`.
inline double test_uniform(uint64_t seed, int64_t j) {
  const uint64_t z = gb::mix64(seed + static_cast<uint64_t>(j + 1) * gb::kGoldenGamma);
  return static_cast<double>(z >> 40) / static_cast<double>(1 << 24);
}

inline bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

inline at::Tensor fid_test_value(const std::string& key, at::IntArrayRef shape) {
  const uint64_t seed = fnv1a64(key);
  at::Tensor t = at::empty(shape, at::kFloat);
  float* p = t.data_ptr<float>();
  const auto ends = [&](const char* s) { return ends_with(key, s); };
  for (int64_t j = 0; j < t.numel(); ++j) {
    const double u = test_uniform(seed, j);
    double v;
    if (ends("conv.weight")) v = (2 * u - 1) * std::sqrt(6.0 / static_cast<double>(shape[1] * shape[2] * shape[3]));
    else if (ends("bn.weight")) v = 1 + (2 * u - 1) / 4;
    else if (ends("bn.bias") || ends("bn.running_mean")) v = (2 * u - 1) / 8;
    else if (ends("bn.running_var")) v = 1 + u / 2;
    else throw std::runtime_error("fid_test_value: unexpected key " + key);
    p[j] = static_cast<float>(v);
  }
  return t;
}

// The tiny CLIPModel's weights: layer norms 1 + (2u - 1)/4 (bias (2u - 1)/8), biases (2u - 1)/8, embeddings and
// class_embedding (2u - 1)/2, patch conv (2u - 1)·sqrt(3 / (3·p·p)), linear [o, i] (2u - 1)·sqrt(3 / i).
inline at::Tensor clip_test_value(const std::string& key, at::IntArrayRef shape) {
  const uint64_t seed = fnv1a64(key);
  at::Tensor t = at::empty(shape, at::kFloat);
  float* p = t.data_ptr<float>();
  bool norm = false;
  for (const char* n : {"layer_norm1", "layer_norm2", "final_layer_norm", "pre_layrnorm", "post_layernorm"})
    norm = norm || key.find(n) != std::string::npos;
  for (int64_t j = 0; j < t.numel(); ++j) {
    const double u = test_uniform(seed, j);
    double v;
    if (norm && ends_with(key, ".weight")) v = 1 + (2 * u - 1) / 4;
    else if (ends_with(key, ".bias") || norm) v = (2 * u - 1) / 8;
    else if (ends_with(key, "patch_embedding.weight"))
      v = (2 * u - 1) * std::sqrt(3.0 / static_cast<double>(shape[1] * shape[2] * shape[3]));
    else if (ends_with(key, "embedding.weight") || ends_with(key, "class_embedding")) v = (2 * u - 1) / 2;
    else if (ends_with(key, ".weight") && shape.size() == 2)
      v = (2 * u - 1) * std::sqrt(3.0 / static_cast<double>(shape[1]));
    else throw std::runtime_error("clip_test_value: unexpected key " + key);
    p[j] = static_cast<float>(v);
  }
  return t;
}

// Every key the network asks for, filled with the test values.
inline std::map<std::string, at::Tensor> fid_test_weights() {
  bb::WeightStore shapes = bb::WeightStore::shape_only();
  metrics::FidInception skeleton(shapes);
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, t] : shapes.tensors()) out[k] = fid_test_value(k, t.sizes());
  return out;
}

}  // namespace gb::testing
