#include "goca/ops.h"

#include "harness/core/capture.h"

#include "harness/core/errors.h"
#include "harness/core/shape.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <map>

namespace gb::goca {
namespace {

at::Tensor f32(const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); }

int64_t side_of(int64_t pixels, const char* what) {
  const int64_t s = gb::square_side(pixels);
  if (s < 0) fail("{}: {} pixels is not a square grid", what, pixels);
  return s;
}

}  // namespace

at::Tensor matmul_nt(const at::Tensor& x, const at::Tensor& w) {
  // at::mm: PyTorch's own MKL GEMM is as fast as oneDNN's linear for these shapes (docs/performance.md); the oneDNN
  // route existed only for Debian's LibTorch, whose at::mm called the reference BLAS.
  return at::mm(x, w.t());
}

namespace {

// Chunk size over pixels so that a [chunk, H, Dout] fp32 temporary stays near 64 MiB.
int64_t pixel_chunk(int64_t pixels, int64_t heads, int64_t dout) {
  const int64_t budget = int64_t(16) << 20;  // floats
  int64_t c = std::max<int64_t>(1, budget / std::max<int64_t>(1, heads * dout));
  return std::min(c, pixels);
}

// o_h(p) = nan_to_num(Z_h(p) W_h^T) for pixels [p0, p1): [n, H, Dout].
at::Tensor per_head_outputs(const at::Tensor& Z, const at::Tensor& W, int64_t heads, int64_t p0, int64_t p1,
                            double limit) {
  const int64_t n = p1 - p0, hd = Z.size(1), d = hd / heads, dout = W.size(0);
  auto oh = at::empty({n, heads, dout}, Z.options());
  auto Zc = Z.slice(0, p0, p1);
  for (int64_t h = 0; h < heads; ++h)
    oh.select(1, h).copy_(matmul_nt(Zc.narrow(1, h * d, d), W.narrow(1, h * d, d)));  // Z_h W_h^T [n, Dout]
  return at::nan_to_num_(oh, 0.0, limit, -limit);
}

}  // namespace

double max_finite(at::ScalarType dtype) {
  switch (dtype) {
    case at::kHalf: return 65504.0;
    case at::kBFloat16: return 3.3895313892515355e38;
    default: return static_cast<double>(std::numeric_limits<float>::max());
  }
}

at::Tensor average_head_weights(int64_t pixels, int64_t heads, const at::TensorOptions& options) {
  // ones / ones.sum(dim=1): 1/H in fp32
  return at::full({pixels, heads}, 1.0f / static_cast<float>(heads), options.dtype(at::kFloat));
}

at::Tensor value_weight_sigma(const at::Tensor& value, const at::Tensor& weight, int64_t heads,
                              at::ScalarType capture_dtype) {
  auto V = f32(value), W = f32(weight);
  const int64_t dout = W.size(0), d = W.size(1) / heads;
  if (V.dim() != 3 || V.size(0) != heads || V.size(2) != d)
    fail("special-value has shape {}, expected [{}, T, {}]", gb::shape_str(V.sizes()), heads, d);
  auto Wh = W.view({dout, heads, d}).permute({1, 2, 0});  // [H, d, Dout]
  auto vw = at::nan_to_num(at::bmm(V, Wh), 0.0, max_finite(capture_dtype), -max_finite(capture_dtype));
  return at::linalg_matrix_norm(vw, 2, {-2, -1}, false, c10::nullopt);  // [H]
}

