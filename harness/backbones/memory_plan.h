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
// CUDA context), with fused SDPA (no score matrix) wherever the code calls
// compat::scaled_dot_product_attention on LibTorch 2.x.
#include "harness/backbones/factory.h"
#include "harness/core/capture.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

struct MemoryPlanOptions {
  std::string kind;                           // sd15 | sdxl | pixart-sigma | flux
  std::optional<std::string> folder;          // checkpoint folder (configs); default: full-size configs
  std::optional<at::ScalarType> dtype;        // default: the paper's GPU dtype
  std::optional<at::ScalarType> store_dtype;  // default: the compute dtype
  std::optional<int64_t> image_size;          // default: the paper's
  TextEncoderResidency text_encoder = TextEncoderResidency::keep;
  std::optional<bool> t5_int8;                // flux only; default: on for 16-bit compute
  std::optional<int64_t> text_length;         // tokens the prompts are padded to (default: the pipeline's)
  CaptureSpec spec;
};

struct ComponentWeights {
  std::string name;          // "unet", "transformer", "vae", "text_encoder", "text_encoder_2"
  std::string storage;       // e.g. "fp16", "fp32", "bf16 (wo fp32)", "int8 (+fp32 row scales; wo fp32)"
  int64_t params = 0;
  int64_t bytes = 0;
  bool text_encoder = false;  // freed under text_encoder: free (T5, Flux's CLIP)
  bool t5 = false;            // T5: also parked in host memory under text_encoder: offload
};

struct MemoryTerm {
  std::string name;
  int64_t bytes = 0;
};

// One phase of the pass and what is alive at its peak.
struct MemoryPhase {
  std::string name;              // "text", "vae", "denoiser"
  int64_t weights = 0;           // resident weights during the phase
  int64_t captures = 0;          // captured tensors alive at the phase's peak
  std::vector<MemoryTerm> transient;  // modelled working set at the peak (largest first)
  std::string at;                // where the peak is (e.g. "vit-block56 attention")
  int64_t transient_bytes() const;
  int64_t total() const { return weights + captures + transient_bytes(); }
};

struct CaptureBytes {
  std::string key;
  std::vector<int64_t> shape;  // stored shape with the batch dimension
  int64_t bytes = 0;           // new device bytes (0 for a special-weight alias)
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

// Weights per component, exact (see above). `folder` gives the configs; UserError for a bad folder/kind.
std::vector<ComponentWeights> plan_weights(const std::string& kind, const std::optional<std::string>& folder,
                                           at::ScalarType dtype, bool t5_int8);
// Captured bytes per requested key for one batch (UserError naming unknown keys).
std::vector<CaptureBytes> plan_captures(const std::string& kind, const std::vector<LayerInfo>& layers,
                                        const CaptureSpec& spec, int64_t batch, at::ScalarType store_dtype,
                                        at::ScalarType dtype);
// Everything, for one batch size.
MemoryPlan plan_memory(const MemoryPlanOptions& options, int64_t batch);

// The paper's GPU dtype of a backbone kind (sd15/sdxl/pixart-sigma fp16, flux bf16).
at::ScalarType paper_dtype(const std::string& kind);
std::string dtype_name(at::ScalarType t);  // "fp32", "fp16", "bf16"

}  // namespace gb::bb
