// Permutohedral lattice (see permutohedral.h). Written from Adams et al. 2010, §3–§4:
//   1. scale the features so that the lattice blur approximates a unit-variance Gaussian and embed them in
//      the hyperplane H_d = {x in R^{d+1} : sum x = 0} ("elevation", E p);
//   2. find the enclosing simplex: round every coordinate to the nearest multiple of d+1 (a remainder-0
//      point), fix the coordinate sum by re-assigning the coordinates with the largest/smallest residuals,
//      and read the simplex's vertices off the residuals' ranks;
//   3. barycentric weights from the sorted residuals;
//   4. splat, blur with [1/2, 1, 1/2] along the d+1 lattice directions, slice.
#include "baselines/permutohedral.h"

#include "harness/core/errors.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace gb::baselines {
namespace {

// Open-addressing hash table (linear probing) from d-dimensional integer keys to dense vertex ids in
// insertion order. Each slot keeps 32 bits of the key's hash next to the id, so a probe touches the key
// array only on a probable hit.
class KeyTable {
 public:
  KeyTable(int d, int64_t expected) : d_(d) {
    size_t cap = 64;
    while (cap < static_cast<size_t>(2 * expected)) cap <<= 1;
    slots_.assign(cap, Slot{0, -1});
    keys_.reserve(static_cast<size_t>(expected) * static_cast<size_t>(d));
  }

  int64_t size() const { return count_; }
  const int32_t* key(int64_t id) const { return keys_.data() + id * d_; }

  uint64_t hash(const int32_t* k) const {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < d_; ++i) {
      h ^= static_cast<uint32_t>(k[i]);
      h *= 0xff51afd7ed558ccdull;
      h ^= h >> 31;
    }
    // splitmix64 finaliser
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
  }

  // Lookups are memory-latency bound (the table outgrows the caches for large images): callers compute
  // hashes ahead and prefetch the slots.
  void prefetch(uint64_t h) const { __builtin_prefetch(&slots_[static_cast<size_t>(h) & (slots_.size() - 1)]); }

  // The id of `k` (hash `h`), inserting it.
  int64_t insert(const int32_t* k, uint64_t h) {
    if (2 * (count_ + 1) > static_cast<int64_t>(slots_.size())) grow();
    const auto tag = static_cast<uint32_t>(h >> 32);
    const size_t mask = slots_.size() - 1;
    for (size_t i = static_cast<size_t>(h) & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) {
        keys_.insert(keys_.end(), k, k + d_);
        slots_[i] = Slot{tag, static_cast<int32_t>(count_)};
        return count_++;
      }
      if (slot.tag == tag && same(key(slot.id), k)) return slot.id;
    }
  }

  // The id of `k` (hash `h`), or -1. Read-only: safe to call from several threads.
  int64_t find(const int32_t* k, uint64_t h) const {
    const auto tag = static_cast<uint32_t>(h >> 32);
    const size_t mask = slots_.size() - 1;
    for (size_t i = static_cast<size_t>(h) & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.tag == tag && same(key(slot.id), k)) return slot.id;
    }
  }

 private:
  struct Slot {
    uint32_t tag;
    int32_t id;
  };
  int d_;
  int64_t count_ = 0;
  std::vector<Slot> slots_;
  std::vector<int32_t> keys_;

  bool same(const int32_t* a, const int32_t* b) const {
    for (int i = 0; i < d_; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2, Slot{0, -1});
    old.swap(slots_);
    const size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.id < 0) continue;
      const uint64_t h = hash(key(s.id));
      size_t i = static_cast<size_t>(h) & mask;
      while (slots_[i].id >= 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
};

}  // namespace

