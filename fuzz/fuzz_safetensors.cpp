// safetensors files: header length, header JSON (dtypes, shapes, offsets, __metadata__), then every tensor.
#include "fuzz/fuzz_util.h"
#include "harness/io/safetensors.h"

#include <ATen/ATen.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = gb::fuzz::put("model.safetensors", data, size);
  return gb::fuzz::expect_user_errors([&] {
    gb::SafetensorsFile f(path);
    for (const auto& k : f.keys()) {
      const at::Tensor t = f.load(k);
      if (t.numel() > 0) (void)t.to(at::kFloat).sum().item<double>();
    }
  });
}
