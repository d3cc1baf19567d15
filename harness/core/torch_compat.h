#pragma once
// Every difference between Debian's LibTorch 1.13 (CPU build) and PyTorch 2.x's bundled LibTorch
// (GPU build) is handled here and nowhere else.
#include <ATen/ATen.h>
#include <torch/version.h>

#include <optional>
#include <string>

#define GB_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace gb::compat {

inline std::string torch_version() { return TORCH_VERSION; }

// softmax(q k^T * scale [+ mask]) v for [B, H, L, d] tensors. Uses the fused kernel where LibTorch has it
// (2.x), the math path otherwise. `mask` is additive (or boolean: true = keep) and broadcastable to [B,H,Lq,Lk].
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const std::optional<at::Tensor>& mask, double scale);

// Whether a CUDA device can be used by this build, and how many.
bool cuda_available();
int cuda_device_count();
std::string cuda_device_name(int index);
// Peak bytes allocated on the current CUDA device since the last reset (0 on CPU-only builds).
int64_t cuda_peak_memory_bytes();
void cuda_reset_peak_memory();
void cuda_synchronize();
// Returns the caching allocator's unused blocks to the driver (after freeing large weights).
void cuda_empty_cache();

}  // namespace gb::compat
