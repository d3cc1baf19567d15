#pragma once
// Shared helpers for the PixArt / Flux / T5 tests: golden locations and the relative-error check.
#include "harness/backbones/pixart_transformer.h"
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

// The PixArt transformer's inputs without PixArt-Alpha's micro-conditions (resolution, aspect_ratio left undefined).
inline gb::bb::PixArtInputs pixart_inputs(const at::Tensor& latents, const at::Tensor& timestep,
                                          const at::Tensor& encoder_hidden_states,
                                          const at::Tensor& encoder_attention_mask) {
  gb::bb::PixArtInputs in;
  in.latents = latents;
  in.timestep = timestep;
  in.encoder_hidden_states = encoder_hidden_states;
  in.encoder_attention_mask = encoder_attention_mask;
  return in;
}

// The same from golden or captured tensors named input.latents, input.timestep, input.encoder_hidden_states and
// input.encoder_attention_mask.
inline gb::bb::PixArtInputs pixart_inputs(const std::map<std::string, at::Tensor>& g) {
  return pixart_inputs(g.at("input.latents"), g.at("input.timestep"), g.at("input.encoder_hidden_states"),
                       g.at("input.encoder_attention_mask"));
}

inline void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what, double tol = 1e-4) {
  ASSERT_TRUE(got.defined()) << what << " missing";
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  double e = rel_err(got, want);
  EXPECT_LE(e, tol) << what << " relative error " << e;
}

}  // namespace dit_test
