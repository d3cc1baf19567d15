#include "harness/backbones/factory.h"

#include "harness/backbones/json_config.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/backbones/pixart_backbone.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"
#include "harness/io/safetensors.h"

#include <algorithm>
#include <filesystem>

namespace gb::bb {

namespace fs = std::filesystem;

// ---- The registry: one line per kind. ----
const std::vector<BackboneKind>& backbone_kinds() {
  static const std::vector<BackboneKind> kinds = {
      sd15_backbone_kind(),
      sdxl_backbone_kind(),
      pixart_sigma_backbone_kind(),
      flux_backbone_kind(),
  };
  return kinds;
}

const BackboneKind& backbone_kind(const std::string& kind) {
  std::string known;
  for (const auto& k : backbone_kinds()) {
    if (k.kind == kind) return k;
    known += (known.empty() ? "" : ", ") + k.kind;
  }
  fail("unknown backbone '{}' (known: {})", kind, known);
}

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
    fail("fp16 on the CPU is not supported (LibTorch's CPU kernels lack fp16 layer_norm/conv); use bf16 or fp32 on "
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
  if (has_component(component)) {
    fs::path dir = fs::path(root_) / component;
    for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                             "diffusion_pytorch_model.fp16.safetensors",
                             "diffusion_pytorch_model.safetensors.index.fp16.json", "model.safetensors",
                             "model.safetensors.index.json", "model.fp16.safetensors",
                             "model.safetensors.index.fp16.json"}) {
      if (fs::is_regular_file(dir / name)) {
        k = SafetensorsCheckpoint::open((dir / name).string()).keys();
        break;
      }
    }
  }
  return keys_.emplace(component, std::move(k)).first->second;
}

bool CheckpointFolder::has_key(const std::string& component, const std::string& key) const {
  const auto& k = keys(component);
  return std::binary_search(k.begin(), k.end(), key);
}

std::string detect_backbone_kind(const std::string& folder) {
  CheckpointFolder f(folder);
  std::vector<const BackboneKind*> hits;
  for (const auto& k : backbone_kinds())
    if (k.detect_from_weights(f)) hits.push_back(&k);
  if (hits.empty())
    fail_file(folder, "cannot detect the backbone kind from the weights (no unet/ or transformer/ of a known kind)");
  if (hits.size() > 1) fail_file(folder, "weights match several backbone kinds ({}, {})", hits[0]->kind, hits[1]->kind);
  const auto& kind = *hits[0];
  auto cls = f.pipeline_class();
  if (!cls.empty() && std::find(kind.pipeline_classes.begin(), kind.pipeline_classes.end(), cls) ==
                          kind.pipeline_classes.end())
    fail_file((fs::path(folder) / "model_index.json").string(),
              "pipeline class '{}' disagrees with the weights, which are {}", cls, kind.kind);
  return kind.kind;
}

std::unique_ptr<Backbone> open_backbone(const std::string& folder, const BackboneOptions& options,
                                        const std::string& expected_kind) {
  auto kind = detect_backbone_kind(folder);
  if (!expected_kind.empty() && expected_kind != kind)
    fail_file(folder, "expected a {} checkpoint but the weights are {}", expected_kind, kind);
  return backbone_kind(kind).load(CheckpointFolder(folder), options);
}

}  // namespace gb::bb
