#pragma once
// Smooth random fields for the synthetic world: a coarse grid of standard normals, bilinearly interpolated.
#include "harness/backbones/synthetic_rng.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace gb::bb {

// h × w values (row-major), roughly N(0, 1) at grid nodes and smooth between them.
inline std::vector<float> smooth_field(Rng& rng, int grid, int64_t h, int64_t w) {
  const int g = std::max(grid, 1) + 1;
  std::vector<double> nodes(static_cast<size_t>(g * g));
  for (auto& v : nodes) v = rng.normal();
  std::vector<float> out(static_cast<size_t>(h * w));
  for (int64_t y = 0; y < h; ++y) {
    const double gy = (static_cast<double>(y) + 0.5) / static_cast<double>(h) * (g - 1);
    const int y0 = std::min(static_cast<int>(gy), g - 2);
    const double ty = gy - y0;
    for (int64_t x = 0; x < w; ++x) {
      const double gx = (static_cast<double>(x) + 0.5) / static_cast<double>(w) * (g - 1);
      const int x0 = std::min(static_cast<int>(gx), g - 2);
      const double tx = gx - x0;
      const double a = nodes[static_cast<size_t>(y0 * g + x0)], b = nodes[static_cast<size_t>(y0 * g + x0 + 1)];
      const double c = nodes[static_cast<size_t>((y0 + 1) * g + x0)],
                   d = nodes[static_cast<size_t>((y0 + 1) * g + x0 + 1)];
      out[static_cast<size_t>(y * w + x)] =
          static_cast<float>((a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty);
    }
  }
  return out;
}

}  // namespace gb::bb