at::Tensor head_weights(HeadMethod method, int64_t heads, const at::Tensor& post_value, const at::Tensor& weight,
                        const at::Tensor& value, at::ScalarType capture_dtype) {
  const int64_t P = post_value.size(0);
  if (method == HeadMethod::Average) return average_head_weights(P, heads, post_value.options());
  auto Z = f32(post_value).contiguous(), W = f32(weight).contiguous();
  const int64_t hd = Z.size(1), dout = W.size(0);
  if (hd % heads != 0) fail("special-post-value width {} is not a multiple of {} heads", hd, heads);
  if (W.size(1) != hd) fail("special-weight has shape {}, expected [Dout, {}]", gb::shape_str(W.sizes()), hd);
  const int64_t d = hd / heads;
  const double limit = max_finite(capture_dtype);

  at::Tensor o;  // [P, Dout], the block output Z W^T (no nan_to_num); not needed by the dot fast path
  auto block_output = [&] {
    if (!o.defined()) o = matmul_nt(Z, W);
    return o;
  };

  at::Tensor u;  // unnormalised per-head scores [P, H]
  const bool dot =
      method == HeadMethod::DotProduct || method == HeadMethod::DotProductNoClamp || method == HeadMethod::DotProductVW;
  if (dot) {
    // <o_h(p), o(p)> = Z_h(p) . (o(p) W_h): two [P, Hd, Dout] products instead of H per-head ones. Exact
    // unless nan_to_num would change some o_h, i.e. unless an input is non-finite or |o_h| can reach the
    // capture dtype's bound; Cauchy-Schwarz bounds |o_h(p)_c| <= |Z_h(p)| * max_c |W_h[c]|.
    bool fast = at::isfinite(Z).all().item<bool>() && at::isfinite(W).all().item<bool>();
    if (fast) {
      auto zn = at::linalg_vector_norm(Z.view({P, heads, d}), 2, {2}, false, c10::nullopt);             // [P, H]
      auto wn = at::linalg_vector_norm(W.view({dout, heads, d}), 2, {2}, false, c10::nullopt).amax(0);  // [H]
      double bound = (zn * wn).max().item<double>();
      fast = std::isfinite(bound) && bound * 1.001 < limit;
    }
    if (fast) {
      // q = o W = Z (W^T W): through the Gram matrix G = W^T W when that is cheaper (P large), else via o.
      at::Tensor q;
      const double via_gram = double(hd) * hd * dout + double(P) * hd * hd, via_o = 2.0 * P * hd * dout;
      if (via_gram < via_o) {
        auto Wt = W.t().contiguous();  // [Hd, Dout]
        auto G = matmul_nt(Wt, Wt);    // [Hd, Hd], symmetric
        q = matmul_nt(Z, G);           // Z G^T = Z G
      } else {
        q = matmul_nt(block_output(), W.t());  // o W  [P, Hd]
      }
      u = (Z * q).view({P, heads, d}).sum(2);  // [P, H]
    } else {
      u = at::empty({P, heads}, Z.options());
      const int64_t chunk = pixel_chunk(P, heads, dout);
      for (int64_t p0 = 0; p0 < P; p0 += chunk) {
        const int64_t p1 = std::min(P, p0 + chunk);
        auto oh = per_head_outputs(Z, W, heads, p0, p1, limit);  // [n, H, Dout]
        u.slice(0, p0, p1).copy_(at::bmm(oh, block_output().slice(0, p0, p1).unsqueeze(-1)).squeeze(-1));
      }
    }
  } else {
    u = at::empty({P, heads}, Z.options());
    const int64_t chunk = pixel_chunk(P, heads, dout);
    for (int64_t p0 = 0; p0 < P; p0 += chunk) {
      const int64_t p1 = std::min(P, p0 + chunk);
      auto oh = per_head_outputs(Z, W, heads, p0, p1, limit);
      if (method == HeadMethod::L2Norm) {
        u.slice(0, p0, p1).copy_(at::linalg_vector_norm(oh, 2, {2}, false, c10::nullopt));
      } else {  // Cosine, CosineVW
        u.slice(0, p0, p1).copy_(at::cosine_similarity(oh, block_output().slice(0, p0, p1).unsqueeze(1), 2, 1e-8));
      }
    }
  }

  switch (method) {
    case HeadMethod::L2Norm:
    case HeadMethod::Cosine:
    case HeadMethod::DotProductNoClamp: return u / u.sum(1, true);
    case HeadMethod::DotProduct: {
      auto c = u.clamp_min(0);
      return at::nan_to_num(c / c.sum(1, true), 1.0, c10::nullopt, c10::nullopt);
    }
    case HeadMethod::CosineVW: {
      auto s = u * value_weight_sigma(value, W, heads, capture_dtype).unsqueeze(0);
      return s / s.sum(1, true);
    }
    case HeadMethod::DotProductVW: {
      auto s = u.clamp_min(0) * value_weight_sigma(value, W, heads, capture_dtype).unsqueeze(0);
      return s / s.sum(1, true);
    }
    case HeadMethod::Average: break;
  }
  return average_head_weights(P, heads, post_value.options());
}

