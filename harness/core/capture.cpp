#include "harness/core/capture.h"

#include "harness/core/errors.h"
#include "harness/core/strings.h"

#include <ATen/ATen.h>

namespace gb {

void CaptureSpec::merge(const CaptureSpec& other) {
  auto both = [&](bool mine, bool theirs) {
    if (keys.empty()) return theirs;
    if (other.keys.empty()) return mine;
    return mine && theirs;
  };
  const bool self_mean = both(self_map_head_mean, other.self_map_head_mean);
  const bool cross_mean = both(cross_map_head_mean, other.cross_map_head_mean);
  keys.insert(other.keys.begin(), other.keys.end());
  self_map_head_mean = self_mean;
  cross_map_head_mean = cross_mean;
}

at::Tensor head_weighted_sum(const at::Tensor& maps, const at::Tensor& weights) {
  if (maps.dim() != 3 || weights.dim() != 2 || weights.size(0) != maps.size(1) || weights.size(1) != maps.size(0))
    throw std::logic_error("head_weighted_sum: maps [H, P, T] and weights [P, H] do not match");
  const int64_t H = maps.size(0);
  const at::Tensor w = weights.scalar_type() == at::kFloat ? weights : weights.to(at::kFloat);
  at::Tensor acc = at::zeros({maps.size(1), maps.size(2)}, maps.options().dtype(at::kFloat));
  for (int64_t h = 0; h < H; ++h) {
    const at::Tensor m = maps[h].scalar_type() == at::kFloat ? maps[h] : maps[h].to(at::kFloat);
    acc.addcmul_(m, w.select(1, h).unsqueeze(1));
  }
  return acc;
}

at::Tensor head_average_weights(int64_t pixels, int64_t heads, const at::Tensor& like) {
  return at::full({pixels, heads}, 1.0f / static_cast<float>(heads), like.options().dtype(at::kFloat));
}

at::Tensor head_average_maps(const at::Tensor& maps, at::ScalarType store_dtype) {
  if (maps.dim() != 4) throw std::logic_error("head_average_maps: maps must be [B, H, P, T]");
  const at::Tensor stored = maps.scalar_type() == store_dtype ? maps : maps.to(store_dtype);
  const at::Tensor w = head_average_weights(maps.size(2), maps.size(1), maps);
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < maps.size(0); ++b) out.push_back(head_weighted_sum(stored[b], w).unsqueeze(0));
  return at::stack(out);
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

const char* to_string(CaptureTensor tensor) {
  switch (tensor) {
    case CaptureTensor::map: return "map";
    case CaptureTensor::q: return "q";
    case CaptureTensor::special_value: return "special-value";
    case CaptureTensor::special_post_value: return "special-post-value";
    case CaptureTensor::special_weight: return "special-weight";
  }
  return "?";
}

std::string attention_block(const std::string& location, AttentionKind kind) {
  return location + (kind == AttentionKind::self ? "-self" : "-cross");
}

bool is_self_block(const std::string& block) { return ends_with(block, "-self"); }

std::optional<AttentionBlockParts> parse_attention_block(const std::string& block) {
  for (auto kind : {AttentionKind::self, AttentionKind::cross}) {
    const std::string suffix = attention_block("", kind);
    if (ends_with(block, suffix) && block.size() > suffix.size())
      return AttentionBlockParts{block.substr(0, block.size() - suffix.size()), kind};
  }
  return std::nullopt;
}

std::string vit_block(int64_t index) { return "vit-block" + std::to_string(index); }

std::string capture_key(const std::string& block, CaptureTensor tensor) { return block + "-" + to_string(tensor); }

std::string attention_output_key(const std::string& location) { return location + "-attn-out"; }

std::optional<CaptureKeyParts> parse_capture_key(const std::string& key) {
  // Longest tensor names first: "-special-post-value" also ends in "-value".
  for (auto t : {CaptureTensor::special_post_value, CaptureTensor::special_value, CaptureTensor::special_weight,
                 CaptureTensor::map, CaptureTensor::q}) {
    const std::string suffix = std::string("-") + to_string(t);
    if (ends_with(key, suffix) && key.size() > suffix.size())
      return CaptureKeyParts{key.substr(0, key.size() - suffix.size()), t};
  }
  return std::nullopt;
}

std::string sibling_key(const std::string& key, CaptureTensor tensor) {
  if (auto parts = parse_capture_key(key)) return capture_key(parts->block, tensor);
  fail(
      "'{}' is not a capture key '<block>-<tensor>' (tensor: map, q, special-value, special-post-value, "
      "special-weight)",
      key);
}

std::string self_block_for_cross(const std::string& cross_block) {
  const auto block = parse_attention_block(cross_block);
  if (!block || block->kind != AttentionKind::cross)
    fail("'{}' is not a cross-attention block (expected '<location>-cross')", cross_block);
  return attention_block(block->location, AttentionKind::self);
}

std::string self_key_for_cross(const std::string& cross_map_key) {
  const auto parts = parse_capture_key(cross_map_key);
  const auto block = parts ? parse_attention_block(parts->block) : std::nullopt;
  if (!parts || parts->tensor != CaptureTensor::map || !block || block->kind != AttentionKind::cross)
    fail("'{}' is not a cross-map key (expected '<block>-cross-map')", cross_map_key);
  return capture_key(attention_block(block->location, AttentionKind::self), CaptureTensor::map);
}

std::string block_of(const std::string& key) {
  for (const char* marker : {"-cross", "-self", "-attn-out"}) {
    auto pos = key.rfind(marker);
    if (pos != std::string::npos) return key.substr(0, pos + std::string(marker).size());
  }
  return key;
}

std::string location_of(const std::string& key) {
  const std::string attn_out = attention_output_key("");
  if (ends_with(key, attn_out) && key.size() > attn_out.size()) return key.substr(0, key.size() - attn_out.size());
  if (const auto parts = parse_capture_key(key))
    if (const auto block = parse_attention_block(parts->block)) return block->location;
  return key;
}

}  // namespace gb
