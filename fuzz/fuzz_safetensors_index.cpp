// Sharded checkpoints: model.safetensors.index.json ({"weight_map": {tensor: shard file}}) beside two valid
// shards.
#include "fuzz/fuzz_util.h"
#include "harness/io/safetensors.h"

#include <ATen/ATen.h>

extern "C" void gb_fuzz_setup() {
  gb::save_safetensors((gb::fuzz::scratch() / "model-00001-of-00002.safetensors").string(),
                       {{"a.weight", at::ones({2, 3})}, {"a.bias", at::zeros({3}, at::kHalf)}});
  gb::save_safetensors((gb::fuzz::scratch() / "model-00002-of-00002.safetensors").string(),
                       {{"b.weight", at::arange(4, at::kLong)}});
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = gb::fuzz::put("model.safetensors.index.json", data, size);
  return gb::fuzz::expect_user_errors([&] {
    const auto ck = gb::SafetensorsCheckpoint::open(path);
    for (const auto& k : ck.keys()) (void)ck.load(k);
  });
}
