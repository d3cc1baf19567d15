// PNG (libspng) and JPEG (libjpeg-turbo) decoding: the header, RGB decoding and label-map decoding.
#include "fuzz/fuzz_util.h"
#include "harness/io/image_io.h"

#include <ATen/ATen.h>

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = gb::fuzz::put("image.png", data, size);
  gb::fuzz::expect_user_errors([&] { (void)gb::read_image_header(path); });
  gb::fuzz::expect_user_errors([&] {
    const at::Tensor rgb = gb::decode_image_rgb(std::vector<uint8_t>(data, data + size), "image.png");
    if (rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte) std::abort();
  });
  gb::fuzz::expect_user_errors([&] {
    const at::Tensor label = gb::read_label_png(path);
    if (label.dim() != 2 || label.scalar_type() != at::kLong) std::abort();
  });
  return 0;
}
