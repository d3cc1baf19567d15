#include "reports/overlay.h"

#include "harness/io/image_io.h"
#include "reports/png_memory.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

namespace gb::reports {

std::string overlay_png_base64(const at::Tensor& image, const at::Tensor& label, const at::Tensor& pred) {
  const int64_t H = label.size(0), W = label.size(1);
  const int64_t oh = std::min<int64_t>(H, 128);
  const int64_t ow = std::max<int64_t>(1, W * oh / H);
  const auto palette = gb::voc_palette(256);
  at::Tensor img = image.to(at::kCPU).contiguous();
  at::Tensor lab = label.to(at::kCPU).to(at::kLong).contiguous();
  at::Tensor prd = pred.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t iH = img.size(0), iW = img.size(1);
  auto ia = img.accessor<uint8_t, 3>();
  auto la = lab.accessor<int64_t, 2>();
  auto pa = prd.accessor<int64_t, 2>();
  const int64_t gap = 4, total_w = 3 * ow + 2 * gap;
  std::vector<uint8_t> rgb(static_cast<size_t>(total_w * oh * 3), 255);
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      const int64_t ly = y * H / oh, lx = x * W / ow;
      const int64_t iy = y * iH / oh, ix = x * iW / ow;
      for (int panel = 0; panel < 3; ++panel) {
        uint8_t* px = &rgb[static_cast<size_t>((y * total_w + panel * (ow + gap) + x) * 3)];
        for (int c = 0; c < 3; ++c) {
          const double base = ia[iy][ix][c];
          if (panel == 0) {
            px[c] = static_cast<uint8_t>(base);
          } else {
            const int64_t v = panel == 1 ? la[ly][lx] : pa[ly][lx];
            const auto& col = palette[static_cast<size_t>(std::clamp<int64_t>(v, 0, 255))];
            px[c] = static_cast<uint8_t>(0.35 * base + 0.65 * col[static_cast<size_t>(c)]);
          }
        }
      }
    }
  return base64_encode(encode_png_rgb(rgb, total_w, oh));
}

}  // namespace gb::reports
