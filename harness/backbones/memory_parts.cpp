#include "harness/backbones/memory_parts.h"

#include "harness/core/torch_compat.h"

#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/core/strings.h"
#include "harness/io/safetensors.h"

#include <algorithm>

namespace gb::bb::mem {

int64_t esize(at::ScalarType t) { return static_cast<int64_t>(c10::elementSize(t)); }

int64_t sum(const std::vector<MemoryTerm>& terms) {
  int64_t n = 0;
  for (const auto& x : terms) n += x.bytes;
  return n;
}

// ---- Weights ----

void check_headers(const std::string& root, const std::string& component, at::ScalarType dtype, const Make& make) {
  // The lookup a load without a variant makes.
  const std::string file = component_checkpoint(root, component);
  auto ckpt = SafetensorsCheckpoint::open(file);
  std::map<std::string, at::Tensor> meta;
  for (const auto& k : ckpt.keys()) {
    const auto& info = ckpt.info(k);
    meta[k] = at::empty(info.shape, at::TensorOptions().dtype(scalar_type(info.dtype)).device(at::kMeta));
  }
  WeightStore ws(std::move(meta), file, dtype, at::Device(at::kMeta));
  make(ws);
  ws.finish();
}

namespace {

std::map<std::string, at::Tensor> built_tensors(at::ScalarType dtype, const Make& make) {
  auto ws = WeightStore::shape_only(dtype);
  make(ws);
  return ws.tensors();
}

}  // namespace

ComponentWeights component(const std::string& name, at::ScalarType dtype, const Make& make, bool text_encoder) {
  ComponentWeights w{name, dtype_name(dtype), 0, 0, text_encoder, false};
  for (const auto& [k, v] : built_tensors(dtype, make)) {
    w.params += v.numel();
    w.bytes += v.numel() * esize(v.scalar_type());
  }
  return w;
}

ComponentWeights t5_component(const std::string& name, const T5Config& cfg, at::ScalarType dtype, bool int8) {
  ComponentWeights w{name, "", 0, 0, true, true};
  for (const auto& [k, v] : built_tensors(dtype, [&](const WeightStore& ws) { T5Encoder m(ws, cfg); })) {
    w.params += v.numel();
    const bool quantized = int8 && v.dim() == 2 &&
                           (ends_with(k, "SelfAttention.q.weight") || ends_with(k, "SelfAttention.k.weight") ||
                            ends_with(k, "SelfAttention.v.weight") || ends_with(k, "SelfAttention.o.weight") ||
                            ends_with(k, "DenseReluDense.wi_0.weight") || ends_with(k, "DenseReluDense.wi_1.weight"));
    w.bytes += quantized ? v.numel() + v.size(0) * 4 : v.numel() * esize(v.scalar_type());
  }
  w.storage = int8 ? "int8+row scales, wo fp32" : dtype_name(dtype) + (dtype == at::kFloat ? "" : ", wo fp32");
  return w;
}

// ---- Attention ----

// Explicit path (attention_probs + record_map), nn.cpp: q, k, v projections, the reshape copies q3/k3, baddbmm's
// base + scores, then scores + P, then (self head mean) P + its fp32 copy + the fp32 mean.
std::vector<MemoryTerm> explicit_attention(int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t C, at::ScalarType dt,
                                           bool head_mean, bool store_fp32, int64_t act_tokens, bool upcast) {
  const int64_t s = esize(dt);
  const int64_t P = B * H * Nq * Nk;
  if (upcast && dt != at::kFloat) {
    // q, k cast to fp32 (strided copies) and reshaped (fp32 copies); scores and softmax in fp32, then the dt
    // probabilities while the fp32 softmax is alive.
    const int64_t proj = B * (act_tokens * C + Nq * C + 2 * Nk * C) * s + 2 * B * (Nq * C + Nk * C) * 4;
    int64_t record = 0;
    if (head_mean) record = P * s + P * 4 + (store_fp32 ? 0 : B * Nq * Nk * 4);
    return {{"activations (x, q, k, v, fp32 q/k copies)", proj},
            {"fp32 scores + softmax P (upcast attention_probs)", std::max({2 * P * 4, P * (4 + s), record})}};
  }
  const int64_t proj = B * (act_tokens * C + Nq * C + 2 * Nk * C + Nq * C + Nk * C) * s;  // act, q, k, v, q3, k3
  const int64_t scores = 2 * P * s;  // base+scores (baddbmm), then scores+P (softmax): the same size
  int64_t record = 0;
  if (head_mean) record = P * s + (dt == at::kFloat ? 0 : P * 4) + (store_fp32 ? 0 : B * Nq * Nk * 4);
  if (record > scores)
    return {{"activations (x, q, k, v, q/k reshape copies)", proj},
            {"attention P + its fp32 copy + fp32 head mean (record_map)", record}};
  return {{"activations (x, q, k, v, q/k reshape copies)", proj}, {"scores + softmax P (attention_probs)", scores}};
}

// Fused SDPA (LibTorch 2.x: flash / memory-efficient, no score matrix): activations, q, k, v and the output.
std::vector<MemoryTerm> fused_attention(int64_t B, int64_t Nq, int64_t Nk, int64_t C, at::ScalarType dt,
                                        int64_t act_tokens) {
  return {{"activations (x, q, k, v, output; fused SDPA)",
           B * (act_tokens * C + Nq * C + 2 * Nk * C + Nq * C) * esize(dt)}};
}

std::vector<MemoryTerm> sdpa_attention(const std::string& device, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                                       int64_t C, at::ScalarType dt, int64_t act_tokens, bool mask) {
  if (gb::compat::sdpa_fused(device, dt, H, C / H, mask)) return fused_attention(B, Nq, Nk, C, dt, act_tokens);
  const int64_t s = esize(dt);
  return {{"activations (x, q, k, v, output; math SDPA)", B * (act_tokens * C + Nq * C + 2 * Nk * C + Nq * C) * s},
          {"scores + softmax (math SDPA)", 2 * B * H * Nq * Nk * s}};
}

std::map<std::string, std::vector<int64_t>> layer_shapes(const std::vector<LayerInfo>& layers) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& l : layers) shapes[l.name] = l.shape;
  return shapes;
}

