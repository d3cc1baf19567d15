#pragma once
// What a backbone records in its one forward pass, and what a run asks it to record.
//
// Keys follow the paper's names: `<block id>-<tensor>` with block ids such as
// `down-level2-repeat0-vit-block0-cross`, `mid-vit-block0-self`, `up-level2-repeat1-vit-block0-cross`
// (UNets), `vit-block13-cross` (PixArt) or `vit-block27` (Flux), and tensors:
//   <cross block>-map                 [B, H, P, T]   per-head softmax cross-attention
//   <cross block>-special-value       [B, H, T, d]   per-head text values
//   <cross block>-special-post-value  [B, P, H*d]    attention output before to_out[0]
//   <cross block>-special-weight      [B, Dout, H*d] to_out[0].weight (same for every sample; expanded, no copy)
//   <cross block>-map                 [B, 1, P, T]   fp32 head average instead, when cross_map_head_mean
//   <self block>-map                  [B, H, P, P]   per-head self-attention (or [B, 1, P, P] head mean)
//   <cross block>-q                   [B, C, r, r]   reference feature (Flux: `vit-block27-attn-out`)
// Batch dimension first everywhere. `sample(i)` drops it (the `segment` dump layout).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace gb {

struct CaptureSpec {
  std::set<std::string> keys;       // exact tensor keys wanted
  bool self_map_head_mean = false;  // store self maps as their head mean [B, 1, P, P] (all the methods use)
  // Store cross maps as their fp32 head average [B, 1, P, T] (head_method: average needs nothing else). It is
  // computed by head_weighted_sum from the maps as they would have been stored (store dtype), so a method
  // gets bit for bit what it would compute from the per-head maps, at 1/H of the memory (4/(H·2) in 16-bit).
  bool cross_map_head_mean = false;

  void add(const std::string& key) { keys.insert(key); }
  bool wants(const std::string& key) const { return keys.count(key) != 0; }
  bool empty() const { return keys.empty(); }
  void merge(const CaptureSpec& other);  // union; a head mean only if both ask for it
};

using TensorMap = std::map<std::string, at::Tensor>;

// M[p, t] = sum_h w[p, h] maps[h, p, t] in fp32, heads in order: maps [H, P, T], weights [P, H] -> [P, T].
// The methods' head aggregation and the recorders' cross-map head means both call this, so they agree exactly.
at::Tensor head_weighted_sum(const at::Tensor& maps, const at::Tensor& weights);
// 1/H (fp32) everywhere, [P, H] on `like`'s device.
at::Tensor head_average_weights(int64_t pixels, int64_t heads, const at::Tensor& like);
// [B, H, P, T] maps as stored (cast to `store_dtype` first) -> their head average [B, 1, P, T] in fp32.
at::Tensor head_average_maps(const at::Tensor& maps, at::ScalarType store_dtype);

struct Capture {
  TensorMap tensors;                            // batch dimension first
  std::map<std::string, at::Tensor> inputs;     // `input.*` denoiser inputs (latents, timestep, ...), batch first
  std::map<std::string, double> stage_seconds;  // "text", "vae", "denoiser", ... for profiling
  int64_t batch_size = 0;

  bool has(const std::string& key) const { return tensors.count(key) != 0; }
  // Throws UserError naming the key and listing near keys when absent.
  const at::Tensor& at(const std::string& key) const;
  // Sample i without the batch dimension (views, no copies); inputs included under their `input.*` names
  // when `with_inputs`.
  TensorMap sample(int64_t i, bool with_inputs = false) const;
  // Stacks single-sample maps back into a batch (inverse of sample()).
  static Capture from_samples(const std::vector<TensorMap>& samples);
};

// ---- The key grammar: the one builder and parser of capture keys (no string surgery elsewhere). ----
enum class AttentionKind { self, cross };
enum class CaptureTensor { map, q, special_value, special_post_value, special_weight };
const char* to_string(CaptureTensor tensor);  // "map", "q", "special-value", "special-post-value", "special-weight"
// An attention block: "<location>-self" / "<location>-cross" (location: "up-level2-repeat1-vit-block0", "vit-block13").
std::string attention_block(const std::string& location, AttentionKind kind);
bool is_self_block(const std::string& block);  // ends with "-self"
// "<location>-self" / "<location>-cross" taken apart; nullopt for any other block (or an empty location).
struct AttentionBlockParts {
  std::string location;
  AttentionKind kind;
};
std::optional<AttentionBlockParts> parse_attention_block(const std::string& block);
// The transformer backbones' block location: "vit-block<index>".
std::string vit_block(int64_t index);
// "<block>-<tensor>", e.g. "vit-block13-cross-map".
std::string capture_key(const std::string& block, CaptureTensor tensor);
// Flux's reference feature: "<location>-attn-out".
std::string attention_output_key(const std::string& location);
// "<block>-<tensor>" taken apart; nullopt for keys outside that grammar (Flux's "-attn-out").
struct CaptureKeyParts {
  std::string block;
  CaptureTensor tensor;
};
std::optional<CaptureKeyParts> parse_capture_key(const std::string& key);
// The same block's other tensor ("...-cross-map" -> "...-cross-special-value", the paper's l.replace('map', ...));
// UserError when `key` is not "<block>-<tensor>".
std::string sibling_key(const std::string& key, CaptureTensor tensor);
std::string self_block_for_cross(const std::string& cross_block);  // "...-cross" -> "...-self"
std::string self_key_for_cross(const std::string& cross_map_key);  // "...-cross-map" -> "...-self-map"
std::string block_of(const std::string& key);                      // "...-cross-map" -> "...-cross"
// The location a key belongs to: "<location>-self|cross-<tensor>" and "<location>-attn-out" -> "<location>"
// (the joint-attention memory units); any other key unchanged.
std::string location_of(const std::string& key);

}  // namespace gb
