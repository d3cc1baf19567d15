#include "harness/core/torch_compat.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include <ATen/detail/CUDAHooksInterface.h>

#if defined(GB_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace gb::compat {

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const std::optional<at::Tensor>& mask, double scale) {
  std::optional<at::Tensor> m = mask;
  return at::scaled_dot_product_attention(q, k, v, m, 0.0, false, scale);
}

bool sdpa_fused(const std::string& device, at::ScalarType dtype, int64_t heads, int64_t head_dim, bool mask) {
  const at::Device d(device);
  if (d.is_cuda() && !cuda_available()) return true;
  static std::mutex m;
  static std::map<std::tuple<std::string, int, int64_t, int64_t, bool>, bool> cache;
  const auto key = std::make_tuple(d.str(), static_cast<int>(dtype), heads, head_dim, mask);
  std::lock_guard<std::mutex> lock(m);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  c10::InferenceMode guard;
  const at::Tensor q = at::zeros({1, heads, 8, head_dim}, at::TensorOptions().dtype(dtype).device(d));
  std::optional<at::Tensor> am;
  if (mask) am = at::zeros({1, 1, 8, 8}, q.options());
  // SDPBackend (ATen/native/transformers/sdp_utils_cpp.h): -1 error, 0 math, 1 flash, 2 efficient, 3 cuDNN, ...
  const int64_t backend = at::_fused_sdp_choice(q, q, q, am, 0.0, false, std::nullopt, false);
  return cache[key] = backend > 0;
}

at::Tensor int8_matmul(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.scalar_type() == at::kChar && b.scalar_type() == at::kChar, "int8_matmul: operands must be int8");
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), "int8_matmul: shapes [M, K] and [N, K] expected");
  const int64_t M = a.size(0), N = b.size(0), K = a.size(1);
  TORCH_CHECK(K <= (int64_t(1) << 31) / (128 * 128) - 1, "int8_matmul: K = ", K, " could overflow int32");
  if (a.is_cuda() && M > 16 && K % 8 == 0 && N % 8 == 0) return at::_int_mm(a.contiguous(), b.contiguous().t());
  constexpr int64_t kChunk = 1024;  // 128 * 128 * 1024 = 2^24: every partial sum is exact in fp32
  // fp32 GEMMs (MKL on the CPU, cuBLAS on CUDA without _int_mm's shapes) sum integers below 2^24 exactly in any
  // order, so each chunk's product is the exact integer.
  at::Tensor acc = at::zeros({M, N}, a.options().dtype(at::kInt));
  for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
    const int64_t k1 = std::min(K, k0 + kChunk);
    at::Tensor af = a.slice(1, k0, k1).to(at::kFloat), bf = b.slice(1, k0, k1).to(at::kFloat);
    at::Tensor part = at::mm(af, bf.t());
    acc.add_(part.to(at::kInt));
  }
  return acc;
}

bool cuda_compiled() {
#if defined(GB_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

std::string cuda_version() {
#if defined(GB_WITH_CUDA)
  const long v = at::detail::getCUDAHooks().versionCUDART();  // e.g. 13000
  if (v <= 0) return "";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
#else
  return "";
#endif
}

bool cuda_available() {
#if defined(GB_WITH_CUDA)
  return at::globalContext().hasCUDA() && c10::cuda::device_count() > 0;
#else
  return false;
#endif
}

int cuda_device_count() {
#if defined(GB_WITH_CUDA)
  return cuda_available() ? static_cast<int>(c10::cuda::device_count()) : 0;
#else
  return 0;
#endif
}

std::string cuda_device_name(int index) {
#if defined(GB_WITH_CUDA)
  return at::cuda::getDeviceProperties(index)->name;
#else
  (void)index;
  return "";
#endif
}

int64_t cuda_peak_memory_bytes() {
#if defined(GB_WITH_CUDA)
  if (!cuda_available()) return 0;
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
  return stats.allocated_bytes[0].peak;  // StatType::AGGREGATE
#else
  return 0;
#endif
}

void cuda_reset_peak_memory() {
#if defined(GB_WITH_CUDA)
  if (cuda_available()) c10::cuda::CUDACachingAllocator::resetPeakStats(c10::cuda::current_device());
#endif
}

void cuda_synchronize() {
#if defined(GB_WITH_CUDA)
  if (cuda_available()) c10::cuda::device_synchronize();
#endif
}

std::optional<int64_t> cuda_free_memory_bytes(int index) {
#if defined(GB_WITH_CUDA)
  if (!cuda_available() || index < 0 || index >= cuda_device_count()) return std::nullopt;
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) return std::nullopt;
  return static_cast<int64_t>(free);
#else
  (void)index;
  return std::nullopt;
#endif
}

void cuda_empty_cache() {
#if defined(GB_WITH_CUDA)
  if (cuda_available()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

}  // namespace gb::compat
