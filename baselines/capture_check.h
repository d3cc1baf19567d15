#pragma once
// Validation of a capture dump against a method before anything runs (the `segment` command's contract):
// every tensor the method reads must be present, with the rank and the sizes that agree across keys.
// Works on shapes and dtypes only, so a safetensors file is checked from its header without loading data.
//
// Per cross layer L = "<block>-cross-map" (batch dimension removed):
//   L                              [H, P, T]     P a square, T the same for every layer
//   <block>-cross-special-value    [H, T, d]     optional (absent: heads force-averaged, spec §B); H and T as L's
//   <block>-cross-special-post-value [P, H*d]    required with the value (when the head method uses it)
//   <block>-cross-special-weight   [Dout, H*d]   idem
//   <block>-self-map               [h, P, P]     for non-vanilla layer methods (the layer target), P as L's
// ref_layer                        [C, r, r]     for non-vanilla layer methods
// each self_layers key             [h, Q, Q]     Q a square
// dtypes F16, BF16 or F32. Token ids of the token groups must be < T.
#include "goca/method_config.h"
#include "harness/core/token_groups.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gb::baselines {

struct TensorMeta {
  std::vector<int64_t> shape;
  std::string dtype;  // "F16", "BF16", "F32", ...
};
using CaptureMeta = std::map<std::string, TensorMeta>;

// The keys `method` reads from a dump that holds `present` (optional keys only when present).
std::vector<std::string> keys_to_load(const goca::MethodConfig& method, const CaptureMeta& present);

// Throws gb::UserError "<capture_source>: <key>: <problem>" (or "<tokens_source>: ..." for token ids).
// Returns T, the number of text tokens.
int64_t check_capture(const CaptureMeta& capture, const goca::MethodConfig& method, const gb::TokenGroups& groups,
                      const std::string& capture_source, const std::string& tokens_source);

}  // namespace gb::baselines
