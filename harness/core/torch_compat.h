#pragma once
// What LibTorch (PyTorch 2.11's, CUDA compiled in or not) needs a word of its own for: the build's CUDA support,
// fused attention, the int8 GEMM. Code elsewhere calls these instead of testing GB_WITH_CUDA itself.
#include <ATen/ATen.h>
#include <torch/version.h>

#include <optional>
#include <string>

namespace gb::compat {

inline std::string torch_version() { return TORCH_VERSION; }

// softmax(q k^T * scale [+ mask]) v for [B, H, L, d] tensors through at::scaled_dot_product_attention (LibTorch
// picks the fused kernel the device and dtype allow, the math path otherwise). `mask` is additive (or boolean: true =
// keep) and broadcastable to [B,H,Lq,Lk].
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const std::optional<at::Tensor>& mask, double scale);
// Whether scaled_dot_product_attention runs a fused kernel (flash, memory-efficient, cuDNN: no [Lq, Lk] score
// matrix) or the math path (scores and softmax materialised) for `heads` x `head_dim` in `dtype` on `device`,
// with or without a mask: LibTorch's own choice (at::_fused_sdp_choice), asked on tiny tensors of that device
// (the choice depends on the device, dtype, head size and mask, not on the sequence lengths). For a CUDA device
// this machine lacks, fused (flash or memory-efficient attention take every shape the backbones use).
bool sdpa_fused(const std::string& device, at::ScalarType dtype, int64_t heads, int64_t head_dim, bool mask);

// a [M, K] int8 · b [N, K]ᵀ int8 → int32 [M, N], exact (int32 accumulation, as cuBLASLt's int8 GEMM that
// bitsandbytes calls). CUDA: at::_int_mm where its shape rules allow (M > 16, K and N
// multiples of 8). Elsewhere (the CPU has no exact int8 GEMM in LibTorch): fp32 GEMMs (oneDNN on the CPU when built in)
// over K-chunks of 1024, exact because every partial sum of int8·int8 products over 1024 terms is an integer of
// magnitude <= 2^24; the chunks are summed in int32. Throws (c10::Error) when 128²·K could overflow int32.
at::Tensor int8_matmul(const at::Tensor& a, const at::Tensor& b);

// Whether this build has CUDA compiled in, and the CUDA runtime version LibTorch was built with ("13.0"; "" if none).
bool cuda_compiled();
std::string cuda_version();
// Whether a CUDA device can be used by this build, and how many.
bool cuda_available();
int cuda_device_count();
std::string cuda_device_name(int index);
// Peak bytes allocated on the current CUDA device since the last reset (0 on CPU-only builds).
int64_t cuda_peak_memory_bytes();
void cuda_reset_peak_memory();
void cuda_synchronize();
// Free bytes on CUDA device `index` as the driver reports them (cudaMemGetInfo); nullopt without CUDA.
std::optional<int64_t> cuda_free_memory_bytes(int index);
// Returns the caching allocator's unused blocks to the driver (after freeing large weights).
void cuda_empty_cache();

}  // namespace gb::compat
