#pragma once
// Tensor-shape helpers for messages and layout checks (one copy for every library).
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gb {

// "[320, 4, 3, 3]"
std::string shape_str(const std::vector<int64_t>& shape);
std::string shape_str(c10::ArrayRef<int64_t> shape);

// The side s with s * s == pixels (a square attention grid), or -1 when `pixels` is not a perfect square.
int64_t square_side(int64_t pixels);

}  // namespace gb
