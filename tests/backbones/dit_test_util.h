#pragma once
// Shared helpers for the PixArt / Flux / SD3.5 / T5 tests: golden locations, the relative-error check, capture specs
// and the determinism / batch-independence check of a backbone.
#include "harness/backbones/pixart_transformer.h"
#include "harness/core/backbone.h"
#include "harness/core/capture.h"
#include "harness/io/safetensors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

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

// The capture keys a golden holds (its "capture.<key>" tensors), those `keep` accepts when given.
inline gb::CaptureSpec golden_capture_spec(const std::map<std::string, at::Tensor>& g,
                                           const std::function<bool(const std::string&)>& keep = nullptr) {
  gb::CaptureSpec spec;
  for (const auto& [k, v] : g)
    if (k.rfind("capture.", 0) == 0 && (!keep || keep(k.substr(8)))) spec.add(k.substr(8));
  return spec;
}

// Every key of `spec` in `cap` against the golden's capture.<key> (a special weight, which the golden holds once,
// expanded over the goldens' batch of 2); returns the worst relative error.
inline double expect_golden_captures(const gb::Capture& cap, const std::map<std::string, at::Tensor>& g,
                                     const gb::CaptureSpec& spec) {
  double worst = 0;
  for (const auto& k : spec.keys) {
    at::Tensor want = g.at("capture." + k);
    if (k.find("special-weight") != std::string::npos) want = want.unsqueeze(0).expand({2, want.size(0), want.size(1)});
    expect_close(cap.tensors.at(k), want, k);
    worst = std::max(worst, rel_err(cap.tensors.at(k), want));
  }
  return worst;
}

// A capture spec of `keys`, self maps stored as their head mean (what the methods read).
inline gb::CaptureSpec head_mean_spec(std::initializer_list<std::string> keys) {
  gb::CaptureSpec s;
  for (const auto& k : keys) s.add(k);
  s.self_map_head_mean = true;
  return s;
}

// A batch of prompts[0..n): image i is image(i), id <id_prefix><i>, noise seed `seed`.
inline gb::BackboneBatch prompt_batch(const std::vector<std::string>& prompts, int n,
                                      const std::function<at::Tensor(int)>& image, const std::string& id_prefix,
                                      uint64_t seed) {
  gb::BackboneBatch b;
  for (int i = 0; i < n; ++i) {
    b.images.push_back(image(i));
    b.prompts.push_back(prompts.at(static_cast<size_t>(i)));
    b.ids.push_back(id_prefix + std::to_string(i));
  }
  b.seed = seed;
  return b;
}

// Image `row` of `batch` alone: same id, prompt and seed.
inline gb::BackboneBatch one_image(const gb::BackboneBatch& batch, size_t row) {
  gb::BackboneBatch one;
  one.images = {batch.images[row]};
  one.prompts = {batch.prompts[row]};
  one.ids = {batch.ids[row]};
  one.seed = batch.seed;
  return one;
}

struct BatchAndSingle {
  gb::Capture batch, single;
};

// The backbone is seeded and deterministic (the batch twice gives equal captures) and batch-independent: image
// `row` captured alone equals row `row` of the batch (relative error 1e-5). Returns both captures.
inline BatchAndSingle expect_deterministic_and_batch_independent(gb::Backbone& bb, const gb::BackboneBatch& batch,
                                                                 const gb::CaptureSpec& spec, size_t row) {
  BatchAndSingle out;
  out.batch = bb.capture(batch, spec);
  const gb::Capture again = bb.capture(batch, spec);
  for (const auto& [k, v] : out.batch.tensors) EXPECT_TRUE(at::equal(v, again.tensors.at(k))) << k;
  out.single = bb.capture(one_image(batch, row), spec);
  const auto r = static_cast<int64_t>(row);
  for (const auto& [k, v] : out.single.tensors) expect_close(v[0], out.batch.tensors.at(k)[r], k, 1e-5);
  return out;
}

}  // namespace dit_test
