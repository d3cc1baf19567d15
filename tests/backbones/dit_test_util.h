#pragma once
// Shared helpers for the PixArt / Flux / T5 tests: golden locations and the relative-error check.
#include "harness/io/safetensors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace dit_test {

inline std::string golden_dir(const std::string& sub) {
  return std::string(GB_SOURCE_DIR) + "/tests/backbones/goldens/dit/" + sub;
}

inline std::map<std::string, at::Tensor> golden(const std::string& sub) {
  return gb::load_safetensors(golden_dir(sub) + "/golden.safetensors");
}

// max |a - b| / max |b| (the tolerance the issue sets: 1e-4 in fp32).
inline double rel_err(const at::Tensor& a, const at::Tensor& b) {
  auto af = a.to(at::kDouble).cpu(), bf = b.to(at::kDouble).cpu();
  double den = bf.abs().max().item<double>();
  return (af - bf).abs().max().item<double>() / (den > 0 ? den : 1.0);
}

inline void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what, double tol = 1e-4) {
  ASSERT_TRUE(got.defined()) << what << " missing";
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  double e = rel_err(got, want);
  EXPECT_LE(e, tol) << what << " relative error " << e;
}

}  // namespace dit_test
