#include "harness/backbones/weights.h"

#include "harness/core/errors.h"
#include "harness/core/hash.h"
#include "harness/io/safetensors.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>

namespace gb::bb {

namespace fs = std::filesystem;

struct WeightStore::State {
  std::shared_ptr<const SafetensorsCheckpoint> ckpt;
  std::map<std::string, at::Tensor> memory;
  bool in_memory = false;
  bool generate = false;
  bool meta = false;
  uint64_t seed = 0;
  double init_std = 0.05;
  std::string origin;
  at::ScalarType dtype;
  at::Device device;
  std::set<std::string> requested;  // checkpoint keys consumed (after alias resolution)
  std::set<std::string> ignored;
  std::vector<std::string> ignored_prefixes;
  std::map<std::string, std::string> aliases;  // current -> legacy
  std::vector<std::string> missing;
  std::vector<std::string> misshaped;

  State(std::string o, at::ScalarType d, at::Device dev) : origin(std::move(o)), dtype(d), device(dev) {}

  bool contains(const std::string& k) const { return in_memory ? memory.count(k) != 0 : ckpt->contains(k); }
  std::vector<int64_t> shape(const std::string& k) const {
    return in_memory ? memory.at(k).sizes().vec() : ckpt->info(k).shape;
  }
  at::Tensor load(const std::string& k) const { return in_memory ? memory.at(k) : ckpt->load(k); }
  std::vector<std::string> keys() const {
    if (!in_memory) return ckpt->keys();
    std::vector<std::string> out;
    for (const auto& [k, v] : memory) out.push_back(k);
    return out;
  }
};

WeightStore::WeightStore(std::shared_ptr<const SafetensorsCheckpoint> ckpt, std::string origin, at::ScalarType dtype,
                         at::Device device)
    : state_(std::make_shared<State>(std::move(origin), dtype, device)) {
  state_->ckpt = std::move(ckpt);
}

WeightStore::WeightStore(std::map<std::string, at::Tensor> tensors, std::string origin, at::ScalarType dtype,
                         at::Device device)
    : state_(std::make_shared<State>(std::move(origin), dtype, device)) {
  state_->memory = std::move(tensors);
  state_->in_memory = true;
}

WeightStore WeightStore::random_init(uint64_t seed, double std, at::ScalarType dtype, at::Device device) {
  WeightStore ws(std::map<std::string, at::Tensor>{}, "random-init", dtype, device);
  ws.state_->generate = true;
  ws.state_->seed = seed;
  ws.state_->init_std = std;
  return ws;
}

WeightStore WeightStore::shape_only(at::ScalarType dtype) {
  WeightStore ws(std::map<std::string, at::Tensor>{}, "shape-only", dtype, at::Device(at::kMeta));
  ws.state_->generate = true;
  ws.state_->meta = true;
  return ws;
}

std::map<std::string, at::Tensor> WeightStore::tensors() const {
  if (!state_->in_memory) fail("WeightStore::tensors() needs an in-memory store ({})", state_->origin);
  return state_->memory;
}

WeightStore::WeightStore(std::shared_ptr<State> state, std::string prefix)
    : state_(std::move(state)), prefix_(std::move(prefix)) {}

std::string find_component_checkpoint(const std::string& root, const std::string& component,
                                      const std::string& variant) {
  const fs::path dir = fs::path(root) / component;
  if (!fs::is_directory(dir)) return "";
  // The requested variant first; without one, the plain files first and then the fp16 variant (users
  // download either).
  const std::string alt = variant.empty() ? "fp16" : variant;
  for (const char* stem : {"diffusion_pytorch_model", "model"}) {
    const std::string s = stem;
    const std::vector<std::string> with_variant{s + "." + alt + ".safetensors",
                                                s + ".safetensors.index." + alt + ".json",
                                                s + "." + alt + ".safetensors.index.json"};
    const std::vector<std::string> plain{s + ".safetensors", s + ".safetensors.index.json"};
    for (const auto* names : {variant.empty() ? &plain : &with_variant, variant.empty() ? &with_variant : &plain})
      for (const auto& name : *names)
        if (fs::is_regular_file(dir / name)) return (dir / name).string();
  }
  return "";
}

std::string component_checkpoint(const std::string& root, const std::string& component, const std::string& variant) {
  const fs::path dir = fs::path(root) / component;
  if (!fs::is_directory(dir)) fail_file(dir.string(), "checkpoint component folder not found");
  auto file = find_component_checkpoint(root, component, variant);
  if (file.empty())
    fail_file(dir.string(), "no safetensors weights (looked for {}{}.safetensors and its sharded index)",
              "diffusion_pytorch_model|model", variant.empty() ? "" : "[." + variant + "]");
  return file;
}

WeightStore WeightStore::open_component(const std::string& root, const std::string& component, at::ScalarType dtype,
                                        at::Device device, const std::string& variant) {
  const std::string file = component_checkpoint(root, component, variant);
  auto ckpt = std::make_shared<SafetensorsCheckpoint>(SafetensorsCheckpoint::open(file));
  return WeightStore(std::move(ckpt), file, dtype, device);
}

WeightStore WeightStore::sub(const std::string& prefix) const { return WeightStore(state_, prefix_ + prefix + "."); }

bool WeightStore::has(const std::string& name) const {
  std::string k = prefix_ + name;
  if (state_->contains(k)) return true;
  auto a = state_->aliases.find(k);
  return a != state_->aliases.end() && state_->contains(a->second);
}

std::vector<int64_t> WeightStore::shape_of(const std::string& name) const {
  std::string k = prefix_ + name;
  if (state_->contains(k)) return state_->shape(k);
  auto a = state_->aliases.find(k);
  if (a != state_->aliases.end() && state_->contains(a->second)) return state_->shape(a->second);
  fail_file(state_->origin, "no tensor '{}'", k);
}

std::vector<std::string> WeightStore::keys_with_prefix(const std::string& starts_with) const {
  std::string p = prefix_ + starts_with;
  std::vector<std::string> out;
  for (const auto& k : state_->keys())
    if (k.compare(0, p.size(), p) == 0) out.push_back(k);
  return out;
}

void WeightStore::ignore(const std::string& name) const { state_->ignored.insert(prefix_ + name); }
void WeightStore::ignore_prefix(const std::string& starts_with) const {
  state_->ignored_prefixes.push_back(prefix_ + starts_with);
}
void WeightStore::add_alias(const std::string& current, const std::string& legacy) const {
  state_->aliases[prefix_ + current] = prefix_ + legacy;
}

at::ScalarType WeightStore::dtype() const { return state_->dtype; }
at::Device WeightStore::device() const { return state_->device; }
const std::string& WeightStore::origin() const { return state_->origin; }

at::Tensor WeightStore::get(const std::string& name, const std::vector<int64_t>& shape) const {
  return fetch(name, shape, state_->dtype, false);
}
at::Tensor WeightStore::get_as(const std::string& name, const std::vector<int64_t>& shape, at::ScalarType dtype) const {
  return fetch(name, shape, dtype, false);
}
at::Tensor WeightStore::get_optional(const std::string& name, const std::vector<int64_t>& shape) const {
  return fetch(name, shape, state_->dtype, true);
}

at::Tensor WeightStore::fetch(const std::string& name, const std::vector<int64_t>& shape, at::ScalarType dtype,
                              bool optional) const {
  std::string k = prefix_ + name;
  std::string src = k;
  bool alias = false;
  if (state_->generate && !state_->contains(k) && !optional) {
    if (state_->meta) {
      state_->memory[k] = at::empty(shape, at::TensorOptions().dtype(dtype).device(at::kMeta));
    } else {
      // Seeded per key so that the values do not depend on construction order.
      const uint64_t h = fnv1a(k, state_->seed ^ kFnvOffset);
      auto gen = at::make_generator<at::CPUGeneratorImpl>(h);
      auto t = at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)) * state_->init_std;
      const bool norm_weight = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0 &&
                               (k.find("norm") != std::string::npos) && shape.size() == 1;
      if (norm_weight) t = t + 1.0;
      state_->memory[k] = t;
    }
  }
  if (!state_->contains(k)) {
    auto a = state_->aliases.find(k);
    if (a != state_->aliases.end() && state_->contains(a->second)) {
      src = a->second;
      alias = true;
    } else {
      if (optional) return at::Tensor();
      state_->missing.push_back(k + " " + shape_str(shape));
      return at::zeros(shape, at::TensorOptions().dtype(dtype).device(state_->device));
    }
  }
  state_->requested.insert(src);
  auto stored = state_->shape(src);
  bool shape_ok = shape.empty() || stored == shape;
  if (!shape_ok && alias) {
    // Legacy 1x1-conv attention weights [C, C, 1, 1] serve a Linear [C, C].
    auto squeezed = stored;
    while (squeezed.size() > shape.size() && squeezed.back() == 1) squeezed.pop_back();
    shape_ok = squeezed == shape;
  }
  if (!shape_ok) {
    state_->misshaped.push_back(src + " is " + shape_str(stored) + ", expected " + shape_str(shape));
    return at::zeros(shape, at::TensorOptions().dtype(dtype).device(state_->device));
  }
  at::Tensor t = state_->load(src);
  if (!shape.empty() && t.sizes().vec() != shape) t = t.reshape(shape);
  if (at::isFloatingType(t.scalar_type())) t = t.to(state_->device, dtype);
  else t = t.to(state_->device);
  return t.contiguous();
}