at::Tensor aggregate_heads(const at::Tensor& maps, const at::Tensor& weights) {
  return gb::head_weighted_sum(maps, weights);  // shared with the recorders' cross-map head means
}

// ----- resizing -----------------------------------------------------------------------------------

at::Tensor nearest_source_indices(int64_t in, int64_t out, const at::Device& device) {
  auto idx = at::arange(in, at::TensorOptions().dtype(at::kFloat).device(device)).view({1, 1, 1, in});
  auto sel = at::upsample_nearest2d(idx, {1, out}, c10::nullopt, c10::nullopt);
  return sel.view({out}).to(at::kLong);
}

namespace {
// Rows `rows` ([n] indices into the s^2 queries) of a pairwise map [s^2, s^2], keys resized to S x S: [n, S^2].
at::Tensor resized_rows(const at::Tensor& pairwise, const at::Tensor& rows, int64_t s, int64_t S) {
  auto sel = f32(pairwise).index_select(0, rows);  // [n, s^2]
  const int64_t n = sel.size(0);
  if (s == S) return sel;
  return at::upsample_bilinear2d(sel.view({n, 1, s, s}), {S, S}, false, c10::nullopt, c10::nullopt).view({n, S * S});
}
// Query index (into s^2) of each of the S^2 output queries under 'nearest'.
at::Tensor query_selection(int64_t s, int64_t S, const at::Device& device) {
  auto q = nearest_source_indices(s, S, device);  // [S]
  return (q.unsqueeze(1) * s + q.unsqueeze(0)).reshape({S * S});
}
}  // namespace

at::Tensor resize_pairwise(const at::Tensor& pairwise, int64_t out_side) {
  const int64_t s = side_of(pairwise.size(0), "pairwise map");
  if (s == out_side) return f32(pairwise);
  return resized_rows(pairwise, query_selection(s, out_side, pairwise.device()), s, out_side);
}

// ----- §C ---------------------------------------------------------------------------------------

at::Tensor reference_attention(const at::Tensor& ref, RefMode mode) {
  if (ref.dim() != 3 || ref.size(1) != ref.size(2))
    fail("reference feature has shape {}, expected [C, r, r]", gb::shape_str(ref.sizes()));
  const int64_t r = ref.size(1);
  at::Tensor X;
  if (mode == RefMode::Paper) {
    X = f32(ref[0]).reshape({r * r, 1});  // channel 0 (quirk Q1)
  } else {
    X = f32(ref).reshape({ref.size(0), r * r}).t();  // [r^2, C]
  }
  if (X.size(1) == 1) return at::softmax(X * X.t(), -1);  // outer product; the scale is 1^-0.5 = 1
  const double alpha = 1.0 / std::sqrt(static_cast<double>(X.size(1)));
  return at::softmax(matmul_nt(X, X).mul_(alpha), -1);
}

LayerScorer::LayerScorer(at::Tensor reference_attention, LayerMethod method)
    : R_(std::move(reference_attention)), method_(method) {
  r_ = side_of(R_.size(0), "reference attention");
}

at::Tensor LayerScorer::score(const at::Tensor& self_mean) const {
  const int64_t s = side_of(self_mean.size(0), "self map");
  if (self_mean.size(1) != self_mean.size(0))
    fail("self map has shape {}, expected [P, P]", gb::shape_str(self_mean.sizes()));
  const int64_t r = r_;
  auto dev = R_.device();
  if (method_ == LayerMethod::DotProductSimilarity) {
    // sum_{q,k} R(q,k) T(q,k) with T(q,:) = K(sel(q),:): pool R's rows by their source query (once per
    // resolution), then one elementwise product over the used source rows only.
    auto it = pooled_.find(s);
    if (it == pooled_.end()) {
      if (s == r) {
        it = pooled_.emplace(s, std::make_pair(at::arange(r * r, R_.options().dtype(at::kLong)), R_)).first;
      } else {
        auto sel = query_selection(s, r, dev);  // [r^2] query of s^2 used by each reference query
        auto uniq = std::get<0>(at::_unique(sel, /*sorted=*/true, /*return_inverse=*/false));
        auto inv = at::searchsorted(uniq, sel);
        auto pooled = at::zeros({uniq.size(0), r * r}, R_.options()).index_add_(0, inv, R_);
        it = pooled_.emplace(s, std::make_pair(uniq, pooled)).first;
      }
    }
    const auto& [uniq, pooled] = it->second;
    auto K = s == r ? f32(self_mean) : resized_rows(self_mean, uniq, s, r);  // [n, r^2]
    return (pooled * K).sum();
  }
  auto sel = query_selection(s, r, dev);        // [r^2] query of s^2 used by each reference query
  auto T = resized_rows(self_mean, sel, s, r);  // [r^2, r^2]
  if (method_ == LayerMethod::Mse) {
    return 1.0 / at::linalg_vector_norm(R_ - T, 2, {1}, false, c10::nullopt).sum();
  }
  if (method_ == LayerMethod::IouLike) {
    auto inter = at::minimum(R_, T).sum();
    auto uni = at::maximum(R_, T).sum();
    return inter / (uni + 1e-4);
  }
  fail("LayerScorer: vanilla layers have no score");
}

