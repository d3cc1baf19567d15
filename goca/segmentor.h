#pragma once
// The GoCA post-processing of one capture (spec goca-method.md §B–§E): head aggregation, layer
// aggregation, token merge + rescaling, background merge, self-attention aggregation and affinity
// propagation. Pure ATen, CPU or CUDA (follows the device of the inputs), fp32 math: captured
// fp16/bf16 tensors are cast to fp32 (see docs/method.md for what "faithful" means there).
#include <ATen/core/Tensor.h>

#include "goca/method_config.h"
#include "harness/core/capture.h"
#include "harness/core/token_groups.h"

#include <map>
#include <string>
#include <vector>

namespace gb::goca {

struct SegmentOutput {
  at::Tensor scores;           // [objects+1, S, S] (or [K+B, S, S] with keep_all_objects), after propagation
  at::Tensor pre_propagation;  // same shape, before it
  at::Tensor aggregated;       // [S, S, T], every pixel sums to 1 over all T tokens
  std::map<std::string, at::Tensor> head_weights;  // per cross-map key: [P, H] per-pixel head weights
  at::Tensor layer_weights;  // [L] normalised scalars, or [L, S, S] for vanilla (per pixel), `layers` order
};

// §B–§C of one sample: the head- and layer-aggregated cross attention, before any token selection.
struct Aggregation {
  at::Tensor maps;                                 // [T, S, S], every pixel sums to 1 over all T tokens
  std::map<std::string, at::Tensor> head_weights;  // per cross-map key: [P, H]
  at::Tensor layer_weights;                        // [L], or [L, S, S] for vanilla
};

class Segmentor {
 public:
  // Validates the config (gb::UserError on a bad one).
  explicit Segmentor(MethodConfig config);

  // `sample`: one sample's tensors with the batch dimension removed, keys as in harness/core/capture.h:
  //   <block>-cross-map [H, P, T], <block>-cross-special-value [H, T, d],
  //   <block>-cross-special-post-value [P, H*d], <block>-cross-special-weight [Dout, H*d],
  //   <block>-self-map [H, P, P] or [1, P, P] (head mean), ref_layer [C, r, r].
  // Throws gb::UserError naming the key on a missing key, wrong rank or mismatched H/P/T.
  // A layer without `-cross-special-value` is force-averaged (§B), as in the paper's code.
  SegmentOutput run(const gb::TensorMap& sample, const gb::TokenGroups& groups) const;

  // The first half of `run` (§B head and §C layer aggregation): what S-CFG reads for each CFG half.
  Aggregation aggregate(const gb::TensorMap& sample) const;
  // §E: the affinity A [S^2, S^2] that propagation multiplies by, the mean of the resized head-mean
  // `self_layers` maps of `sample`. gb::UserError when the config has no self_layers.
  at::Tensor affinity(const gb::TensorMap& sample) const;

  // Every sample of a batched capture (batch dimension first), one TokenGroups per sample.
  std::vector<SegmentOutput> run_batch(const gb::Capture& capture, const std::vector<gb::TokenGroups>& groups) const;

  // The keys `run` reads: the cross maps; for non-average head methods their special value, post value and
  // out-projection weight; for non-vanilla layer methods the self map of each cross block and `ref_layer`;
  // and the propagation self maps. self_map_head_mean = true (only head means of self maps are used).
  gb::CaptureSpec required_capture() const;

  const MethodConfig& config() const { return config_; }

 private:
  MethodConfig config_;
};

}  // namespace gb::goca