PermutohedralLattice::PermutohedralLattice(const float* features, int64_t n, int d) : n_(n), d_(d) {
  if (d < 1 || d > 16) throw std::invalid_argument("PermutohedralLattice: feature dimension must be in [1, 16]");
  if (n < 0) throw std::invalid_argument("PermutohedralLattice: negative point count");
  const int d1 = d + 1;
  vertex_.resize(static_cast<size_t>(n * d1));
  weight_.resize(static_cast<size_t>(n * d1));

  // Per-axis scale: the lattice's blur has variance (d+1)^2 * 2/3 along the hyperplane in these units
  // (Adams et al. p.6), and E's diagonal part is 1/sqrt((i+1)(i+2)) (p.5). Computed in double, stored
  // as float, as densecrf does.
  const float inv_std = static_cast<float>(std::sqrt(2.0 / 3.0) * d1);
  std::vector<float> scale(static_cast<size_t>(d));
  for (int i = 0; i < d; ++i) scale[i] = static_cast<float>(1.0 / std::sqrt(double((i + 2) * (i + 1))) * inv_std);
  const float inv_d1 = 1.0f / static_cast<float>(d1);
  const float f_d1 = static_cast<float>(d1);

  // canonical[k][r]: offset of corner k of the canonical simplex for the coordinate of rank r.
  std::vector<int32_t> canonical(static_cast<size_t>(d1 * d1));
  for (int k = 0; k <= d; ++k)
    for (int r = 0; r <= d; ++r) canonical[k * d1 + r] = (r <= d - k) ? k : k - d1;

  // Phase 1 (parallel over points): the d+1 enclosing-simplex corners (their lattice keys) and weights.
  std::vector<int32_t> keys(static_cast<size_t>(n * d1 * d));
  at::parallel_for(0, n, 4096, [&](int64_t pb, int64_t pe) {
    std::vector<float> elevated(d1), base(d1), bary(d + 2);
    std::vector<int32_t> rank(d1);
    for (int64_t p = pb; p < pe; ++p) {
      const float* f = features + p * d;
      // Elevation y = E x into H_d: y_j = sum_{k>=j} x_k - j x_{j-1}, y_0 = sum_k x_k.
      float tail = 0.0f;
      for (int j = d; j > 0; --j) {
        const float x = f[j - 1] * scale[j - 1];
        elevated[j] = tail - static_cast<float>(j) * x;
        tail += x;
      }
      elevated[0] = tail;

      // Nearest multiple of d+1 per coordinate (round half to even, like SSE's cvtps2dq), and how far the
      // rounded point is off the hyperplane (in units of d+1).
      int coord_sum = 0;
      for (int i = 0; i <= d; ++i) {
        const float q = std::nearbyint(elevated[i] * inv_d1);
        base[i] = q * f_d1;
        coord_sum += static_cast<int>(q);
      }

      // Rank of each residual in decreasing order; ties rank the lower index first.
      std::fill(rank.begin(), rank.end(), 0);
      for (int i = 0; i < d; ++i) {
        const float ri = elevated[i] - base[i];
        for (int j = i + 1; j <= d; ++j) {
          if (ri < elevated[j] - base[j]) ++rank[i];
          else ++rank[j];
        }
      }
      // Bring the point back onto the hyperplane: shift ranks by the excess and move the wrapped
      // coordinates to the neighbouring multiple of d+1.
      for (int i = 0; i <= d; ++i) {
        rank[i] += coord_sum;
        if (rank[i] < 0) {
          rank[i] += d1;
          base[i] += f_d1;
        } else if (rank[i] > d) {
          rank[i] -= d1;
          base[i] -= f_d1;
        }
      }

      // Barycentric coordinates from the sorted residuals (Adams et al. p.10).
      std::fill(bary.begin(), bary.end(), 0.0f);
      for (int i = 0; i <= d; ++i) {
        const float v = (elevated[i] - base[i]) * inv_d1;
        bary[d - rank[i]] += v;
        bary[d - rank[i] + 1] -= v;
      }
      bary[0] += 1.0f + bary[d + 1];

      // The d+1 corners: remainder-0 point plus the canonical simplex's corner k, permuted by rank.
      for (int k = 0; k <= d; ++k) {
        int32_t* key = keys.data() + (p * d1 + k) * d;
        for (int i = 0; i < d; ++i) key[i] = static_cast<int32_t>(base[i]) + canonical[k * d1 + rank[i]];
        weight_[p * d1 + k] = bary[k];
      }
    }
  });

  // Phase 2 (sequential): vertex ids, hashing ahead of the inserts.
  KeyTable table(d, n * d1 / 2 + 16);
  {
    const int64_t total = n * d1;
    std::vector<uint64_t> hashes(static_cast<size_t>(total));
    at::parallel_for(0, total, 16384, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hashes[i] = table.hash(keys.data() + i * d);
    });
    constexpr int64_t kAhead = 16;
    for (int64_t e = 0; e < total; ++e) {
      if (e + kAhead < total) table.prefetch(hashes[e + kAhead]);
      vertex_[e] = static_cast<int32_t>(table.insert(keys.data() + e * d, hashes[e]));
    }
  }
  std::vector<int32_t>().swap(keys);
  m_ = table.size();

  // Gather lists for the splat, in point order.
  splat_begin_.assign(static_cast<size_t>(m_ + 1), 0);
  for (int64_t e = 0; e < n * d1; ++e) ++splat_begin_[vertex_[e] + 1];
  for (int64_t m = 0; m < m_; ++m) splat_begin_[m + 1] += splat_begin_[m];
  splat_src_.resize(static_cast<size_t>(n * d1));
  {
    std::vector<int64_t> fill(splat_begin_.begin(), splat_begin_.end() - 1);
    for (int64_t e = 0; e < n * d1; ++e) splat_src_[fill[vertex_[e]]++] = e;
  }

  // Neighbours along lattice direction j: key -/+ (1,...,1) with coordinate j moved by +/- d instead
  // (the direction vector (d+1) e_j - 1 restricted to the first d coordinates). Read-only lookups, done
  // in blocks of vertices whose 2(d+1) neighbour keys are hashed and prefetched before they are probed.
  neighbors_.resize(static_cast<size_t>(d1 * m_ * 2));
  const KeyTable& lookup = table;
  at::parallel_for(0, m_, 8192, [&](int64_t mb, int64_t me) {
    constexpr int64_t kBlock = 8;
    const int per_vertex = 2 * d1;
    std::vector<int32_t> nkeys(static_cast<size_t>(kBlock * per_vertex * d));
    std::vector<uint64_t> nhash(static_cast<size_t>(kBlock * per_vertex));
    for (int64_t b0 = mb; b0 < me; b0 += kBlock) {
      const int64_t cnt = std::min(kBlock, me - b0);
      for (int64_t t = 0; t < cnt; ++t) {
        const int32_t* k = lookup.key(b0 + t);
        for (int j = 0; j <= d; ++j)
          for (int side = 0; side < 2; ++side) {
            const int64_t slot = t * per_vertex + j * 2 + side;
            int32_t* nk = nkeys.data() + slot * d;
            const int32_t step = side == 0 ? -1 : 1;
            for (int i = 0; i < d; ++i) nk[i] = k[i] + step;
            if (j < d) nk[j] = k[j] - step * d;
            nhash[slot] = lookup.hash(nk);
            lookup.prefetch(nhash[slot]);
          }
      }
      for (int64_t t = 0; t < cnt; ++t)
        for (int j = 0; j <= d; ++j)
          for (int side = 0; side < 2; ++side) {
            const int64_t slot = t * per_vertex + j * 2 + side;
            neighbors_[(j * m_ + b0 + t) * 2 + side] =
                static_cast<int32_t>(lookup.find(nkeys.data() + slot * d, nhash[slot]));
          }
    }
  });
}

