#pragma once
// Memory pre-flight: before any weight is loaded, `capture`, `run` and `generate` plan the peak of the work they
// were given (memory_plan.h) and refuse it with one line (exit 2) when it cannot fit the device: planned vs
// available GB, the phase, and what would fit. And the one place an allocation failure that still happens is
// turned into a UserError naming the stage and the images.
#include "harness/backbones/memory_plan.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

struct MemoryCheck {
  bool enabled = true;              // --no-memory-check turns it off
  std::optional<double> budget_gb;  // --memory-budget-gb: instead of what the device has free
};

// What the device can give: CUDA: the driver's free memory; CPU: MemAvailable of /proc/meminfo; or the budget.
struct DeviceMemory {
  int64_t bytes = 0;
  std::string source;  // "free on cuda:0", "MemAvailable", "--memory-budget-gb"
};
// nullopt where it cannot be known (a CUDA device this machine lacks, no /proc/meminfo).
std::optional<DeviceMemory> available_memory(const std::string& device, const std::optional<double>& budget_gb);

// Plans `batch` with `options` (its spec filled) and throws UserError when the peak exceeds what `device` has:
//   "<what>: planned 190.97 GB at batch 1 (denoiser phase, at vit-block3) but cpu has 20.31 GB (MemAvailable);
//    fits: --batch-size 2 | --text-encoder free | --image-size 512 (--memory-budget-gb G or --no-memory-check
//    to override)".
// Nothing for kinds without a memory model, a disabled check, or an unknown amount available.
void check_memory_fits(const std::string& what, const MemoryPlanOptions& options, int64_t batch,
                       const MemoryCheck& check);

// Runs `f`; an allocation failure inside it (std::bad_alloc, c10::OutOfMemoryError, LibTorch's CPU allocator
// error) becomes a UserError "<stage> ran out of memory on <device> at <what>: ...", other exceptions pass.
void rethrow_out_of_memory(const std::function<void()>& f, const std::string& stage, const std::string& device,
                           const std::string& what);
bool is_out_of_memory(const std::exception& e);

}  // namespace gb::bb
