#pragma once
// The individual operations of the GoCA post-processing (spec goca-method.md §B–§E), as pure ATen
// functions. CPU or CUDA (they follow the device of their inputs); inputs of any floating dtype are cast
// to fp32 and every result is fp32. `Segmentor` (segmentor.h) composes them.
//
// Resizes are torch's F.interpolate(align_corners=False): `bilinear` = at::upsample_bilinear2d,
// `nearest` = at::upsample_nearest2d's index rule (src = min(floor(dst * in/out), in-1)).
#include <ATen/core/Tensor.h>

#include "goca/method_config.h"
#include "harness/core/token_groups.h"

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace gb::goca {

// x w^T for x [M, K], w [N, K] (fp32): oneDNN on CPU builds that have it, at::mm otherwise.
at::Tensor matmul_nt(const at::Tensor& x, const at::Tensor& w);

// ----- §B head aggregation ------------------------------------------------------------------------

// Largest finite value of `dtype` (65504 for Half): the ±inf replacement of torch.nan_to_num in the
// dtype the paper's code computes in (the capture dtype).
double max_finite(at::ScalarType dtype);

// Per-pixel head weights w[p, h], [P, H].
//   post_value [P, H*d] (Z), weight [Dout, H*d] (W, the out-projection as stored), value [H, T, d] (V; only
//   read by the VW methods). `capture_dtype` sets the nan_to_num bound of the per-head products o_h
//   (see max_finite). Average ignores the tensors except for P and the device.
at::Tensor head_weights(HeadMethod method, int64_t heads, const at::Tensor& post_value, const at::Tensor& weight,
                        const at::Tensor& value, at::ScalarType capture_dtype);
// 1/H everywhere, [P, H] (the `average` method and the force-average fallback).
at::Tensor average_head_weights(int64_t pixels, int64_t heads, const at::TensorOptions& options);
// sigma_h = largest singular value of nan_to_num(V_h W_h^T) (fp32), [H].
at::Tensor value_weight_sigma(const at::Tensor& value, const at::Tensor& weight, int64_t heads,
                              at::ScalarType capture_dtype);
// M(p, t) = sum_h w[p, h] A[h, p, t]: maps [H, P, T], weights [P, H] -> [P, T].
at::Tensor aggregate_heads(const at::Tensor& maps, const at::Tensor& weights);

// ----- resizing helpers ---------------------------------------------------------------------------

// Source index of torch 'nearest' for each of `out` destination positions, [out] int64.
at::Tensor nearest_source_indices(int64_t in, int64_t out, const at::Device& device);
// A pairwise map [s^2, s^2] (query x key) resized to [S^2, S^2]: key dims bilinear, query dims nearest.
at::Tensor resize_pairwise(const at::Tensor& pairwise, int64_t out_side);

// ----- §C layer aggregation -----------------------------------------------------------------------

// Reference pseudo self-attention R [r^2, r^2] from the reference feature [C, r, r].
//   Paper: channel 0 only, softmax_k(f_q f_k). Full: softmax(X X^T / sqrt(C)).
at::Tensor reference_attention(const at::Tensor& ref, RefMode mode);

// Scores one layer against R. `self_mean` is the head-mean self map of the layer's block [s^2, s^2]; it is
// resized to R's size (keys bilinear, queries nearest) without being renormalised (quirk Q2).
// Computes every layer's score against one R; caches the per-resolution pooling of R.
class LayerScorer {
 public:
  LayerScorer(at::Tensor reference_attention, LayerMethod method);
  at::Tensor score(const at::Tensor& self_mean) const;  // 0-dim fp32: omega_l (before normalisation)

 private:
  at::Tensor R_;
  int64_t r_;
  LayerMethod method_;
  // per self-map side s: (distinct source rows, R's rows summed by source row), dot-product similarity only
  mutable std::map<int64_t, std::pair<at::Tensor, at::Tensor>> pooled_;
};

// omega_hat = max(omega, 0) / sum max(omega, 0), [L] (NaN when every score is <= 0).
at::Tensor normalise_layer_weights(const std::vector<at::Tensor>& scores);

// A_bar = clamp(sum_l w_l U_l, 0) / sum_t (.) where U_l = bilinear resize of maps[l] ([P_l, T], P_l = s_l^2)
// to S x S. Returns [T, S, S] (channel-first; permute(1, 2, 0) gives the paper's [S, S, T]).
at::Tensor combine_layers(const std::vector<at::Tensor>& maps, const at::Tensor& layer_weights, int64_t out_side);

// ----- §D tokens, rescaling, background -----------------------------------------------------------

// Channels [K + B + 1, S, S] from A_bar [T, S, S]: objects, background objects (mean or sum over their
// tokens; an empty list gives NaN under mean), then rho = sum over the rescaling tokens.
// Throws gb::UserError for a token id outside [0, T).
at::Tensor token_channels(const at::Tensor& aggregated_tss, const gb::TokenGroups& groups, MultiToken mode);

// torchvision gaussian_blur(kernel_size=5) (sigma 1.1, reflect padding) on [C, S, S].
at::Tensor gaussian_blur5(const at::Tensor& maps);
// Per-map (x - min) / (max - min) over space, [C, S, S].
at::Tensor minmax(const at::Tensor& maps);
// Applies a rescale method to channels [C, S, S] whose last channel is rho; returns the first C-1 channels.
at::Tensor rescale(const at::Tensor& channels, RescaleMethod method);
// [K + B, S, S] -> [K + 1, S, S]: objects, then the max over the B background maps (zeros when B = 0).
at::Tensor merge_background(const at::Tensor& maps, int64_t objects);

// ----- §E self-attention aggregation and propagation ----------------------------------------------

// Mean over layers of the resized head-mean self maps ([s^2, s^2] each) -> [S^2, S^2].
at::Tensor aggregate_self(const std::vector<at::Tensor>& self_means, int64_t out_side);
// The paper's `affinity`: sets aside an all-zero last map, m <- A^n m (n mat-mat products with the
// [S^2, N] stack of maps, A never powered), per-map MinMax, re-appends the zero map. maps [N, S, S].
at::Tensor propagate(const at::Tensor& maps, const at::Tensor& affinity, int64_t order);

}  // namespace gb::goca
