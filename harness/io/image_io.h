#pragma once
// Image files: JPEG through libjpeg-turbo, PNG through libspng (palette indices included, which OpenCV
// cannot return). See docs/image-io.md for why not OpenCV's imgcodecs. Every failure is a UserError
// naming the file.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gb {

struct ImageHeader {
  int64_t width = 0;
  int64_t height = 0;
  int channels = 0;      // as stored: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; palette PNGs report 1
  int bit_depth = 8;     // 1, 2, 4, 8 or 16
  bool palette = false;  // PNG colour type 3
  std::string format;    // "png" or "jpeg"
};

ImageHeader read_image_header(const std::string& path);

// RGB uint8 [H, W, 3]: gray is replicated, alpha dropped, palette expanded, 16-bit scaled to 8.
at::Tensor read_image_rgb(const std::string& path);
at::Tensor decode_image_rgb(const std::vector<uint8_t>& bytes, const std::string& source_name);

// Label maps: int64 [H, W]. Palette PNGs give their *indices*; gray PNGs (8 or 16-bit) their raw values.
// RGB PNGs are rejected here (panoptic PNGs are read with read_image_rgb and decoded by the dataset).
at::Tensor read_label_png(const std::string& path);

using Palette = std::vector<std::array<uint8_t, 3>>;
Palette voc_palette(int entries = 256);  // the Pascal VOC colour map

void write_png_rgb(const std::string& path, const at::Tensor& rgb_u8_hw3);
// uint8 [H, W] indices with a palette (VOC palette by default).
void write_png_palette(const std::string& path, const at::Tensor& indices_hw, const Palette& palette = voc_palette());
// Gray PNG: uint8 tensors as 8-bit, int16/int32/int64 values in [0, 65535] as 16-bit when `sixteen_bit`.
void write_png_gray(const std::string& path, const at::Tensor& values_hw, bool sixteen_bit = false);
void write_jpeg(const std::string& path, const at::Tensor& rgb_u8_hw3, int quality = 95);

}  // namespace gb
