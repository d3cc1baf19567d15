#pragma once
// The one precompiled header every target reuses (cmake/targets.cmake). ATen only: <torch/torch.h>
// costs 16 s and 1.1 GB per translation unit here, ATen through this PCH about 1 s.
// Never include this file directly; the build injects it.
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>
