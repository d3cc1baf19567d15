#include "harness/core/backbone.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <stdexcept>

namespace gb {

namespace {

// `first` is sample 0's tensor with its batch dimension of 1; the stacked [B, ...] tensor, sample 0 filled in.
at::Tensor allocate_stacked(const at::Tensor& first, int64_t batch) {
  std::vector<int64_t> shape = first.sizes().vec();
  shape[0] = batch;
  if (first.stride(0) == 0) return first.expand(shape);  // shared by every sample (a resident weight)
  at::Tensor out = at::empty(shape, first.options());
  out.narrow(0, 0, 1).copy_(first);
  return out;
}

void check_one(const std::string& key, const at::Tensor& t) {
  if (t.dim() == 0 || t.size(0) != 1)
    throw std::logic_error("capture_each_sample: '" + key + "' has no batch dimension of 1");
}

void fill(std::map<std::string, at::Tensor>& stacked, const std::map<std::string, at::Tensor>& part, int64_t b,
          int64_t batch) {
  if (part.size() != stacked.size() && b > 0)
    throw std::logic_error("capture_each_sample: a sample captured other keys than the first");
  for (const auto& [key, t] : part) {
    check_one(key, t);
    if (b == 0) {
      stacked[key] = allocate_stacked(t, batch);
      continue;
    }
    const auto it = stacked.find(key);
    if (it == stacked.end()) throw std::logic_error("capture_each_sample: sample has an extra key '" + key + "'");
    if (it->second.stride(0) == 0) continue;  // an expanded resident weight: the same for every sample
    it->second.narrow(0, b, 1).copy_(t);
  }
}

}  // namespace

std::string image_id_of(const std::string& path) { return std::filesystem::path(path).filename().string(); }

Capture capture_each_sample(Backbone& backbone, const BackboneBatch& batch, const CaptureSpec& spec) {
  const int64_t n = batch.size();
  if (n <= 1) return backbone.capture(batch, spec);
  Capture out;
  out.batch_size = n;
  for (int64_t b = 0; b < n; ++b) {
    BackboneBatch one;
    one.images = {batch.images[b]};
    one.prompts = {batch.prompts[b]};
    one.ids = {batch.ids[b]};
    one.seed = batch.seed;
    Capture c = backbone.capture(one, spec);
    fill(out.tensors, c.tensors, b, n);
    fill(out.inputs, c.inputs, b, n);
    for (const auto& [stage, s] : c.stage_seconds) out.stage_seconds[stage] += s;
  }
  return out;
}

}  // namespace gb