at::Tensor normalise_layer_weights(const std::vector<at::Tensor>& scores) {
  auto w = at::stack(scores).to(at::kFloat).clamp_min(0);
  return w / w.sum(0, true);
}

at::Tensor combine_layers(const std::vector<at::Tensor>& maps, const at::Tensor& layer_weights, int64_t S) {
  if (maps.empty()) fail("combine_layers: no layers");
  const int64_t T = maps.front().size(1);
  auto w = f32(layer_weights);
  auto opts = maps.front().options().dtype(at::kFloat);
  at::Tensor total = at::zeros({T, S, S}, opts);
  auto resize = [&](const at::Tensor& pt, int64_t s) {  // [s^2, T] -> [T, S, S]
    auto tss = pt.t().reshape({1, T, s, s});
    if (s == S) return tss.view({T, S, S});
    return at::upsample_bilinear2d(tss, {S, S}, false, c10::nullopt, c10::nullopt).view({T, S, S});
  };
  if (w.dim() == 1) {
    // Resizing is linear: sum the layers of each resolution first, resize once per resolution.
    std::map<int64_t, at::Tensor> by_side;
    for (size_t l = 0; l < maps.size(); ++l) {
      const int64_t s = side_of(maps[l].size(0), "cross map");
      auto term = f32(maps[l]) * w[static_cast<int64_t>(l)];
      auto it = by_side.find(s);
      if (it == by_side.end()) by_side.emplace(s, term);
      else it->second.add_(term);
    }
    for (auto& [s, acc] : by_side) total.add_(resize(acc, s));
  } else {
    for (size_t l = 0; l < maps.size(); ++l) {
      const int64_t s = side_of(maps[l].size(0), "cross map");
      total.add_(resize(f32(maps[l]), s) * w[static_cast<int64_t>(l)].unsqueeze(0));
    }
  }
  total.clamp_min_(0);
  return total / total.sum(0, true);
}

// ----- §D ---------------------------------------------------------------------------------------

at::Tensor token_channels(const at::Tensor& agg, const gb::TokenGroups& groups, MultiToken mode) {
  const int64_t T = agg.size(0);
  auto dev = agg.device();
  auto index = [&](const std::vector<int64_t>& ids, const char* what) {
    for (auto t : ids)
      if (t < 0 || t >= T) fail("token id {} in {} is outside [0, {})", t, what, T);
    return at::tensor(ids, at::TensorOptions().dtype(at::kLong)).to(dev);
  };
  std::vector<at::Tensor> ch;
  auto reduce = [&](const std::vector<int64_t>& ids, const char* what) {
    auto sel = agg.index_select(0, index(ids, what));
    ch.push_back(mode == MultiToken::Sum ? sel.sum(0) : sel.mean(0));
  };
  for (const auto& o : groups.objects) reduce(o.tokens, "objects");
  for (const auto& b : groups.background_objects) reduce(b, "background_objects");
  ch.push_back(agg.index_select(0, index(groups.rescaling_token_ids, "rescaling_token_ids")).sum(0));
  return at::stack(ch);
}

