#include "goca/segmentor.h"

#include "goca/ops.h"
#include "harness/core/errors.h"
#include "harness/core/shape.h"

#include <ATen/ATen.h>

#include <cmath>
#include <utility>

namespace gb::goca {
namespace {

const at::Tensor& get(const gb::TensorMap& sample, const std::string& key, const char* why) {
  auto it = sample.find(key);
  if (it == sample.end()) fail("capture has no tensor '{}' (needed for {})", key, why);
  return it->second;
}

void expect_rank(const at::Tensor& t, int64_t rank, const std::string& key, const char* layout) {
  if (t.dim() != rank) fail("capture tensor '{}' has shape {}, expected {}", key, gb::shape_str(t.sizes()), layout);
  if (!at::isFloatingType(t.scalar_type()))
    fail("capture tensor '{}' has dtype {}, expected F16, BF16 or F32", key, c10::toString(t.scalar_type()));
}

int64_t square_side(int64_t pixels, const std::string& key) {
  const int64_t s = gb::square_side(pixels);
  if (s < 0) fail("capture tensor '{}': {} pixels is not a square grid", key, pixels);
  return s;
}

// Head mean of a self map [h, P, P] -> [P, P] (fp32), checking the layout.
at::Tensor self_mean(const gb::TensorMap& sample, const std::string& key, const char* why) {
  const auto& t = get(sample, key, why);
  expect_rank(t, 3, key, "[H, P, P]");
  if (t.size(1) != t.size(2))
    fail("capture tensor '{}' has shape {}, expected [H, P, P]", key, gb::shape_str(t.sizes()));
  square_side(t.size(1), key);
  if (t.size(0) == 1) return t[0].to(at::kFloat);
  return t.to(at::kFloat).mean(0);
}

}  // namespace

Segmentor::Segmentor(MethodConfig config) : config_(std::move(config)) { config_.validate(); }

gb::CaptureSpec Segmentor::required_capture() const {
  gb::CaptureSpec spec;
  for (const auto& l : config_.layers) {
    spec.add(l);
    if (config_.head_method != HeadMethod::Average) {
      spec.add(gb::sibling_key(l, gb::CaptureTensor::special_value));
      spec.add(gb::sibling_key(l, gb::CaptureTensor::special_post_value));
      spec.add(gb::sibling_key(l, gb::CaptureTensor::special_weight));
    }
    if (config_.layer_method != LayerMethod::Vanilla) spec.add(gb::self_key_for_cross(l));
  }
  if (config_.layer_method != LayerMethod::Vanilla) spec.add(config_.ref_layer);
  for (const auto& l : config_.self_layers) spec.add(l);
  spec.self_map_head_mean = true;
  // average: the cross maps enter only through their 1/H head sum, which the backbone can store instead.
  spec.cross_map_head_mean = config_.head_method == HeadMethod::Average;
  return spec;
}

Aggregation Segmentor::aggregate(const gb::TensorMap& sample) const {
  const auto& cfg = config_;
  const int64_t S = cfg.output_size;
  Aggregation out;

  // ----- §B head aggregation, per layer -----
  std::vector<at::Tensor> layer_maps;  // [P_l, T] fp32
  int64_t T = -1;
  for (const auto& key : cfg.layers) {
    const auto& A = get(sample, key, "a cross layer");
    expect_rank(A, 3, key, "[H, P, T]");
    square_side(A.size(1), key);
    if (T < 0) T = A.size(2);
    else if (A.size(2) != T)
      fail("capture tensor '{}' has {} tokens, but '{}' has {}", key, A.size(2), cfg.layers.front(), T);
    const int64_t H = A.size(0), P = A.size(1);
    const std::string value_key = gb::sibling_key(key, gb::CaptureTensor::special_value);
    at::Tensor w;
    if (cfg.head_method == HeadMethod::Average || sample.count(value_key) == 0) {
      w = average_head_weights(P, H, A.options());  // force-average when the special value is missing
    } else {
      const auto& V = get(sample, value_key, "head weights");
      const std::string zk = gb::sibling_key(key, gb::CaptureTensor::special_post_value),
                        wk = gb::sibling_key(key, gb::CaptureTensor::special_weight);
      const auto& Z = get(sample, zk, "head weights");
      const auto& W = get(sample, wk, "head weights");
      expect_rank(V, 3, value_key, "[H, T, d]");
      expect_rank(Z, 2, zk, "[P, H*d]");
      expect_rank(W, 2, wk, "[Dout, H*d]");
      if (V.size(0) != H) fail("capture tensor '{}' has {} heads, but '{}' has {}", value_key, V.size(0), key, H);
      if (Z.size(0) != P) fail("capture tensor '{}' has {} pixels, but '{}' has {}", zk, Z.size(0), key, P);
      if (Z.size(1) != H * V.size(2))
        fail("capture tensor '{}' has width {}, expected H*d = {}*{}", zk, Z.size(1), H, V.size(2));
      if (W.size(1) != Z.size(1))
        fail("capture tensor '{}' has shape {}, expected [Dout, {}]", wk, gb::shape_str(W.sizes()), Z.size(1));
      w = head_weights(cfg.head_method, H, Z, W, V, Z.scalar_type());
    }
    out.head_weights[key] = w;
    layer_maps.push_back(aggregate_heads(A, w));
  }

  // ----- §C layer weights -----
  const int64_t L = static_cast<int64_t>(cfg.layers.size());
  at::Tensor scalar_weights;  // [L]
  if (cfg.layer_method == LayerMethod::Vanilla) {
    // ones (r x r) nearest-resized to S x S, normalised: 1/L at every pixel. The reference/target pair the
    // paper's code also computes does not enter the result and is skipped.
    scalar_weights = at::full({L}, 1.0f / static_cast<float>(L), layer_maps.front().options());
    out.layer_weights = at::full({L, S, S}, 1.0f / static_cast<float>(L), layer_maps.front().options());
  } else {
    const auto& F = get(sample, cfg.ref_layer, "the reference pseudo self-attention (ref_layer)");
    expect_rank(F, 3, cfg.ref_layer, "[C, r, r]");
    if (F.size(1) != F.size(2))
      fail("capture tensor '{}' has shape {}, expected [C, r, r]", cfg.ref_layer, gb::shape_str(F.sizes()));
    LayerScorer scorer(reference_attention(F, cfg.ref_mode), cfg.layer_method);
    std::vector<at::Tensor> scores;
    for (const auto& key : cfg.layers) {
      auto self = self_mean(sample, gb::self_key_for_cross(key), "the layer target of a cross layer");
      if (self.size(0) != layer_maps[scores.size()].size(0))
        fail("capture tensor '{}' has {} pixels, but '{}' has {}", gb::self_key_for_cross(key), self.size(0), key,
             layer_maps[scores.size()].size(0));
      scores.push_back(scorer.score(self));
    }
    scalar_weights = normalise_layer_weights(scores);
    out.layer_weights = scalar_weights;
  }
  out.maps = combine_layers(layer_maps, scalar_weights, S);  // [T, S, S]
  return out;
}

at::Tensor Segmentor::affinity(const gb::TensorMap& sample) const {
  if (config_.self_layers.empty()) fail("method config has no self_layers (needed for affinity propagation)");
  std::vector<at::Tensor> selfs;
  for (const auto& key : config_.self_layers) selfs.push_back(self_mean(sample, key, "affinity propagation"));
  return aggregate_self(selfs, config_.output_size);
}

SegmentOutput Segmentor::run(const gb::TensorMap& sample, const gb::TokenGroups& groups) const {
  const auto& cfg = config_;
  SegmentOutput out;
  Aggregation agg = aggregate(sample);  // §B, §C
  out.head_weights = std::move(agg.head_weights);
  out.layer_weights = agg.layer_weights;
  out.aggregated = agg.maps.permute({1, 2, 0}).contiguous();

  // ----- tokens, rescaling, background -----
  auto channels = token_channels(agg.maps, groups, cfg.multi_token);
  auto maps = rescale(channels, cfg.rescale_method);  // [K + B, S, S]
  const int64_t K = static_cast<int64_t>(groups.objects.size());
  out.pre_propagation = cfg.keep_all_objects ? maps : merge_background(maps, K);

  // ----- §E propagation -----
  if (cfg.self_layers.empty()) {
    out.scores = out.pre_propagation;
  } else {
    out.scores = propagate(out.pre_propagation, affinity(sample), cfg.propagation_order);
  }
  return out;
}

std::vector<SegmentOutput> Segmentor::run_batch(const gb::Capture& capture,
                                                const std::vector<gb::TokenGroups>& groups) const {
  if (static_cast<int64_t>(groups.size()) != capture.batch_size)
    fail("run_batch: {} token groups for a batch of {}", groups.size(), capture.batch_size);
  std::vector<SegmentOutput> out;
  out.reserve(groups.size());
  for (int64_t i = 0; i < capture.batch_size; ++i) out.push_back(run(capture.sample(i), groups[i]));
  return out;
}

}  // namespace gb::goca
