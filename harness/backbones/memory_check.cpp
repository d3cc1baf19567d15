#include "harness/backbones/memory_check.h"

#include "harness/backbones/registry.h"
#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/core/torch_compat.h"
#include "harness/core/trace.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <fstream>
#include <new>
#include <sstream>

namespace gb::bb {

namespace {

std::string gb_str(int64_t bytes) { return fmt::format("{:.2f} GB", static_cast<double>(bytes) / 1e9); }

std::optional<int64_t> mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream s(line.substr(13));
    int64_t kib = 0;
    if (s >> kib) return kib * 1024;
  }
  return std::nullopt;
}

// The largest n in [lo, hi] with fits(n), given fits is monotone (true below some n); nullopt when none.
std::optional<int64_t> largest(int64_t lo, int64_t hi, const std::function<bool(int64_t)>& fits) {
  if (lo > hi || !fits(lo)) return std::nullopt;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

}  // namespace

std::optional<DeviceMemory> available_memory(const std::string& device, const std::optional<double>& budget_gb) {
  if (budget_gb) {
    if (!(*budget_gb > 0) || !std::isfinite(*budget_gb)) fail("--memory-budget-gb must be a positive number of GB");
    return DeviceMemory{static_cast<int64_t>(std::llround(*budget_gb * 1e9)), "--memory-budget-gb"};
  }
  const at::Device d(device);
  if (d.is_cuda()) {
    const int index = d.has_index() ? d.index() : 0;
    if (auto free = gb::compat::cuda_free_memory_bytes(index))
      return DeviceMemory{*free, fmt::format("free on cuda:{}", index)};
    return std::nullopt;
  }
  if (auto avail = mem_available_bytes()) return DeviceMemory{*avail, "MemAvailable"};
  return std::nullopt;
}

void check_memory_fits(const std::string& what, const MemoryPlanOptions& options, int64_t batch,
                       const MemoryCheck& check) {
  if (!check.enabled || !backbone_kind(options.kind).memory) return;
  const auto avail = available_memory(options.device, check.budget_gb);
  if (!avail) return;
  const MemoryPlan plan = plan_memory(options, batch);
  if (plan.peak() <= avail->bytes) return;

  // What would fit, each alone: a smaller batch, the text encoder freed, a smaller image.
  auto peak_of = [&](MemoryPlanOptions o, int64_t b) { return plan_memory(o, b).peak(); };
  std::vector<std::string> fits;
  if (batch > 1)
    if (auto b = largest(1, batch - 1, [&](int64_t n) { return peak_of(options, n) <= avail->bytes; }))
      fits.push_back(fmt::format("--batch-size {}", *b));
  const BackboneKind& kind = backbone_kind(options.kind);
  if (options.text_encoder != TextEncoderResidency::free)
    for (auto m : kind.text_encoder_modes)
      if (m == TextEncoderResidency::free) {
        MemoryPlanOptions o = options;
        o.text_encoder = m;
        if (peak_of(o, batch) <= avail->bytes) fits.push_back("--text-encoder free");
      }
  {
    // Smaller sides in steps of the largest of 128, 64, ..., 8 that divides the side and plans (a multiple of the
    // kind's latent grid); bisected (the peak grows with the side).
    int64_t step = 8;
    for (int64_t m : {128, 64, 32, 16, 8})
      if (plan.image_size % m == 0) {
        MemoryPlanOptions o = options;
        o.image_size = m;
        try {
          plan_memory(o, batch);
          step = m;
          break;
        } catch (const UserError&) {}
      }
    auto size_fits = [&](int64_t n) {
      MemoryPlanOptions o = options;
      o.image_size = n * step;
      try {
        return peak_of(o, batch) <= avail->bytes;
      } catch (const UserError&) {
        return false;
      }
    };
    if (auto n = largest(1, plan.image_size / step - 1, size_fits))
      fits.push_back(fmt::format("--image-size {}", *n * step));
  }
  const MemoryPhase& phase = plan.peak_phase();
  fail(
      "{}: planned {} at batch {} ({} phase, at {}) but {} has {} ({}); {}(--memory-budget-gb G or "
      "--no-memory-check to override)",
      what, gb_str(plan.peak()), batch, phase.name, phase.at, options.device, gb_str(avail->bytes), avail->source,
      fits.empty() ? std::string("nothing smaller fits ") : "fits: " + [&] {
        std::string s;
        for (const auto& f : fits) s += (s.empty() ? "" : " | ") + f;
        return s + " ";
      }());
}

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return true;
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) return true;
  const std::string m = e.what();
  return m.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos ||
         m.find("CUDA out of memory") != std::string::npos;
}

void rethrow_out_of_memory(const std::function<void()>& f, const std::string& stage, const std::string& device,
                           const std::string& what) {
  gb::trace::failed_stage();  // forget an earlier failure of this thread
  try {
    f();
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    if (!is_out_of_memory(e)) throw;
    std::string m = e.what();
    if (auto* c = dynamic_cast<const c10::Error*>(&e)) m = c->what_without_backtrace();
    const std::string in = gb::trace::failed_stage();  // the innermost span the failure unwound (text, vae, ...)
    fail("{} ran out of memory on {}{} at {}: {}", stage, device, in.empty() ? "" : " in its " + in + " stage", what,
         excerpt(m, 160));
  }
}

}  // namespace gb::bb
