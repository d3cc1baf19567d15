#pragma once
// The example overlays of report.html: image | ground truth | prediction, side by side.
#include <ATen/core/Tensor.h>

#include <string>

namespace gb::reports {

// image (H', W', 3) uint8, label and pred (H, W) integer class maps: three panels nearest-resized to the
// label's aspect at a height of min(H, 128), 4 white pixels apart; the maps are VOC-palette colours blended
// 65 % over the image. Returns the RGB PNG as base64 (for an <img src="data:...">).
std::string overlay_png_base64(const at::Tensor& image, const at::Tensor& label, const at::Tensor& pred);

}  // namespace gb::reports
