#pragma once
// Device-memory planner for one capture pass (`goca-bench memory`, docs/memory.md).
//
// What is EXACT (tested against real loads and captures on tiny random-weight folders, tests/backbones):
//   - weight bytes per component: each component's module graph is built on shape-only (meta) tensors from
//     the default full-size configs or the folder's config.json files (then checked against the folder's
//     safetensors headers like a strict load, without reading data), in the dtypes the backbone loads
//     (e.g. SDXL/PixArt VAE fp32, T5 `wo` fp32), so the bytes are those the loader keeps resident;
//     with T5 int8 (Flux), q/k/v/o/wi_0/wi_1 count 1 byte per weight + one fp32 scale per output row.
//   - captured bytes per key: list_layers shapes × batch × store dtype, self maps as head means when the
//     spec says so, `special-weight` aliasing the resident weight (0 new bytes) unless cast to another
//     store dtype, Flux's batch-1 `special-post-value` a view that keeps the whole joint [1, S, C] output.
// What is MODELLED (read from the forward code, not measured on CUDA): the transient working set of each
// phase (text encode, VAE encode, denoiser) — the tensors alive at the peak of the largest step, counted as
// the CUDA caching allocator's allocated bytes (no fragmentation/reserve, no cuBLAS/cuDNN workspaces, no
// CUDA context). Wherever the code calls compat::scaled_dot_product_attention the plan follows the kernel
// LibTorch picks on the planned device for that dtype, head size and mask (compat::sdpa_fused): fused (no score
// matrix) or the math path (scores and softmax materialised), the VAE's mid-block attention included.
//
// plan_memory is a driver: what differs between backbones is each kind's MemoryModel (below), kept beside its
// model (sd_memory.cpp, pixart_memory.cpp, flux_memory.cpp) and returned by its registry entry (registry.h); the
// shared pieces they are built from (attention, T5/CLIP, VAE working sets, weight counting) are in
// memory_parts.h.
#include "harness/backbones/factory.h"
#include "harness/core/capture.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

struct ComponentWeights {
  std::string name;     // "unet", "transformer", "vae", "text_encoder", "text_encoder_2"
  std::string storage;  // e.g. "fp16", "fp32", "bf16 (wo fp32)", "int8 (+fp32 row scales; wo fp32)"
  int64_t params = 0;
  int64_t bytes = 0;
  bool text_encoder = false;  // freed under text_encoder: free (T5, Flux's CLIP)
  bool t5 = false;            // T5: also parked in host memory under text_encoder: offload
};

// A model that is not a backbone component, loaded in fp32 from one .safetensors file: every tensor of its header
// (UserError for a bad file). An upper bound where the loader skips a tensor (Inception's 1008-way classifier).
ComponentWeights fp32_component(const std::string& name, const std::string& safetensors_path);

struct MemoryPlanOptions {
  std::string kind;                           // a registered kind with a memory model
  std::string device = "cuda";                // the device planned for (its attention kernels)
  std::optional<std::string> folder;          // checkpoint folder (configs); default: full-size configs
  std::optional<at::ScalarType> dtype;        // default: the paper's GPU dtype
  std::optional<at::ScalarType> store_dtype;  // default: the compute dtype
  std::optional<int64_t> image_size;          // default: the paper's
  TextEncoderResidency text_encoder = TextEncoderResidency::keep;
  std::optional<bool> t5_int8;         // flux only; default: on for 16-bit compute
  std::optional<int64_t> text_length;  // tokens the prompts are padded to (default: the pipeline's)
  CaptureSpec spec;
  // The batch goes through the backbone one sample at a time (gb::capture_each_sample, a run's
  // `batch_invariant: true`): every phase is batch 1's, with the batch's stacked captures alive beside it.
  bool per_sample_forward = false;
  // Other models resident on the device through every phase (a generation run's FID Inception and CLIP scorer),
  // listed with the backbone's components.
  std::vector<ComponentWeights> resident_models;
};

struct MemoryTerm {
  std::string name;
  int64_t bytes = 0;
};

// One phase of the pass and what is alive at its peak.
struct MemoryPhase {
  std::string name;                   // "text", "vae", "denoiser"
  int64_t weights = 0;                // resident weights during the phase
  int64_t captures = 0;               // captured tensors alive at the phase's peak
  std::vector<MemoryTerm> transient;  // modelled working set at the peak (largest first)
  std::string at;                     // where the peak is (e.g. "vit-block56 attention")
  int64_t transient_bytes() const;
  int64_t total() const { return weights + captures + transient_bytes(); }
};

