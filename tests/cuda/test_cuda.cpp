// The CUDA paths of a CUDA build. Compiled and linked everywhere (CI has nvcc but no GPU); the device tests run
// where a CUDA device is visible (scripts/gpu/check.sh) and skip elsewhere, the build facts are checked everywhere.
#include "harness/backbones/factory.h"
#include "harness/backbones/sd_backbone.h"
#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"
#include "tests/backbones/tiny_sd.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace gb::bb;

namespace {

#define GB_NEED_CUDA_DEVICE() \
  if (!gb::compat::cuda_available()) GTEST_SKIP() << "no CUDA device"

struct TinySd {
  fs::path base;
  std::string sd15;
  TinySd() {
    base = fs::temp_directory_path() / ("gb_cuda_sd_" + std::to_string(::getpid()));
    fs::remove_all(base);
    sd15 = tiny::write_tiny_sd(base / "sd15", false);
  }
  ~TinySd() { fs::remove_all(base); }
};

const TinySd& tiny_sd() {
  static TinySd t;
  return t;
}

BackboneOptions options(const std::string& device, std::optional<at::ScalarType> dtype) {
  BackboneOptions o;
  o.image_size = 16;
  o.device = device;
  o.dtype = dtype;
  return o;
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  auto x = a.to(at::kDouble).cpu(), y = b.to(at::kDouble).cpu();
  return (x - y).abs().max().item<double>() / std::max(y.abs().max().item<double>(), 1e-30);
}

}  // namespace

TEST(CudaBuild, VersionFactsMatchTheBuild) {
#if defined(GB_WITH_CUDA)
  EXPECT_TRUE(gb::compat::cuda_compiled());
  EXPECT_FALSE(gb::compat::cuda_version().empty());
#else
  EXPECT_FALSE(gb::compat::cuda_compiled());
  EXPECT_TRUE(gb::compat::cuda_version().empty());
#endif
  EXPECT_EQ(gb::compat::cuda_device_count() > 0, gb::compat::cuda_available());
}

// Device selection: without a device, asking for CUDA is one clear user error; with one, cuda and cuda:0 resolve.
TEST(CudaBuild, DeviceSelection) {
  BackboneOptions o;
  o.device = "cuda";
  if (!gb::compat::cuda_available()) {
    try {
      o.torch_device();
      FAIL() << "expected a UserError";
    } catch (const gb::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
    }
    return;
  }
  EXPECT_TRUE(o.torch_device().is_cuda());
  o.device = "cuda:0";
  EXPECT_EQ(o.torch_device().index(), 0);
  EXPECT_EQ(o.resolve_dtype(at::kHalf), at::kHalf);  // the paper's dtype on CUDA
}

// at::_int_mm on CUDA (where its shape rules allow) equals the exact chunked CPU path bit for bit.
TEST(CudaDevice, Int8GemmEqualsTheExactCpuPath) {
  GB_NEED_CUDA_DEVICE();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  for (int64_t K : {64, 1024, 4096}) {
    auto a = at::randint(-128, 128, {33, K}, gen, at::TensorOptions().dtype(at::kChar));
    auto b = at::randint(-128, 128, {48, K}, gen, at::TensorOptions().dtype(at::kChar));
    auto cpu = gb::compat::int8_matmul(a, b);
    auto cuda = gb::compat::int8_matmul(a.cuda(), b.cuda());
    EXPECT_TRUE(cuda.is_cuda());
    EXPECT_TRUE(at::equal(cuda.cpu(), cpu)) << "K=" << K;
  }
}

// The tiny SD1.5 on CUDA: fp32 agrees with the CPU to rounding, fp16 (the paper's dtype) within fp16's error.
TEST(CudaDevice, CaptureMatchesTheCpuInFp32AndFp16) {
  GB_NEED_CUDA_DEVICE();
  auto cpu = open_backbone(tiny_sd().sd15, options("cpu", at::kFloat));
  auto g32 = open_backbone(tiny_sd().sd15, options("cuda", at::kFloat));
  auto g16 = open_backbone(tiny_sd().sd15, options("cuda", std::nullopt));
  gb::CaptureSpec spec;
  spec.add("mid-vit-block0-cross-map");
  spec.add("up-level1-repeat1-vit-block0-cross-q");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto ids = tiny::tiny_ids({{5, 6}});
  std::vector<at::Tensor> imgs = {at::randint(0, 256, {20, 24, 3}, gen, at::kByte)};
  auto& sc = dynamic_cast<StableDiffusionBackbone&>(*cpu);
  auto& s32 = dynamic_cast<StableDiffusionBackbone&>(*g32);
  auto& s16 = dynamic_cast<StableDiffusionBackbone&>(*g16);
  EXPECT_EQ(s16.dtype(), at::kHalf);
  auto c = sc.capture_ids(imgs, ids, {"a"}, 1, spec);
  auto c32 = s32.capture_ids(imgs, ids, {"a"}, 1, spec);
  auto c16 = s16.capture_ids(imgs, ids, {"a"}, 1, spec);
  for (const auto& k : spec.keys) {
    EXPECT_LT(rel_err(c32.at(k), c.at(k)), 1e-4) << k;
    EXPECT_LT(rel_err(c16.at(k), c.at(k)), 2e-2) << k;
  }
}

// CUDA peak-memory accounting: a reset, an allocation, the peak covers it.
TEST(CudaDevice, PeakMemoryIsCounted) {
  GB_NEED_CUDA_DEVICE();
  gb::compat::cuda_synchronize();
  gb::compat::cuda_reset_peak_memory();
  {
    auto t = at::empty({64 << 20}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA));
    t.fill_(1);
    gb::compat::cuda_synchronize();
  }
  EXPECT_GE(gb::compat::cuda_peak_memory_bytes(), int64_t(64) << 20);
  gb::compat::cuda_empty_cache();
}
