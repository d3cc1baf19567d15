// Pascal-Context .mat label files (libmatio; v5 and HDF5-based v7.3), the LabelMap variable.
#include "datasets/dataset.h"
#include "fuzz/fuzz_util.h"

#include <ATen/ATen.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = gb::fuzz::put("label.mat", data, size);
  return gb::fuzz::expect_user_errors([&] {
    const at::Tensor t = gb::datasets::read_mat_variable(path, "LabelMap");
    if (t.dim() != 2 || t.scalar_type() != at::kLong) std::abort();
  });
}
