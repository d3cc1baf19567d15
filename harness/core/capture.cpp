#include "harness/core/capture.h"

#include "harness/core/errors.h"

#include <ATen/ATen.h>

namespace gb {

void CaptureSpec::merge(const CaptureSpec& other) {
  bool both_mean = self_map_head_mean && other.self_map_head_mean;
  if (keys.empty()) both_mean = other.self_map_head_mean;
  if (other.keys.empty()) both_mean = self_map_head_mean;
  keys.insert(other.keys.begin(), other.keys.end());
  self_map_head_mean = both_mean;
}

const at::Tensor& Capture::at(const std::string& key) const {
  auto it = tensors.find(key);
  if (it != tensors.end()) return it->second;
  std::string near;
  auto block = block_of(key);
  for (const auto& [k, v] : tensors) {
    if (k.rfind(block, 0) == 0) near += (near.empty() ? "" : ", ") + k;
  }
  fail("capture has no tensor '{}'{}", key, near.empty() ? std::string() : " (have: " + near + ")");
}

TensorMap Capture::sample(int64_t i, bool with_inputs) const {
  TensorMap out;
  for (const auto& [k, v] : tensors) out[k] = v.select(0, i);
  if (with_inputs) {
    for (const auto& [k, v] : inputs) out[k] = v.select(0, i);
  }
  return out;
}

Capture Capture::from_samples(const std::vector<TensorMap>& samples) {
  Capture c;
  c.batch_size = static_cast<int64_t>(samples.size());
  if (samples.empty()) return c;
  for (const auto& [k, v] : samples.front()) {
    std::vector<at::Tensor> parts;
    parts.reserve(samples.size());
    for (const auto& s : samples) {
      auto it = s.find(k);
      if (it == s.end()) fail("capture sample is missing '{}'", k);
      parts.push_back(it->second);
    }
    auto stacked = at::stack(parts, 0);
    if (k.rfind("input.", 0) == 0) {
      c.inputs[k] = stacked;
    } else {
      c.tensors[k] = stacked;
    }
  }
  return c;
}

std::string self_key_for_cross(const std::string& cross_map_key) {
  auto pos = cross_map_key.rfind("-cross-map");
  if (pos == std::string::npos || pos + 10 != cross_map_key.size()) {
    fail("'{}' is not a cross-map key (expected '<block>-cross-map')", cross_map_key);
  }
  return cross_map_key.substr(0, pos) + "-self-map";
}

std::string block_of(const std::string& key) {
  for (const char* marker : {"-cross", "-self", "-attn-out"}) {
    auto pos = key.rfind(marker);
    if (pos != std::string::npos) return key.substr(0, pos + std::string(marker).size());
  }
  return key;
}

}  // namespace gb
