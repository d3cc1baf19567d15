#pragma once
// What every backbone is opened with: BackboneOptions (the common options; one reader for experiment YAML and
// CLI flags, registry.h) and CheckpointFolder (a diffusers-layout folder: model_index.json, unet/ or
// transformer/, vae/, text_encoder*/, tokenizer*/, scheduler/). The kinds, their detection from the weights
// and opening a folder are in registry.h.
#include "harness/core/backbone.h"
#include "harness/core/trace.h"

#include <ATen/core/Tensor.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gb::bb {

// Where the text encoders of pixart-sigma and flux (T5 v1.1 XXL, 4.8 G parameters; Flux's CLIP too) live once
// the prompts are encoded. The captures are the same in every mode.
//   keep     resident on the device (default);
//   offload  parked in host memory (pinned on CUDA), copied to the device for each encode and dropped after;
//   free     released once the prompts are encoded: after Backbone::prepare_prompts (the runner pre-encodes a
//            run's prompts, kept in host memory), or after the first capture's encode (`goca-bench capture`).
enum class TextEncoderResidency { keep, offload, free };
TextEncoderResidency parse_text_encoder_residency(const std::string& s);  // UserError naming the three
std::string to_string(TextEncoderResidency r);

struct BackboneOptions {
  std::string device = "cpu";                      // "cpu", "cuda", "cuda:1"
  std::optional<at::ScalarType> dtype;             // default: the paper's dtype on CUDA, fp32 on CPU
  std::optional<int64_t> image_size;               // default: the paper's (SD1.5 512, SDXL/PixArt/Flux 1024)
  std::optional<int64_t> timestep;                 // the paper's t (default: 100 for the UNets, 150 for Flux)
  std::optional<at::ScalarType> store_dtype;       // captured tensors' dtype (default: the compute dtype)
  std::string variant;                             // weight variant ("fp16"); "" = plain files, else fp16 files
  std::shared_ptr<const TextTokenizer> tokenizer;  // overrides the folder's tokenizer (tests)
  bool skip_tail = true;                           // stop the denoiser once every requested tensor is captured
  TextEncoderResidency text_encoder = TextEncoderResidency::keep;  // pixart-sigma, flux (sd15/sdxl: keep only)
  // Flux's T5 in LLM.int8 (bitsandbytes load_in_8bit, outlier threshold 6, `wo` unquantized) as the paper ran it.
  // Default: on when the compute dtype is 16-bit, off in fp32 (the parity tests). Flux only.
  std::optional<bool> t5_int8;
  uint64_t seed = 0;  // a generated backbone's world seed (synthetic: the run's noise seed)
  // A kind's own options (BackboneKind::params) as YAML text, checked against its schema when read.
  std::map<std::string, std::string> params;

  at::Device torch_device() const;  // UserError for a malformed device or CUDA without a CUDA build
  at::ScalarType resolve_dtype(at::ScalarType paper_gpu_dtype) const;
};

// The compute/store dtypes the backbones run in: "fp32"|"float32", "fp16"|"float16", "bf16"|"bfloat16".
const std::vector<std::pair<std::string, at::ScalarType>>& dtype_names();
at::ScalarType parse_dtype(const std::string& name);  // UserError naming the three
std::string dtype_name(at::ScalarType t);             // "fp32", "fp16", "bf16"

// What detectors see of a folder (cheap: headers only).
class CheckpointFolder {
 public:
  explicit CheckpointFolder(std::string root);  // UserError when it is not a folder
  const std::string& root() const { return root_; }
  // <root>/<component>/<name>; UserError naming the path when it is not a file.
  std::string file(const std::string& component, const std::string& name = "config.json") const;
  bool has_component(const std::string& name) const;  // sub-folder exists
  std::string pipeline_class() const;                 // model_index.json "_class_name" ("" when absent)
  // Tensor names of a component's checkpoint (plain or fp16 variant, sharded or not); empty when none.
  const std::vector<std::string>& keys(const std::string& component) const;
  bool has_key(const std::string& component, const std::string& key) const;
  // The tensor's shape (from the header); empty when the key is absent.
  std::vector<int64_t> shape(const std::string& component, const std::string& key) const;

 private:
  std::string root_;
  mutable std::map<std::string, std::vector<std::string>> keys_;
  mutable std::map<std::string, std::map<std::string, std::vector<int64_t>>> shapes_;
};

// <root>/<component>/<name> of a checkpoint folder; UserError naming the path when it is not a file.
std::string component_file(const std::string& root, const std::string& component,
                           const std::string& name = "config.json");
// Seconds since t0, after waiting for `device` (stage timings of a capture).
double seconds_since(std::chrono::steady_clock::time_point t0, const at::Device& device);
// `stage()` run as one stage of a capture: inside the trace span `name`, timed on `device` (seconds_since);
// returns {what stage() returns, seconds}.
template <class Stage>
auto timed_stage(const char* name, const at::Device& device, Stage&& stage) {
  const auto t0 = std::chrono::steady_clock::now();
  gb::trace::Span span(name);
  auto out = stage();
  const double seconds = seconds_since(t0, device);
  span.end();
  return std::make_pair(std::move(out), seconds);
}
// UserError unless the batch has one prompt per image and at least one image ("<kind>: empty batch").
void check_batch(const BackboneBatch& batch, const std::string& kind);

}  // namespace gb::bb
