#include "harness/backbones/joint_attention.h"

#include "harness/backbones/memory_parts.h"
#include "harness/core/torch_compat.h"

#include <algorithm>
#include <cmath>

namespace gb::bb {

namespace {
std::string cross_map_key(const std::string& location) {
  return capture_key(attention_block(location, AttentionKind::cross), CaptureTensor::map);
}
std::string self_map_key(const std::string& location) {
  return capture_key(attention_block(location, AttentionKind::self), CaptureTensor::map);
}
constexpr CaptureTensor kSpecials[] = {CaptureTensor::special_value, CaptureTensor::special_post_value,
                                       CaptureTensor::special_weight};
}  // namespace

bool joint_block_wanted(CaptureRecorder* rec, const std::string& location, bool with_specials) {
  if (!rec) return false;
  if (rec->wants_key(cross_map_key(location)) || rec->wants_key(self_map_key(location)) ||
      rec->wants_key(attention_output_key(location)))
    return true;
  if (with_specials)
    for (auto t : kSpecials)
      if (rec->wants_key(capture_key(attention_block(location, AttentionKind::cross), t))) return true;
  return false;
}

at::Tensor joint_attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const JointLayout& layout,
                        const std::string& location, CaptureRecorder* rec, int64_t chunk_elements) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), d = q.size(3);
  const int64_t N = layout.image_len, T = layout.text_len;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const std::string self_key = self_map_key(location);
  const bool want_cross = rec && rec->wants_key(cross_map_key(location));
  const bool want_self = rec && rec->wants_key(self_key);
  at::Tensor o;
  if (!want_cross && !want_self) {
    o = compat::scaled_dot_product_attention(q, k, v, std::nullopt, scale);
  } else {
    // Explicit softmax (scores in the model dtype), a group of heads at a time; only the captured slices of P
    // are kept.
    const bool self_mean = want_self && rec->self_map_head_mean();
    const int64_t per_head = B * S * S;
    const int64_t group = std::max<int64_t>(1, std::min<int64_t>(H, chunk_elements / std::max<int64_t>(per_head, 1)));
    auto opts = q.options();
    at::Tensor cross, self_full, self_sum;
    if (want_cross) cross = at::empty({B, H, N, T}, opts);
    if (want_self && !self_mean) self_full = at::empty({B, H, N, N}, opts);
    if (self_mean) self_sum = at::zeros({B, N, N}, opts.dtype(at::kFloat));
    std::vector<at::Tensor> outs;
    for (int64_t h0 = 0; h0 < H; h0 += group) {
      const int64_t g = std::min(group, H - h0);
      at::Tensor qs = q.narrow(1, h0, g), ks = k.narrow(1, h0, g), vs = v.narrow(1, h0, g);
      at::Tensor p = at::softmax(at::matmul(qs, ks.transpose(-2, -1)) * scale, -1);
      at::Tensor img = p.narrow(2, layout.image_start, N);  // image queries
      if (want_cross) cross.narrow(1, h0, g).copy_(img.narrow(3, layout.text_start, T));
      if (want_self && !self_mean) self_full.narrow(1, h0, g).copy_(img.narrow(3, layout.image_start, N));
      if (self_mean) self_sum.add_(img.narrow(3, layout.image_start, N).to(at::kFloat).sum(1));
      outs.push_back(at::matmul(p, vs));
    }
    o = outs.size() == 1 ? outs[0] : at::cat(outs, 1);
    if (want_cross) rec->record_map(attention_block(location, AttentionKind::cross), cross);
    if (want_self) {
      // The head mean goes from fp32 straight to the stored dtype (as record_map does), one rounding only.
      const at::ScalarType dt = rec->store_dtype().value_or(q.scalar_type());
      rec->record(self_key, self_mean ? (self_sum / static_cast<double>(H)).unsqueeze(1).to(dt) : self_full);
    }
  }
  return o.transpose(1, 2).reshape({B, S, H * d}).to(q.scalar_type());
}