std::vector<int64_t> shape_of(const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& key) {
  auto it = shapes.find(key);
  if (it == shapes.end()) throw std::logic_error("memory plan: no layer '" + key + "'");
  return it->second;
}

std::vector<MemoryUnit> attention_units(const std::vector<std::string>& blocks, const std::vector<LayerInfo>& layers,
                                        const CaptureSpec& spec, int64_t B, at::ScalarType dt, at::ScalarType store,
                                        int64_t act_self, int64_t act_cross, const std::string& device,
                                        bool cross_masked, bool upcast) {
  const auto shapes = layer_shapes(layers);
  std::vector<MemoryUnit> units;
  for (const auto& b : blocks) {
    for (const bool self : {true, false}) {
      const std::string id = attention_block(b, self ? AttentionKind::self : AttentionKind::cross);
      auto m = shape_of(shapes, capture_key(id, CaptureTensor::map));                 // [H, Nq, Nk]
      auto v = shape_of(shapes, capture_key(id, CaptureTensor::special_post_value));  // [Nq, C]
      const int64_t H = m[0], Nq = m[1], Nk = m[2], C = v[1];
      const int64_t act = self ? act_self : act_cross;
      MemoryUnit u{id, {}};
      if (spec.wants(capture_key(id, CaptureTensor::map)))
        u.transient =
            explicit_attention(B, H, Nq, Nk, C, dt, spec.self_map_head_mean && self, store == at::kFloat, act, upcast);
      else u.transient = sdpa_attention(device, B, H, Nq, Nk, C, dt, act, !self && cross_masked);
      units.push_back(std::move(u));
    }
  }
  return units;
}

// ---- Text encoders ----

namespace {

// T5Encoder::operator() (t5_encoder.cpp): attention step = q, k, v, h, matmul + bias, scores (dt) +
// fp32 copy + fp32 softmax + dt probabilities; FFN step = wi_0, gelu, wi_1, product (dt) + fp32 copy +
// fp32 output. The fp32 residual stream and the position bias are alive throughout.
std::vector<MemoryTerm> t5_terms(const T5Config& t5, int64_t B, int64_t L, at::ScalarType dt, bool masked) {
  const int64_t s = esize(dt), H = t5.num_heads, inner = t5.inner_dim(), d = t5.d_model, ff = t5.d_ff;
  const int64_t P = B * H * L * L;
  const bool f32 = dt == at::kFloat;
  const int64_t attn =
      B * L * (3 * inner + d) * s + std::max<int64_t>(2 * P * s, P * (s + (f32 ? 0 : 4) + 4 + (f32 ? 0 : s)));
  const int64_t ffn = B * L * (d * s + 4 * ff * s + (f32 ? 0 : ff * 4) + d * 4);
  const int64_t resid = B * L * d * 4 + (masked ? B : 1) * H * L * L * s;
  std::vector<MemoryTerm> out;
  if (attn >= ffn) out.push_back({fmt::format("T5 attention at {} tokens (scores, fp32 softmax, q/k/v)", L), attn});
  else out.push_back({fmt::format("T5 gated FFN at {} tokens", L), ffn});
  out.push_back({"T5 fp32 residual stream + position bias", resid});
  return out;
}

}  // namespace

