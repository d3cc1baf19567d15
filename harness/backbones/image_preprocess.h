#pragma once
// Image preprocessing as the paper's extractor does it (GDF `_preprocess_basic` + diffusers VaeImageProcessor,
// spec §2.5): `PIL.Image.resize((S, S))` with Pillow's default filter (BICUBIC, a = -0.5, antialiased: the
// support scales with the downscale factor), reproduced bit-exactly (Pillow's libImaging/Resample.c: separable
// two-pass, horizontal first, 22-bit fixed-point coefficients, 8-bit intermediate), then x/255·2 − 1.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace gb::bb {

// uint8 [H, W, C] -> uint8 [out_h, out_w, C]; identity when the size is unchanged (Pillow returns a copy).
at::Tensor pil_resize_bicubic(const at::Tensor& image_u8_hwc, int64_t out_w, int64_t out_h);

// RGB uint8 [H, W, 3] -> float32 [3, size, size] in [-1, 1] (diffusers: float32(x)/255, then 2x - 1).
at::Tensor preprocess_image(const at::Tensor& rgb_u8_hw3, int64_t size);

}  // namespace gb::bb
