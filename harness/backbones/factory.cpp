#include "harness/backbones/factory.h"

#include "harness/backbones/json_config.h"
#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"
#include "harness/io/safetensors.h"

#include <algorithm>
#include <filesystem>

namespace gb::bb {

namespace fs = std::filesystem;

std::string component_file(const std::string& root, const std::string& component, const std::string& name) {
  auto p = fs::path(root) / component / name;
  if (!fs::is_regular_file(p)) fail_file(p.string(), "missing (a diffusers-layout folder has one per component)");
  return p.string();
}

std::string CheckpointFolder::file(const std::string& component, const std::string& name) const {
  return component_file(root_, component, name);
}

double seconds_since(std::chrono::steady_clock::time_point t0, const at::Device& device) {
  if (device.is_cuda()) compat::cuda_synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const std::vector<std::pair<std::string, at::ScalarType>>& dtype_names() {
  static const std::vector<std::pair<std::string, at::ScalarType>> names = {
      {"fp32", at::kFloat},   {"float32", at::kFloat}, {"fp16", at::kHalf},
      {"float16", at::kHalf}, {"bf16", at::kBFloat16}, {"bfloat16", at::kBFloat16}};
  return names;
}

at::ScalarType parse_dtype(const std::string& name) {
  for (const auto& [n, t] : dtype_names())
    if (n == name) return t;
  fail("unknown dtype '{}' (fp32, fp16, bf16)", name);
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "fp32";
    case at::kHalf: return "fp16";
    case at::kBFloat16: return "bf16";
    default: return c10::toString(t);
  }
}

TextEncoderResidency parse_text_encoder_residency(const std::string& s) {
  if (s == "keep") return TextEncoderResidency::keep;
  if (s == "offload") return TextEncoderResidency::offload;
  if (s == "free") return TextEncoderResidency::free;
  fail("text_encoder must be keep, offload or free, not '{}'", s);
}

std::string to_string(TextEncoderResidency r) {
  switch (r) {
    case TextEncoderResidency::keep: return "keep";
    case TextEncoderResidency::offload: return "offload";
    case TextEncoderResidency::free: return "free";
  }
  return "?";
}

at::Device BackboneOptions::torch_device() const {
  at::Device d(at::kCPU);
  try {
    d = at::Device(device);
  } catch (const std::exception&) {
    fail("malformed device '{}' (cpu, cuda, cuda:N)", device);
  }
  if (d.is_cuda() && !compat::cuda_compiled()) fail("device '{}' requested but this build has no CUDA", device);
  if (d.is_cuda() && !compat::cuda_available()) fail("device '{}' requested but no CUDA device is visible", device);
  if (!d.is_cuda() && !d.is_cpu()) fail("device '{}' is not supported (cpu, cuda)", device);
  return d;
}

at::ScalarType BackboneOptions::resolve_dtype(at::ScalarType paper_gpu_dtype) const {
  const bool cuda = torch_device().is_cuda();
  if (dtype && *dtype == at::kHalf && !cuda)
    fail(
        "fp16 on the CPU is not supported (LibTorch's CPU kernels lack fp16 layer_norm/conv); use bf16 or fp32 on "
        "the CPU, or --device cuda");
  if (dtype) return *dtype;
  return cuda ? paper_gpu_dtype : at::kFloat;
}

CheckpointFolder::CheckpointFolder(std::string root) : root_(std::move(root)) {
  if (!fs::is_directory(root_)) fail_file(root_, "not a checkpoint folder (expected a diffusers-layout directory)");
}

bool CheckpointFolder::has_component(const std::string& name) const { return fs::is_directory(fs::path(root_) / name); }

std::string CheckpointFolder::pipeline_class() const {
  auto p = fs::path(root_) / "model_index.json";
  if (!fs::is_regular_file(p)) return "";
  auto j = read_json_file(p.string());
  return j.value("_class_name", std::string());
}

const std::vector<std::string>& CheckpointFolder::keys(const std::string& component) const {
  auto it = keys_.find(component);
  if (it != keys_.end()) return it->second;
  std::vector<std::string> k;
  const std::string file = find_component_checkpoint(root_, component);
  if (!file.empty()) {
    auto ckpt = SafetensorsCheckpoint::open(file);
    k = ckpt.keys();
    auto& shapes = shapes_[component];
    for (const auto& key : k) shapes[key] = ckpt.info(key).shape;
  }
  return keys_.emplace(component, std::move(k)).first->second;
}

bool CheckpointFolder::has_key(const std::string& component, const std::string& key) const {
  const auto& k = keys(component);
  return std::binary_search(k.begin(), k.end(), key);
}

std::vector<int64_t> CheckpointFolder::shape(const std::string& component, const std::string& key) const {
  keys(component);
  auto c = shapes_.find(component);
  if (c == shapes_.end()) return {};
  auto it = c->second.find(key);
  return it == c->second.end() ? std::vector<int64_t>{} : it->second;
}

void check_batch(const BackboneBatch& batch, const std::string& kind) {
  if (batch.prompts.size() != batch.images.size())
    fail("batch has {} images but {} prompts", batch.images.size(), batch.prompts.size());
  if (batch.images.empty()) fail("{}: empty batch", kind);
}

}  // namespace gb::bb