void append_joint_block_layers(std::vector<LayerInfo>& out, const std::string& location, int64_t H, int64_t N,
                               int64_t T, int64_t d, bool with_specials) {
  const int64_t C = H * d;
  const auto r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(N))));
  out.push_back({cross_map_key(location), {H, N, T}});
  out.push_back({self_map_key(location), {H, N, N}});
  if (r * r == N) out.push_back({attention_output_key(location), {C, r, r}});
  if (!with_specials) return;
  const std::string cross = attention_block(location, AttentionKind::cross);
  out.push_back({capture_key(cross, CaptureTensor::special_value), {H, N, d}});
  out.push_back({capture_key(cross, CaptureTensor::special_post_value), {N, C}});
  out.push_back({capture_key(cross, CaptureTensor::special_weight), {C, C}});
}

namespace mem {

void joint_attention_terms(MemoryUnit& u, const CaptureSpec& spec, const std::string& location, int64_t B, int64_t H,
                           int64_t C, int64_t N, int64_t T, at::ScalarType dt, at::ScalarType store,
                           int64_t chunk_elements, const std::string& device) {
  const int64_t Sq = N + T, s = esize(dt);
  const bool want_cross = spec.wants(cross_map_key(location)), want_self = spec.wants(self_map_key(location));
  if (!want_cross && !want_self) {
    if (gb::compat::sdpa_fused(device, dt, H, C / H, false)) {
      u.transient.push_back({"attention output (fused SDPA)", B * Sq * C * s});
    } else {  // the math path keeps the [Sq, Sq] scores of every head and their softmax
      u.transient.push_back(
          {"attention output + scores and softmax (math SDPA)", B * Sq * C * s + 2 * B * H * Sq * Sq * s});
    }
    return;
  }
  const bool self_mean = want_self && spec.self_map_head_mean;
  int64_t bufs = B * Sq * C * s;  // per-chunk outputs (then their cat)
  if (want_cross) bufs += B * H * N * T * s;
  if (want_cross && spec.cross_map_head_mean)  // head_average_maps: stored-dtype copy, then fp32 sum + one head
    bufs += (store == dt ? 0 : B * H * N * T * esize(store)) + 2 * N * T * 4;
  if (want_self && !self_mean) bufs += B * H * N * N * s;
  if (self_mean) bufs += B * N * N * 4;
  u.transient.push_back({"attend buffers (cross map, self sum/map, outputs)", bufs});
  const int64_t per_head = B * Sq * Sq;
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(H, chunk_elements / std::max<int64_t>(per_head, 1)));
  const int64_t chunk = B * group * Sq * Sq;
  int64_t step = 3 * chunk * s;  // QKᵀ, ·scale, softmax alive together
  if (self_mean) step = std::max(step, chunk * s + (dt == at::kFloat ? 0 : B * group * N * N * 4) + B * N * N * 4);
  u.transient.push_back({fmt::format("score chunk: {} of {} heads (QKᵀ, ·scale, softmax)", group, H), step});
}

int64_t joint_post_value_bytes(const LayerInfo& l, const std::vector<LayerInfo>& layers, int64_t batch,
                               at::ScalarType store, at::ScalarType dtype, int64_t bytes) {
  const auto parts = parse_capture_key(l.name);
  const auto block = parts ? parse_attention_block(parts->block) : std::nullopt;
  if (batch != 1 || store != dtype || !parts || parts->tensor != CaptureTensor::special_post_value || !block ||
      block->kind != AttentionKind::cross)
    return bytes;
  const std::string first_cross_map = cross_map_key(vit_block(0));
  for (const auto& x : layers)
    if (x.name == first_cross_map) bytes = (l.shape[0] + x.shape[2]) * l.shape[1] * esize(store);
  return bytes;
}

std::string JointMemoryModel::unit_of_key(const std::string& key) const { return location_of(key); }

std::vector<MemoryUnit> JointMemoryModel::denoiser_units(const std::vector<LayerInfo>&, const CaptureSpec& spec,
                                                         int64_t batch, int64_t size, at::ScalarType dtype,
                                                         at::ScalarType store) const {
  std::vector<MemoryUnit> units;
  for (int64_t k = 0; k < num_blocks(); ++k) units.push_back(block_unit(k, spec, batch, size, dtype, store));
  return units;
}

int64_t JointMemoryModel::stored_bytes(const LayerInfo& layer, const std::vector<LayerInfo>& layers, int64_t batch,
                                       at::ScalarType store, at::ScalarType dtype, int64_t bytes) const {
  return joint_post_value_bytes(layer, layers, batch, store, dtype, bytes);
}

}  // namespace mem

}  // namespace gb::bb
