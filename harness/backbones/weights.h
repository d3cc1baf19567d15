#pragma once
// A weight store over a safetensors checkpoint whose hierarchical prefixes make module parameter names
// equal the checkpoint keys:
//
//   WeightStore ws = WeightStore::open(dir, "unet", dtype, device);     // or over a SafetensorsCheckpoint
//   auto blk = ws.sub("down_blocks.0").sub("resnets.1");                 // prefix "down_blocks.0.resnets.1."
//   at::Tensor w = blk.get("conv1.weight", {320, 320, 3, 3});            // key down_blocks.0.resnets.1.conv1.weight
//   ...build the whole model...
//   ws.finish();   // ONE UserError listing every missing, mis-shaped and unexpected key, or nothing
//
// Loading is strict: every key requested is recorded. A missing or mis-shaped key does not throw at once;
// get() returns a zero placeholder of the requested shape so the whole model is walked and finish() can
// report every problem together. Keys that the model deliberately does not use (the VAE decoder, CLIP's
// position_ids buffer) are declared with ignore_prefix()/ignore(). Floating tensors are converted to the
// store's dtype and device on load (get_as() overrides the dtype for one tensor).
//
// Legacy names: add_alias(current, legacy) lets a request for `current` be served by `legacy` when only
// the latter exists (diffusers' deprecated VAE attention names query/key/value/proj_attn, D-mu).
// Alias hits may drop trailing singleton dims (1x1-conv-shaped attention weights in very old files).
#include "harness/core/shape.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gb {
class SafetensorsCheckpoint;
}

namespace gb::bb {

class WeightStore {
 public:
  // Store over an opened checkpoint. `origin` names it in errors (a folder or file path).
  WeightStore(std::shared_ptr<const SafetensorsCheckpoint> ckpt, std::string origin, at::ScalarType dtype,
              at::Device device);
  // Store over in-memory tensors (tests, converted weights). `origin` names it in errors.
  WeightStore(std::map<std::string, at::Tensor> tensors, std::string origin, at::ScalarType dtype, at::Device device);
  // A generating store for tests and benchmarks: every requested key that does not exist yet is created with
  // seeded random values (norm weights ~1, everything else ~N(0, std)); tensors() returns them to be saved.
  static WeightStore random_init(uint64_t seed, double std, at::ScalarType dtype, at::Device device);
  // A shape-only store: every requested key gets an empty tensor on the meta device (no memory); used to check
  // full-size module graphs (key names, shapes, parameter counts) without weights.
  static WeightStore shape_only(at::ScalarType dtype = at::kFloat);
  std::map<std::string, at::Tensor> tensors() const;  // in-memory stores only
  // Opens <root>/<component>/ (diffusers layout) with the given variant ("" or "fp16"); falls back to the
  // variant-less file when the variant is absent (diffusers does the same with a warning).
  static WeightStore open_component(const std::string& root, const std::string& component, at::ScalarType dtype,
                                    at::Device device, const std::string& variant = "");

  // A view whose keys are prefixed with `prefix` + "." (shares the recording state).
  WeightStore sub(const std::string& prefix) const;
  const std::string& prefix() const { return prefix_; }
  std::string key(const std::string& name) const { return prefix_ + name; }

  // The tensor under prefix+name, checked against `shape` (empty shape = any), converted to the store's
  // dtype (floating tensors only) and device. Records problems instead of throwing (see finish()).
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape) const;
  // Same with an explicit dtype (e.g. keep a tensor in fp32).
  at::Tensor get_as(const std::string& name, const std::vector<int64_t>& shape, at::ScalarType dtype) const;
  // Undefined tensor when absent (not recorded as missing); shape-checked and recorded when present.
  at::Tensor get_optional(const std::string& name, const std::vector<int64_t>& shape) const;
  bool has(const std::string& name) const;
  // The shape stored under prefix+name (UserError naming the key when absent). For detection only.
  std::vector<int64_t> shape_of(const std::string& name) const;
  // Every checkpoint key that starts with prefix+`starts_with` (sorted, full keys).
  std::vector<std::string> keys_with_prefix(const std::string& starts_with = "") const;

  void ignore(const std::string& name) const;                // prefix+name may be present and is not used
  void ignore_prefix(const std::string& starts_with) const;  // every key starting with prefix+starts_with
  void add_alias(const std::string& current, const std::string& legacy) const;  // full names, prefix applied

  at::ScalarType dtype() const;
  at::Device device() const;
  const std::string& origin() const;

  // Throws one UserError "<origin>: N missing, M mis-shaped, K unexpected keys: ..." if anything went wrong.
  void finish() const;
  // The problems so far, one per line (empty when none); finish() throws with these.
  std::vector<std::string> problems() const;

 private:
  struct State;
  WeightStore(std::shared_ptr<State> state, std::string prefix);
  at::Tensor fetch(const std::string& name, const std::vector<int64_t>& shape, at::ScalarType dtype,
                   bool optional) const;
  std::shared_ptr<State> state_;
  std::string prefix_;
};

// The checkpoint file of <root>/<component>/ (diffusers layout): the one lookup that detection, loading and
// memory planning share. Per stem (diffusion_pytorch_model, then model): with a variant ("fp16") its files
// (<stem>.fp16.safetensors, <stem>.safetensors.index.fp16.json, <stem>.fp16.safetensors.index.json) and then the
// plain ones (<stem>.safetensors, <stem>.safetensors.index.json); without one the plain files first, then the
// fp16 variant's. find_: "" when the folder or the file is missing; component_checkpoint: UserError.
std::string find_component_checkpoint(const std::string& root, const std::string& component,
                                      const std::string& variant = "");
std::string component_checkpoint(const std::string& root, const std::string& component,
                                 const std::string& variant = "");

using gb::shape_str;  // harness/core/shape.h

// A module on a checkpoint component's weights: WeightStore::open_component, `make(store)` (returns the module),
// then finish() (strict: every tensor of the file used).
template <class Make>
auto load_component(const std::string& root, const std::string& component, at::ScalarType dtype, at::Device device,
                    const std::string& variant, Make&& make) {
  auto ws = WeightStore::open_component(root, component, dtype, device, variant);
  auto m = make(static_cast<const WeightStore&>(ws));
  ws.finish();
  return m;
}

}  // namespace gb::bb