struct CaptureBytes {
  std::string key;
  std::vector<int64_t> shape;         // stored shape with the batch dimension
  int64_t bytes = 0;                  // new device bytes (0 for a special-weight alias)
  at::ScalarType dtype = at::kFloat;  // stored dtype (the store dtype; fp32 for cross-map head averages)
};

struct MemoryPlan {
  std::string kind;
  int64_t batch_size = 1;
  int64_t image_size = 0;
  at::ScalarType dtype = at::kFloat, store_dtype = at::kFloat, vae_dtype = at::kFloat;
  TextEncoderResidency text_encoder = TextEncoderResidency::keep;
  bool t5_int8 = false;
  std::vector<ComponentWeights> weights;
  std::vector<CaptureBytes> captures;
  std::vector<MemoryPhase> phases;  // text, vae, denoiser

  int64_t weight_bytes() const;
  int64_t capture_bytes() const;
  const MemoryPhase& peak_phase() const;
  int64_t peak() const { return peak_phase().total(); }
};

// Attention units of the denoiser in forward order, each with its transient at its peak (captures of earlier
// units are alive meanwhile).
struct MemoryUnit {
  std::string id;  // the unit the capture keys belong to (MemoryModel::unit_of_key)
  std::vector<MemoryTerm> transient;
};

// What the planner asks a backbone kind. One per kind, built from the full-size configs or a folder's.
class MemoryModel {
 public:
  virtual ~MemoryModel() = default;
  // The device planned for: which attention kernel each compat::scaled_dot_product_attention call runs.
  void set_device(const std::string& device) { device_ = device; }
  const std::string& device() const { return device_; }
  // Resident weights per component in load order; with a folder each component is first checked against its
  // checkpoint headers (meta tensors, strict like a load).
  virtual std::vector<ComponentWeights> weights(at::ScalarType dtype, bool t5_int8) const = 0;
  virtual at::ScalarType vae_dtype(at::ScalarType dtype) const { return dtype; }
  // Whether T5 runs in LLM.int8 for `asked` (the option) at `dtype`; false for kinds without the option.
  virtual bool t5_int8(std::optional<bool> asked, at::ScalarType dtype) const { return false; }
  virtual int64_t size_multiple() const = 0;  // the image side must be a positive multiple of it
  // Tokens the prompts are padded to; set_text_length is refused (UserError) where it is fixed by the config.
  virtual int64_t text_length() const = 0;
  virtual void set_text_length(int64_t n) = 0;
  virtual MemoryPhase text_phase(int64_t batch, at::ScalarType dtype, bool t5_int8) const = 0;
  virtual MemoryPhase vae_phase(int64_t batch, int64_t size, at::ScalarType vae_dtype, at::ScalarType dtype) const = 0;
  virtual std::vector<MemoryUnit> denoiser_units(const std::vector<LayerInfo>& layers, const CaptureSpec& spec,
                                                 int64_t batch, int64_t size, at::ScalarType dtype,
                                                 at::ScalarType store) const = 0;
  // Tensors alive through the whole denoiser pass (inputs, skip connections).
  virtual std::vector<MemoryTerm> denoiser_persistent(int64_t batch, int64_t size, at::ScalarType dtype) const = 0;
  virtual std::string unit_of_key(const std::string& key) const;  // default: block_of(key)
  // New device bytes of one stored capture when they differ from its shape x dtype (a view keeping a larger
  // buffer); `bytes` is the default count.
  virtual int64_t stored_bytes(const LayerInfo& layer, const std::vector<LayerInfo>& layers, int64_t batch,
                               at::ScalarType store, at::ScalarType dtype, int64_t bytes) const {
    return bytes;
  }

 private:
  std::string device_ = "cuda";
};

// The plan options of a backbone of `kind` opened with `o` (its dtype, store dtype, image size, text encoder
// residency, t5_int8) and device (a CPU plan defaults to fp32, as the load does) from `weights` ("" = full-size
// configs); the spec is left empty.
MemoryPlanOptions memory_plan_options(const std::string& kind, const std::string& weights, const BackboneOptions& o);

// Weights per component, exact (see above). `folder` gives the configs; UserError for a bad folder/kind.
std::vector<ComponentWeights> plan_weights(const std::string& kind, const std::optional<std::string>& folder,
                                           at::ScalarType dtype, bool t5_int8);
// Captured bytes per requested key for one batch (UserError naming unknown keys).
std::vector<CaptureBytes> plan_captures(const std::string& kind, const std::vector<LayerInfo>& layers,
                                        const CaptureSpec& spec, int64_t batch, at::ScalarType store_dtype,
                                        at::ScalarType dtype);
// Everything, for one batch size.
MemoryPlan plan_memory(const MemoryPlanOptions& options, int64_t batch);

}  // namespace gb::bb