at::Tensor gaussian_blur5(const at::Tensor& maps) {
  // torchvision: x = linspace(-2, 2, 5); pdf = exp(-0.5 (x / sigma)^2); k = pdf / sum; K = k k^T; reflect pad 2.
  auto opts = maps.options().dtype(at::kFloat);
  auto x = at::linspace(-2.0, 2.0, 5, opts.device(at::kCPU));
  auto pdf = at::exp(-0.5 * (x / 1.1).pow(2));
  auto k1 = pdf / pdf.sum();
  auto k2 = at::mm(k1.unsqueeze(1), k1.unsqueeze(0)).to(maps.device());
  const int64_t C = maps.size(0);
  auto kernel = k2.expand({C, 1, 5, 5});
  auto padded = at::reflection_pad2d(f32(maps).unsqueeze(0), {2, 2, 2, 2});
  const std::vector<int64_t> one{1, 1}, zero{0, 0};
  return at::conv2d(padded, kernel, at::Tensor(), at::IntArrayRef(one), at::IntArrayRef(zero), at::IntArrayRef(one), C)
      .squeeze(0);
}

at::Tensor minmax(const at::Tensor& maps) {
  auto amin = maps.amin({1, 2}, true), amax = maps.amax({1, 2}, true);
  return (maps - amin) / (amax - amin);
}

at::Tensor rescale(const at::Tensor& channels, RescaleMethod method) {
  const int64_t C = channels.size(0);
  auto X = f32(channels).narrow(0, 0, C - 1);
  auto rho = f32(channels).narrow(0, C - 1, 1);
  auto maxnorm = [](const at::Tensor& a) { return a / a.amax({1, 2}, true); };
  auto plus = [](const at::Tensor& a) { return minmax(gaussian_blur5(a)); };
  switch (method) {
    case RescaleMethod::Raw: return X.clone();
    case RescaleMethod::PerTokenRenorm: return maxnorm(X);
    case RescaleMethod::PerTokenRenormPlus: return plus(X);
    case RescaleMethod::Sum1: return X / rho;
    case RescaleMethod::Sum1Renorm: return maxnorm(X / rho);
    case RescaleMethod::Sum1RenormPlus: return plus(X / rho);
    case RescaleMethod::Sum1RenormXRaw: return maxnorm(X / rho) * X;
    case RescaleMethod::Sum1RenormPlusXRaw: return plus(X / rho) * X;
    case RescaleMethod::Sum1RenormPlusXRawRenorm: return plus(plus(X / rho) * X);
  }
  return X;
}

at::Tensor merge_background(const at::Tensor& maps, int64_t objects) {
  auto obj = maps.narrow(0, 0, objects);
  const int64_t B = maps.size(0) - objects;
  at::Tensor bg =
      B > 0 ? maps.narrow(0, objects, B).amax(0, true) : at::zeros({1, maps.size(1), maps.size(2)}, maps.options());
  return at::cat({obj, bg}, 0);
}

// ----- §E ---------------------------------------------------------------------------------------

at::Tensor aggregate_self(const std::vector<at::Tensor>& self_means, int64_t S) {
  if (self_means.empty()) fail("aggregate_self: no self layers");
  at::Tensor acc;
  for (const auto& m : self_means) {
    auto resized = resize_pairwise(m, S);
    if (!acc.defined()) acc = resized.clone();
    else acc.add_(resized);
  }
  return acc.div_(static_cast<double>(self_means.size()));
}

at::Tensor propagate(const at::Tensor& maps, const at::Tensor& affinity, int64_t order) {
  const int64_t N = maps.size(0), S = maps.size(1);
  auto m = f32(maps);
  at::Tensor support;
  int64_t n = N;
  if (N > 0) {
    auto last = m[N - 1];
    // amin() == 0 and amax() == 0 (a NaN makes both comparisons false)
    if (last.amin().item<float>() == 0.0f && last.amax().item<float>() == 0.0f) {
      support = last.unsqueeze(0);
      n = N - 1;
    }
  }
  at::Tensor out;
  if (n > 0) {
    auto A = f32(affinity).reshape({S * S, S * S});
    auto x = m.narrow(0, 0, n).reshape({n, S * S});  // rows are maps: x <- x A^T is m <- A m
    for (int64_t i = 0; i < order; ++i) x = matmul_nt(x, A);
    out = minmax(x.reshape({n, S, S}));
  } else {
    out = m.narrow(0, 0, 0);
  }
  return support.defined() ? at::cat({out, support}, 0) : out;
}

}  // namespace gb::goca
