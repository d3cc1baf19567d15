#pragma once
// A small, portable, seeded random source for the synthetic world. std::normal_distribution differs between
// standard libraries, so the synthetic data would not be reproducible across machines; this one is
// (splitmix64 + Box–Muller, all in double).
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "harness/core/hash.h"

namespace gb::bb {

inline uint64_t splitmix64(uint64_t& state) { return mix64(state += kGoldenGamma); }

// FNV-1a of a string, mixed with a seed and a tag: one independent stream per (seed, image id, purpose).
inline uint64_t stream_seed(uint64_t seed, const std::string& id, const std::string& tag) {
  uint64_t h = fnv1a(id, kFnvOffset ^ seed);
  h = fnv1a(std::string_view("\xff", 1), h);  // a separator byte between id and tag
  uint64_t s = fnv1a(tag, h);
  return splitmix64(s);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  Rng(uint64_t seed, const std::string& id, const std::string& tag) : state_(stream_seed(seed, id, tag)) {}
  uint64_t next() { return splitmix64(state_); }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t below(int64_t n) { return static_cast<int64_t>(uniform() * static_cast<double>(n)); }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(6.283185307179586 * u2);
    has_spare_ = true;
    return r * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace gb::bb