MemoryPhase t5_text_phase(const T5Config& t5, int64_t B, int64_t L, at::ScalarType dt, bool int8, bool masked) {
  MemoryPhase p;
  p.name = "text";
  if (int8) {
    // LLM.int8 T5 encodes one sequence per call (outlier columns are chosen over a call's rows): the batch-1
    // working set, the int8 GEMM's int8 input + int32 accumulators of the widest projection, and the outputs.
    p.transient = t5_terms(t5, 1, L, dt, masked);
    p.transient.push_back({"int8 GEMM buffers (int8 input, int32 accumulators)", L * (t5.d_model + 4 * t5.d_ff)});
    p.transient.push_back({"encoded sequences (then their concatenation)", 2 * B * L * t5.d_model * esize(dt)});
    p.at = "T5 encoder (int8, one sequence per call)";
  } else {
    p.transient = t5_terms(t5, B, L, dt, masked);
    p.at = "T5 encoder";
  }
  return p;
}

MemoryPhase clip_text_phase(const ClipTextConfig& cc, int64_t B, at::ScalarType dt, const std::string& at,
                            const std::string& device) {
  const int64_t L = cc.max_position_embeddings, d = cc.hidden_size, s = esize(dt);
  MemoryPhase p;
  p.name = "text";
  // x, h, q, k, v, o, y, fc1, act and the causal mask [L, L] (+ scores and softmax where SDPA runs its math path).
  const int64_t H = cc.num_attention_heads;
  const int64_t math = gb::compat::sdpa_fused(device, dt, H, d / H, true) ? 0 : 2 * B * H * L * L * s;
  p.transient = {
      {fmt::format("CLIP layer at {} tokens", L), B * L * (7 * d + 2 * cc.intermediate_size) * s + L * L * s + math}};
  p.at = at;
  return p;
}

// ---- VAE encoder ----

namespace {

// ResnetBlock2D::operator() (nn.cpp) on [B, in, r, r] -> out: max of
//   conv1 step: x + norm1(x) + silu + h1 = 3·in + out;  conv2 step: x + h1 + norm2 + silu + h2 = in + 4·out;
//   residual step: x + h2 + shortcut(x) + sum = in + 3·out (in + 2·out without a shortcut).
int64_t resnet_peak(int64_t B, int64_t in, int64_t out, int64_t r, int64_t s) {
  const int64_t px = B * r * r * s;
  int64_t a = 3 * in + out, b = in + 4 * out, c = in + (in != out ? 3 : 2) * out;
  return std::max({a, b, c}) * px;
}

}  // namespace

MemoryPhase vae_encode_phase(const VaeConfig& vae, int64_t B, int64_t S, at::ScalarType vdt, at::ScalarType dt,
                             int64_t text_tokens, int64_t text_width, const std::string& device) {
  const int64_t s = esize(vdt);
  const auto& boc = vae.block_out_channels;
  const int64_t levels = static_cast<int64_t>(boc.size());
  const int64_t latent = S >> (levels - 1);
  MemoryPhase p;
  p.name = "vae";
  int64_t best = 0;
  std::string where;
  auto consider = [&](int64_t bytes, const std::string& w) {
    if (bytes > best) best = bytes, where = w;
  };
  consider(B * (vae.in_channels + boc[0]) * S * S * s, "conv_in");
  int64_t ch = boc[0], r = S;
  for (int64_t i = 0; i < levels; ++i) {
    for (int64_t k = 0; k < vae.layers_per_block; ++k) {
      const int64_t in = k == 0 ? ch : boc[i];
      consider(resnet_peak(B, in, boc[i], r, s), fmt::format("down_blocks.{}.resnets.{} at {}²", i, k, r));
    }
    ch = boc[i];
    if (i + 1 < levels) {  // zero-pad copy + strided conv
      consider(B * ch * (r * r + (r + 1) * (r + 1) + (r / 2) * (r / 2)) * s,
               fmt::format("down_blocks.{}.downsample", i));
      r /= 2;
    }
  }
  const int64_t cm = boc.back();
  consider(resnet_peak(B, cm, cm, r, s), fmt::format("mid_block resnets at {}²", r));
  // mid attention (one head of width C): h, norm, q, k, v, o, output + residual; on the math path also the
  // [r², r²] scores and their softmax.
  if (vae.mid_block_add_attention) {
    if (gb::compat::sdpa_fused(device, vdt, 1, cm, false))
      consider(B * 8 * cm * r * r * s, fmt::format("mid_block attention at {}² (fused SDPA)", r));
    else
      consider(B * 8 * cm * r * r * s + 2 * B * (r * r) * (r * r) * s,
               fmt::format("mid_block attention at {}² (math SDPA: {}² scores)", r, r * r));
  }
  p.at = where;
  const int64_t inputs = B * 3 * S * S * s + B * vae.latent_channels * latent * latent * (s + esize(dt)) +
                         B * text_tokens * text_width * esize(dt);
  p.transient.push_back({"activations at the peak (" + where + ")", best});
  p.transient.push_back({"pixels, VAE noise, latents, text conditioning", inputs});
  return p;
}

}  // namespace gb::bb::mem
