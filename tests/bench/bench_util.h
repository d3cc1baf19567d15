#pragma once
// What the SD1.5 benchmarks share: the settings they read from the environment (GB_BENCH_DEVICE, default cpu;
// GB_BENCH_DTYPE=fp16, default fp32; GB_BENCH_LATENT, the latent side) and the full-size SD1.5 UNet with random
// weights, built once per process.
#include "harness/backbones/unet.h"
#include "harness/core/torch_compat.h"

#include <cstdlib>
#include <memory>
#include <string>

namespace gb::bench {

inline int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

inline at::Device device() {
  const char* v = std::getenv("GB_BENCH_DEVICE");
  return at::Device(v ? v : "cpu");
}

inline at::ScalarType dtype() {
  const char* v = std::getenv("GB_BENCH_DTYPE");
  return v && std::string(v) == "fp16" ? at::kHalf : at::kFloat;
}

// Floating-point tensors of the benchmarks: dtype() on device().
inline at::TensorOptions options() { return at::TensorOptions().dtype(dtype()).device(device()); }

// Waits for the device's queued work (CUDA), so a timer reads what it ran.
inline void sync() {
  if (device().is_cuda()) gb::compat::cuda_synchronize();
}

// The full-size SD1.5 UNet (860 M random parameters, seed 1) on device() in dtype(), built on first use.
inline gb::bb::UNet2DConditionModel& sd15_unet() {
  static std::unique_ptr<gb::bb::UNet2DConditionModel> unet = [] {
    auto ws = gb::bb::WeightStore::random_init(1, 0.02, dtype(), device());
    return std::make_unique<gb::bb::UNet2DConditionModel>(gb::bb::UNetConfig::sd15(), ws);
  }();
  return *unet;
}

}  // namespace gb::bench