void PermutohedralLattice::filter(const float* in, float* out, int v, bool reverse) const {
  const int d1 = d_ + 1;
  const int64_t m = m_;
  // Vertex values, with one extra zero row (index m) standing for absent neighbours.
  std::vector<float> cur(static_cast<size_t>((m + 1) * v), 0.0f);
  std::vector<float> nxt(static_cast<size_t>((m + 1) * v), 0.0f);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max(1, v));

  // Splat (gather form; contributions summed in point order).
  at::parallel_for(0, m, grain, [&](int64_t b, int64_t e) {
    for (int64_t vert = b; vert < e; ++vert) {
      float* dst = cur.data() + vert * v;
      for (int64_t s = splat_begin_[vert]; s < splat_begin_[vert + 1]; ++s) {
        const int64_t entry = splat_src_[s];
        const float w = weight_[entry];
        const float* src = in + (entry / d1) * v;
        for (int c = 0; c < v; ++c) dst[c] += w * src[c];
      }
    }
  });

  // Blur along each lattice direction.
  for (int step = 0; step <= d_; ++step) {
    const int j = reverse ? d_ - step : step;
    const int32_t* nb = neighbors_.data() + static_cast<int64_t>(j) * m * 2;
    at::parallel_for(0, m, grain, [&](int64_t b, int64_t e) {
      for (int64_t vert = b; vert < e; ++vert) {
        const int64_t n1 = nb[vert * 2] < 0 ? m : nb[vert * 2];
        const int64_t n2 = nb[vert * 2 + 1] < 0 ? m : nb[vert * 2 + 1];
        const float* o = cur.data() + vert * v;
        const float* a = cur.data() + n1 * v;
        const float* c2 = cur.data() + n2 * v;
        float* dst = nxt.data() + vert * v;
        for (int c = 0; c < v; ++c) dst[c] = o[c] + 0.5f * (a[c] + c2[c]);
      }
    });
    cur.swap(nxt);
  }

  // Slice. densecrf multiplies by alpha after the weight for 1–2 values per point and folds alpha into
  // the weight otherwise (its SSE path); both orders are kept so the float rounding matches.
  const float alpha = 1.0f / (1.0f + std::pow(2.0f, static_cast<float>(-d_)));
  const bool fold_alpha = v > 2;
  at::parallel_for(0, n_, std::max<int64_t>(1, grain / d1), [&](int64_t b, int64_t e) {
    std::vector<float> acc(static_cast<size_t>(v));
    for (int64_t p = b; p < e; ++p) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int k = 0; k < d1; ++k) {
        const float w = weight_[p * d1 + k];
        const float* src = cur.data() + static_cast<int64_t>(vertex_[p * d1 + k]) * v;
        if (fold_alpha) {
          const float wa = w * alpha;
          for (int c = 0; c < v; ++c) acc[c] += wa * src[c];
        } else {
          for (int c = 0; c < v; ++c) acc[c] += w * src[c] * alpha;
        }
      }
      std::memcpy(out + p * v, acc.data(), sizeof(float) * static_cast<size_t>(v));
    }
  });
}

}  // namespace gb::baselines
