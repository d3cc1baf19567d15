#include "harness/core/torch_compat.h"

#if defined(GB_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace gb::compat {

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const std::optional<at::Tensor>& mask, double scale) {
#if GB_TORCH_AT_LEAST(2, 1)
  std::optional<at::Tensor> m = mask;
  return at::scaled_dot_product_attention(q, k, v, m, 0.0, false, scale);
#else
  auto scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  if (mask) {
    if (mask->scalar_type() == at::kBool) {
      scores = scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
    } else {
      scores = scores + *mask;
    }
  }
  return at::matmul(at::softmax(scores, -1), v);
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

void cuda_empty_cache() {
#if defined(GB_WITH_CUDA)
  if (cuda_available()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

}  // namespace gb::compat
