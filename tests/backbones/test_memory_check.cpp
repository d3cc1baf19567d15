// The memory pre-flight (harness/backbones/memory_check.h): work whose planned peak exceeds what the device has is
// refused before loading, with the planned and available GB, the phase and what would fit; allocation failures
// that still happen become one UserError naming the stage and the images.
#include "harness/backbones/memory_check.h"
#include "harness/backbones/registry.h"
#include "harness/core/errors.h"
#include "harness/core/trace.h"
#include "harness/io/safetensors.h"

#include <ATen/ATen.h>

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <new>
#include <stdexcept>

using namespace gb::bb;

namespace {

// A Flux-layout checkpoint whose VAE downsamples by 2 (tests/generation/golden/flux_tiny): at the default 1024²
// its GoCA-style capture (every self map) plans hundreds of GB in the denoiser.
const std::string kFlux = std::string(GB_SOURCE_DIR) + "/tests/generation/golden/flux_tiny";

MemoryPlanOptions flux_capture() {
  BackboneOptions o;  // cpu, fp32
  MemoryPlanOptions mo = memory_plan_options("flux", kFlux, o);
  for (int k = 0; k < 4; ++k) {
    mo.spec.add("vit-block" + std::to_string(k) + "-cross-map");
    mo.spec.add("vit-block" + std::to_string(k) + "-self-map");
  }
  return mo;
}

std::string refusal(const MemoryPlanOptions& mo, int64_t batch, const MemoryCheck& c) {
  try {
    check_memory_fits("capture", mo, batch, c);
  } catch (const gb::UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(MemoryCheck, TinyFluxAt1024IsRefusedWithWhatFits) {
  const MemoryPlanOptions mo = flux_capture();
  EXPECT_EQ(mo.dtype, at::kFloat) << "a CPU plan is fp32, as the load";
  MemoryCheck c;
  c.budget_gb = 16;
  const std::string m = refusal(mo, 1, c);
  ASSERT_FALSE(m.empty());
  EXPECT_NE(m.find("capture: planned "), std::string::npos) << m;
  EXPECT_NE(m.find("denoiser phase"), std::string::npos) << m;
  EXPECT_NE(m.find("16.00 GB (--memory-budget-gb)"), std::string::npos) << m;
  EXPECT_NE(m.find("fits: --image-size "), std::string::npos) << m;
  EXPECT_NE(m.find("--no-memory-check"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line";
  // The size it proposes does fit, the next step up does not.
  const auto at = m.find("--image-size ") + 13;
  const int64_t size = std::stoll(m.substr(at));
  MemoryPlanOptions smaller = mo;
  smaller.image_size = size;
  EXPECT_LE(plan_memory(smaller, 1).peak(), int64_t(16e9));
  // A smaller batch is proposed when the batch is the problem.
  MemoryPlanOptions at_size = mo;
  at_size.image_size = size;
  const int64_t one = plan_memory(at_size, 1).peak();
  MemoryCheck tight;
  tight.budget_gb = 2.5 * static_cast<double>(one) / 1e9;
  const std::string mb = refusal(at_size, 4, tight);
  EXPECT_NE(mb.find("fits: --batch-size 2"), std::string::npos) << mb;
}

TEST(MemoryCheck, FitsDisabledOrUnknownPasses) {
  const MemoryPlanOptions mo = flux_capture();
  MemoryCheck big;
  big.budget_gb = 1e6;
  EXPECT_NO_THROW(check_memory_fits("capture", mo, 1, big));
  MemoryCheck off;
  off.enabled = false;
  off.budget_gb = 0.001;
  EXPECT_NO_THROW(check_memory_fits("capture", mo, 1, off));
  MemoryCheck bad;
  bad.budget_gb = -1;
  EXPECT_THROW(check_memory_fits("capture", mo, 1, bad), gb::UserError);
  // Without a budget: the CPU's MemAvailable (this machine has one), a CUDA device it lacks is not checked.
  const auto cpu = available_memory("cpu", std::nullopt);
  ASSERT_TRUE(cpu.has_value());
  EXPECT_GT(cpu->bytes, 0);
  EXPECT_EQ(cpu->source, "MemAvailable");
  if (!gb::bb::available_memory("cuda", std::nullopt)) {
    MemoryPlanOptions cuda = mo;
    cuda.device = "cuda";
    EXPECT_NO_THROW(check_memory_fits("capture", cuda, 1, MemoryCheck{}));
  }
}

TEST(MemoryCheck, AllocationFailuresNameTheStageAndImages) {
  auto message = [](const std::function<void()>& f) {
    try {
      rethrow_out_of_memory(f, "the capture", "cpu", "images 2007_000032 (voc|sd15)");
    } catch (const gb::UserError& e) {
      return std::string(e.what());
    }
    return std::string("no UserError");
  };
  const std::string a = message([] { throw std::bad_alloc(); });
  EXPECT_NE(a.find("the capture ran out of memory on cpu at images 2007_000032 (voc|sd15)"), std::string::npos) << a;
  // LibTorch's CPU allocator failure, as it reached the user before ("internal error (LibTorch)").
  const std::string b = message([] {
    TORCH_CHECK(false, "DefaultCPUAllocator: can't allocate memory: you tried to allocate 274877906944 bytes.");
  });
  EXPECT_NE(b.find("ran out of memory"), std::string::npos) << b;
  EXPECT_NE(b.find("274877906944"), std::string::npos) << b;
  EXPECT_LT(b.size(), 400u);
  // Inside a traced stage the message names it.
  const std::string c = message([] {
    gb::trace::Span outer("capture");
    gb::trace::Span inner("vae");
    throw std::bad_alloc();
  });
  EXPECT_NE(c.find("ran out of memory on cpu in its vae stage at images"), std::string::npos) << c;
  // Anything else passes through unchanged.
  EXPECT_THROW(rethrow_out_of_memory([] { throw std::runtime_error("x"); }, "s", "cpu", "w"), std::runtime_error);
  EXPECT_THROW(rethrow_out_of_memory([] { gb::fail("user"); }, "s", "cpu", "w"), gb::UserError);
}

namespace {

// Models resident beside the backbone (a generation run's FID Inception and CLIP scorer) count in every phase.
TEST(MemoryPlan, ResidentModelsCountInEveryPhase) {
  const std::string file = (std::filesystem::temp_directory_path() / "gb_resident_model.safetensors").string();
  gb::save_safetensors(file, {{"a", at::zeros({3, 5})}, {"b", at::zeros({7}, at::kHalf)}}, {});
  const ComponentWeights c = fp32_component("fid_inception", file);
  EXPECT_EQ(c.params, 22);
  EXPECT_EQ(c.bytes, 88);  // loaded in fp32, whatever the file stores
  MemoryPlanOptions mo = flux_capture();
  mo.image_size = 64;
  const MemoryPlan base = plan_memory(mo, 1);
  mo.resident_models = {c};
  const MemoryPlan with = plan_memory(mo, 1);
  ASSERT_EQ(with.phases.size(), base.phases.size());
  for (size_t p = 0; p < base.phases.size(); ++p)
    EXPECT_EQ(with.phases[p].total(), base.phases[p].total() + 88) << base.phases[p].name;
  EXPECT_EQ(with.weights.back().name, "fid_inception");
  std::filesystem::remove(file);
}

}  // namespace
