#include "harness/core/shape.h"

#include <cmath>

namespace gb {

std::string shape_str(const std::vector<int64_t>& shape) { return shape_str(c10::ArrayRef<int64_t>(shape)); }

std::string shape_str(c10::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t square_side(int64_t pixels) {
  if (pixels < 0) return -1;
  const auto s = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(pixels))));
  return s * s == pixels ? s : -1;
}

}  // namespace gb
