#pragma once
// The capture recorder handed to attention modules (explicitly, no globals). A module knows its paper id
// (`down-level2-repeat0-vit-block0-cross`, `mid-vit-block3-self`, `vit-block13-cross`, `vit-block27`) and asks
// the recorder what to produce; the recorder writes batch-first tensors under `<id>-<tensor>` into a
// gb::Capture.
//
// Tensor suffixes (P-attn AttnStoreProcessor, spec §6.1), batch first:
//   map                 [B, H, Nq, Nk] softmax probabilities (self maps [B, 1, N, N] head mean when the spec says so)
//   q                   [B, C, r, r]   to_q output, tokens reshaped row-major to a square grid (reference feature)
//   special-value       [B, H, Nk, d]  values after the head split
//   special-post-value  [B, Nq, H*d]   P·V with heads merged, before to_out.0
//   special-weight      [B, Dout, H*d] to_out.0.weight (expanded over the batch, no copy)
// Only `map` needs the explicit-softmax (slow) path; the others come from the fused path as well.
#include "harness/core/capture.h"

#include <ATen/core/Tensor.h>

#include <optional>
#include <set>
#include <string>

namespace gb::bb {

struct AttentionWants {
  bool map = false;
  bool q = false;
  bool special_value = false;
  bool post_value = false;
  bool weight = false;
  bool any() const { return map || q || special_value || post_value || weight; }
  bool needs_probs() const { return map; }  // the explicit softmax is only needed to store P itself
};

class CaptureRecorder {
 public:
  // Tensors are stored in `store_dtype` when given (the paper stores fp16), else in the compute dtype.
  CaptureRecorder(const CaptureSpec& spec, Capture& out, std::optional<at::ScalarType> store_dtype = std::nullopt);
  // The recorder keeps a reference to the spec: a temporary would dangle (it silently recorded nothing).
  CaptureRecorder(CaptureSpec&&, Capture&, std::optional<at::ScalarType> = std::nullopt) = delete;

  AttentionWants wants(const std::string& block_id) const;
  bool wants_key(const std::string& key) const { return spec_.wants(key); }
  bool needs_slow_path(const std::string& block_id) const { return wants(block_id).needs_probs(); }
  bool self_map_head_mean() const { return spec_.self_map_head_mean; }
  bool cross_map_head_mean() const { return spec_.cross_map_head_mean; }

  // Stores `t` (batch first) under `key` if the spec asks for it (cast, made contiguous).
  void record(const std::string& key, const at::Tensor& t);
  // Stores an attention map [B, H, Nq, Nk] under `<block_id>-map`; a self block's map becomes its head mean
  // [B, 1, Nq, Nk] (computed in fp32) when the spec asks for head means, a cross block's its fp32 head average
  // (gb::head_average_maps) with cross_map_head_mean.
  void record_map(const std::string& block_id, const at::Tensor& probs);
  // [B, N, C] -> [B, C, r, r] under `<block_id>-q` (N must be a square).
  void record_tokens_as_grid(const std::string& key, const at::Tensor& tokens);
  // to_out.0.weight expanded to [B, Dout, Din].
  void record_weight(const std::string& key, const at::Tensor& weight, int64_t batch);

  // Requested keys that nothing recorded (a backbone turns these into one error).
  std::vector<std::string> unrecorded() const;
  // std::logic_error "<kind>: '<key>' was requested but not recorded" for the first such key (a backbone bug).
  void require_all_recorded(const std::string& kind) const;
  std::optional<at::ScalarType> store_dtype() const { return store_dtype_; }

 private:
  const CaptureSpec& spec_;
  Capture& out_;
  std::optional<at::ScalarType> store_dtype_;
};

// UserError listing every key of `spec` that `kind`'s list-layers does not have (`known`), with the hint.
void check_capture_keys(const CaptureSpec& spec, const std::set<std::string>& known, const std::string& kind);

// A backbone's denoise(): the spec's keys checked against `known` (check_capture_keys), then
// `forward(recorder, or nullptr when the spec is empty)` recording into `cap` (batch size `batch`), every asked key
// required recorded; returns what `forward` returns.
template <class Forward>
at::Tensor record_denoise(const CaptureSpec& spec, const std::set<std::string>& known, const std::string& kind,
                          std::optional<at::ScalarType> store_dtype, Capture& cap, int64_t batch, Forward&& forward) {
  check_capture_keys(spec, known, kind);
  CaptureRecorder rec(spec, cap, store_dtype);
  cap.batch_size = batch;
  at::Tensor out = forward(spec.empty() ? nullptr : &rec);
  rec.require_all_recorded(kind);
  return out;
}

}  // namespace gb::bb