std::vector<std::string> WeightStore::problems() const {
  std::vector<std::string> out;
  for (const auto& m : state_->missing) out.push_back("missing " + m);
  for (const auto& m : state_->misshaped) out.push_back("mis-shaped " + m);
  for (const auto& k : state_->keys()) {
    if (state_->requested.count(k) || state_->ignored.count(k)) continue;
    bool skip = false;
    for (const auto& p : state_->ignored_prefixes)
      if (k.compare(0, p.size(), p) == 0) skip = true;
    if (!skip) out.push_back("unexpected " + k + " " + shape_str(state_->shape(k)));
  }
  return out;
}

void WeightStore::finish() const {
  auto probs = problems();
  if (probs.empty()) return;
  size_t unexpected = 0;
  for (const auto& p : probs) unexpected += p.rfind("unexpected ", 0) == 0;
  std::string list;  // the first few: a wrong component can miss hundreds of keys
  constexpr size_t kShown = 8;
  for (size_t i = 0; i < probs.size() && i < kShown; ++i) list += (list.empty() ? "" : "; ") + probs[i];
  if (probs.size() > kShown) list += fmt::format("; and {} more", probs.size() - kShown);
  fail_file(state_->origin, "{} missing, {} mis-shaped, {} unexpected keys: {}", state_->missing.size(),
            state_->misshaped.size(), unexpected, list);
}

}  // namespace gb::bb
