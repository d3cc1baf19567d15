#include "harness/backbones/recorder.h"

#include "harness/core/errors.h"

#include <cmath>
#include <stdexcept>

namespace gb::bb {

void check_capture_keys(const CaptureSpec& spec, const std::set<std::string>& known, const std::string& kind) {
  std::vector<std::string> unknown;
  for (const auto& k : spec.keys)
    if (!known.count(k)) unknown.push_back(k);
  if (unknown.empty()) return;
  std::string list;  // a few of them: a method for a deeper checkpoint can name hundreds
  for (size_t i = 0; i < unknown.size() && i < 6; ++i) list += (list.empty() ? "" : ", ") + unknown[i];
  if (unknown.size() > 6) list += fmt::format(" and {} more", unknown.size() - 6);
  fail("{}: unknown capture keys: {} (see `goca-bench list-layers --backbone {}`)", kind, list, kind);
}

CaptureRecorder::CaptureRecorder(const CaptureSpec& spec, Capture& out, std::optional<at::ScalarType> store_dtype)
    : spec_(spec), out_(out), store_dtype_(store_dtype) {}

AttentionWants CaptureRecorder::wants(const std::string& block_id) const {
  AttentionWants w;
  if (spec_.empty() || block_id.empty()) return w;
  w.map = spec_.wants(capture_key(block_id, CaptureTensor::map));
  w.q = spec_.wants(capture_key(block_id, CaptureTensor::q));
  w.special_value = spec_.wants(capture_key(block_id, CaptureTensor::special_value));
  w.post_value = spec_.wants(capture_key(block_id, CaptureTensor::special_post_value));
  w.weight = spec_.wants(capture_key(block_id, CaptureTensor::special_weight));
  return w;
}

void CaptureRecorder::record(const std::string& key, const at::Tensor& t) {
  if (!spec_.wants(key)) return;
  at::Tensor v = t.detach();
  if (store_dtype_ && v.scalar_type() != *store_dtype_) v = v.to(*store_dtype_);
  out_.tensors[key] = v.contiguous();
}

void CaptureRecorder::record_map(const std::string& block_id, const at::Tensor& probs) {
  const std::string key = capture_key(block_id, CaptureTensor::map);
  if (!spec_.wants(key)) return;
  if (spec_.self_map_head_mean && is_self_block(block_id)) {
    at::Tensor m = probs.to(at::kFloat).mean(1, /*keepdim=*/true);
    at::ScalarType dt = store_dtype_ ? *store_dtype_ : probs.scalar_type();
    out_.tensors[key] = m.to(dt).contiguous();
    return;
  }
  if (spec_.cross_map_head_mean && !is_self_block(block_id)) {
    out_.tensors[key] = head_average_maps(probs.detach(), store_dtype_.value_or(probs.scalar_type()));
    return;
  }
  record(key, probs);
}

void CaptureRecorder::record_tokens_as_grid(const std::string& key, const at::Tensor& tokens) {
  if (!spec_.wants(key)) return;
  int64_t b = tokens.size(0), n = tokens.size(1), c = tokens.size(2);
  auto r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  if (r * r != n) fail("cannot store '{}' as a square grid: {} tokens", key, n);
  record(key, tokens.transpose(1, 2).reshape({b, c, r, r}));
}

void CaptureRecorder::record_weight(const std::string& key, const at::Tensor& weight, int64_t batch) {
  if (!spec_.wants(key)) return;
  at::Tensor w = weight.detach();
  if (store_dtype_ && w.scalar_type() != *store_dtype_) w = w.to(*store_dtype_);
  // Stride 0 over the batch at every batch size, batch 1 included: "the same for every sample" is then visible
  // to whoever stacks per-sample captures (gb::capture_each_sample keeps it an alias).
  out_.tensors[key] = w.as_strided({batch, w.size(0), w.size(1)}, {0, w.stride(0), w.stride(1)});
}

std::vector<std::string> CaptureRecorder::unrecorded() const {
  std::vector<std::string> out;
  for (const auto& k : spec_.keys)
    if (!out_.tensors.count(k)) out.push_back(k);
  return out;
}

void CaptureRecorder::require_all_recorded(const std::string& kind) const {
  const auto missing = unrecorded();
  if (!missing.empty())
    throw std::logic_error(fmt::format("{}: '{}' was requested but not recorded", kind, missing[0]));
}

}  // namespace gb::bb
