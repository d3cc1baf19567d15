// FID statistics (.npz, as pytorch-fid and numpy write them) and the .npy arrays inside: the zip directory
// (zip64 included), stored and deflated entries, the .npy header. The first input byte picks a whole .npz file
// or a bare .npy array. Accepted arrays hold no more elements than their bytes can carry.
#include "fuzz/fuzz_util.h"
#include "harness/metrics/npz.h"

#include <ATen/ATen.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool npz = data[0] & 1;
  ++data;
  --size;
  return gb::fuzz::expect_user_errors([&] {
    if (npz) {
      // Deflate expands at most 1032:1, so every accepted array fits in that bound.
      for (const auto& [name, t] : gb::metrics::read_npz(gb::fuzz::put("stats.npz", data, size)))
        if (static_cast<size_t>(t.nbytes()) > size * 1032 + 64) std::abort();
    } else {
      const at::Tensor t = gb::metrics::parse_npy(std::string(reinterpret_cast<const char*>(data), size), "a.npy");
      if (static_cast<size_t>(t.nbytes()) > size) std::abort();
    }
  });
}
