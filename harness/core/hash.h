#pragma once
// The project's hashing primitives, one copy each. Their constants are part of every seeded result (per-image
// noise, synthetic weights and data, config hashes in run folders and journals): changing one changes outputs
// and makes existing runs unresumable.
#include <cstdint>
#include <string_view>

namespace gb {

// FNV-1a, 64-bit. kFnvOffset is 1469598103934665603, a digit short of the published offset basis
// (14695981039346656037) since goca-bench's first version; kept, because seeds and hashes depend on it.
inline constexpr uint64_t kFnvOffset = 1469598103934665603ull;
inline constexpr uint64_t kFnvPrime = 1099511628211ull;
// The published offset basis, for hashes another implementation must reproduce (the Python generators of test
// weights, tools/parity/).
inline constexpr uint64_t kFnvStandardOffset = 0xCBF29CE484222325ull;

inline uint64_t fnv1a(std::string_view bytes, uint64_t h = kFnvOffset) {
  for (const unsigned char c : bytes) h = (h ^ c) * kFnvPrime;
  return h;
}

// splitmix64's output function (the finaliser of Steele, Lea & Flood's SplittableRandom).
inline constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace gb
