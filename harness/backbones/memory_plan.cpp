#include "harness/backbones/memory_plan.h"

#include "harness/backbones/clip_text.h"
#include "harness/backbones/factory.h"
#include "harness/backbones/flux_transformer.h"
#include "harness/backbones/pixart_transformer.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/backbones/unet.h"
#include "harness/backbones/vae.h"
#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/io/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <map>

namespace gb::bb {

namespace fs = std::filesystem;

namespace {

// Lengths the pipelines pad their prompts to (pixart_backbone.cpp, flux_backbone.cpp).
constexpr int64_t kPixArtTextLength = 300;
constexpr int64_t kFluxTextLength = 512;
// FluxTransformer's default transient score chunk (set_attention_chunk_elements).
constexpr int64_t kFluxChunkElements = int64_t(1) << 28;

int64_t esize(at::ScalarType t) { return static_cast<int64_t>(c10::elementSize(t)); }

VaeConfig flux_vae_config() {
  VaeConfig c = VaeConfig::sd15();
  c.latent_channels = 16;
  c.use_quant_conv = false;
  c.scaling_factor = 0.3611;
  c.shift_factor = 0.1159;
  return c;
}

// Stands in for a tokenizer where only the padded length matters (the `layers` lambdas read max_length()).
class LengthOnlyTokenizer : public TextTokenizer {
 public:
  explicit LengthOnlyTokenizer(int64_t n) : n_(n) {}
  std::string name() const override { return "length-only"; }
  int64_t max_length() const override { return n_; }
  std::vector<TextToken> encode(const std::string&) const override {
    throw std::logic_error("memory plan: LengthOnlyTokenizer cannot encode");
  }

 private:
  int64_t n_;
};

// The component configs of one backbone (full-size defaults, or the folder's config.json files).
struct Configs {
  std::string kind;
  UNetConfig unet;
  PixArtConfig pixart;
  FluxConfig flux;
  VaeConfig vae;
  ClipTextConfig clip, clip2;
  T5Config t5;
  bool has_clip = false, has_clip2 = false, has_t5 = false;
  int64_t text_len = 77;
};

Configs load_configs(const std::string& kind, const std::optional<std::string>& folder) {
  backbone_kind(kind);  // UserError listing the known kinds
  Configs c;
  c.kind = kind;
  const bool f = folder.has_value();
  if (kind == "sd15" || kind == "sdxl") {
    const bool xl = kind == "sdxl";
    c.unet = f ? UNetConfig::from_json(component_file(*folder, "unet")) : (xl ? UNetConfig::sdxl() : UNetConfig::sd15());
    c.vae = f ? VaeConfig::from_json(component_file(*folder, "vae")) : (xl ? VaeConfig::sdxl() : VaeConfig::sd15());
    c.clip = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder")) : ClipTextConfig::clip_l();
    c.has_clip = true;
    if (xl) {
      c.clip2 = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder_2")) : ClipTextConfig::bigg();
      c.has_clip2 = true;
    }
    c.text_len = c.clip.max_position_embeddings;
  } else if (kind == "pixart-sigma") {
    c.pixart = f ? PixArtConfig::from_json(component_file(*folder, "transformer")) : PixArtConfig::sigma_xl_2_1024();
    c.vae = f ? VaeConfig::from_json(component_file(*folder, "vae")) : VaeConfig::sdxl();
    c.t5 = f ? T5Config::from_json(component_file(*folder, "text_encoder")) : T5Config::v1_1_xxl();
    c.has_t5 = true;
    c.text_len = kPixArtTextLength;
  } else if (kind == "flux") {
    c.flux = f ? FluxConfig::from_json(component_file(*folder, "transformer")) : FluxConfig::dev();
    c.vae = f ? VaeConfig::from_json(component_file(*folder, "vae")) : flux_vae_config();
    c.clip = f ? ClipTextConfig::from_json(component_file(*folder, "text_encoder")) : ClipTextConfig::clip_l();
    c.t5 = f ? T5Config::from_json(component_file(*folder, "text_encoder_2")) : T5Config::v1_1_xxl();
    c.has_clip = c.has_t5 = true;
    c.text_len = kFluxTextLength;
  } else {
    fail("memory planning is not available for backbone '{}' (sd15, sdxl, pixart-sigma, flux)", kind);
  }
  return c;
}

at::ScalarType vae_dtype_of(const Configs& c, at::ScalarType dtype) {
  if (c.kind == "pixart-sigma") return at::kFloat;  // G-pix prepare_latents forces fp32
  if (c.kind == "sdxl" && c.vae.force_upcast) return at::kFloat;
  return dtype;
}

int64_t default_image_size(const std::string& kind) { return kind == "sd15" ? 512 : 1024; }

at::ScalarType scalar_of(StDType d) {
  switch (d) {
    case StDType::F16: return at::kHalf;
    case StDType::BF16: return at::kBFloat16;
    case StDType::F32: return at::kFloat;
    case StDType::F64: return at::kDouble;
    case StDType::I64: return at::kLong;
    case StDType::I32: return at::kInt;
    case StDType::I16: return at::kShort;
    case StDType::I8: return at::kChar;
    case StDType::U8: return at::kByte;
    case StDType::BOOL: return at::kBool;
  }
  return at::kFloat;
}

// With a folder: the component's checkpoint headers as meta tensors (no data read), so the module constructors
// and WeightStore::finish() check names and shapes exactly as a real load would (one UserError naming the file).
// The same lookup order as WeightStore::open_component without a variant.
template <typename F>
void check_headers(const std::string& root, const std::string& component, at::ScalarType dtype, F make) {
  const fs::path dir = fs::path(root) / component;
  if (!fs::is_directory(dir)) fail_file(dir.string(), "checkpoint component folder not found");
  std::string file;
  for (const char* stem : {"diffusion_pytorch_model", "model"}) {
    std::string st = stem;
    for (const auto& c : {st + ".safetensors", st + ".safetensors.index.json", st + ".fp16.safetensors",
                          st + ".safetensors.index.fp16.json", st + ".fp16.safetensors.index.json"})
      if (file.empty() && fs::is_regular_file(dir / c)) file = (dir / c).string();
  }
  if (file.empty()) fail_file(dir.string(), "no safetensors weights");
  auto ckpt = SafetensorsCheckpoint::open(file);
  std::map<std::string, at::Tensor> meta;
  for (const auto& k : ckpt.keys()) {
    const auto& info = ckpt.info(k);
    meta[k] = at::empty(info.shape, at::TensorOptions().dtype(scalar_of(info.dtype)).device(at::kMeta));
  }
  WeightStore ws(std::move(meta), file, dtype, at::Device(at::kMeta));
  make(ws);
  ws.finish();
}

// Builds a component on a shape-only store and returns (params, bytes, its tensors).
struct Built {
  int64_t params = 0, bytes = 0;
  std::map<std::string, at::Tensor> tensors;
};
template <typename F>
Built build(at::ScalarType dtype, F make) {
  auto ws = WeightStore::shape_only(dtype);
  make(ws);
  Built b;
  b.tensors = ws.tensors();
  for (const auto& [k, v] : b.tensors) {
    b.params += v.numel();
    b.bytes += v.numel() * esize(v.scalar_type());
  }
  return b;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

ComponentWeights t5_weights(const T5Config& cfg, at::ScalarType dtype, bool int8, const std::string& name) {
  auto b = build(dtype, [&](const WeightStore& ws) { T5Encoder m(ws, cfg); });
  ComponentWeights w{name, "", b.params, 0, true, true};
  for (const auto& [k, v] : b.tensors) {
    const bool quantized = int8 && v.dim() == 2 &&
                           (ends_with(k, "SelfAttention.q.weight") || ends_with(k, "SelfAttention.k.weight") ||
                            ends_with(k, "SelfAttention.v.weight") || ends_with(k, "SelfAttention.o.weight") ||
                            ends_with(k, "DenseReluDense.wi_0.weight") || ends_with(k, "DenseReluDense.wi_1.weight"));
    w.bytes += quantized ? v.numel() + v.size(0) * 4 : v.numel() * esize(v.scalar_type());
  }
  w.storage = int8 ? "int8+row scales, wo fp32" : dtype_name(dtype) + (dtype == at::kFloat ? "" : ", wo fp32");
  return w;
}

ComponentWeights plain(const std::string& name, const Built& b, at::ScalarType dtype, bool text) {
  return ComponentWeights{name, dtype_name(dtype), b.params, b.bytes, text, false};
}

// With a folder, every component the plan counts is first checked against its checkpoint headers.
void check_folder(const Configs& c, const std::string& root, at::ScalarType dtype) {
  if (c.kind == "sd15" || c.kind == "sdxl")
    check_headers(root, "unet", dtype, [&](const WeightStore& ws) { UNet2DConditionModel m(c.unet, ws); });
  else if (c.kind == "pixart-sigma")
    check_headers(root, "transformer", dtype, [&](const WeightStore& ws) { PixArtTransformer m(ws, c.pixart); });
  else
    check_headers(root, "transformer", dtype, [&](const WeightStore& ws) { FluxTransformer m(ws, c.flux); });
  check_headers(root, "vae", dtype, [&](const WeightStore& ws) { VaeEncoder m(c.vae, ws); });
  if (c.has_clip)
    check_headers(root, "text_encoder", dtype, [&](const WeightStore& ws) { ClipTextModel m(c.clip, ws); });
  if (c.has_clip2)
    check_headers(root, "text_encoder_2", dtype, [&](const WeightStore& ws) { ClipTextModel m(c.clip2, ws); });
  if (c.has_t5)
    check_headers(root, c.kind == "flux" ? "text_encoder_2" : "text_encoder", dtype,
                  [&](const WeightStore& ws) { T5Encoder m(ws, c.t5); });
}

std::vector<ComponentWeights> weights_of(const Configs& c, at::ScalarType dtype, bool t5_int8,
                                         const std::optional<std::string>& folder) {
  if (folder) check_folder(c, *folder, dtype);
  std::vector<ComponentWeights> out;
  const at::ScalarType vdt = vae_dtype_of(c, dtype);
  if (c.kind == "sd15" || c.kind == "sdxl") {
    out.push_back(plain("unet", build(dtype, [&](const WeightStore& ws) { UNet2DConditionModel m(c.unet, ws); }), dtype, false));
  } else if (c.kind == "pixart-sigma") {
    out.push_back(plain("transformer", build(dtype, [&](const WeightStore& ws) { PixArtTransformer m(ws, c.pixart); }),
                        dtype, false));
  } else {
    out.push_back(plain("transformer", build(dtype, [&](const WeightStore& ws) { FluxTransformer m(ws, c.flux); }),
                        dtype, false));
  }
  out.push_back(plain("vae", build(vdt, [&](const WeightStore& ws) { VaeEncoder m(c.vae, ws); }), vdt, false));
  // CLIP stays resident for sd15/sdxl (their backbones accept `keep` only); Flux's CLIP is freed with T5 under
  // `free` and stays on the device under `offload`.
  const bool clip_freed = c.kind == "flux";
  if (c.has_clip)
    out.push_back(plain("text_encoder", build(dtype, [&](const WeightStore& ws) { ClipTextModel m(c.clip, ws); }),
                        dtype, clip_freed));
  if (c.has_clip2)
    out.push_back(plain("text_encoder_2", build(dtype, [&](const WeightStore& ws) { ClipTextModel m(c.clip2, ws); }),
                        dtype, false));
  if (c.has_t5)
    out.push_back(t5_weights(c.t5, dtype, t5_int8, c.kind == "flux" ? "text_encoder_2" : "text_encoder"));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Transient models. Every count is in elements × element size of what the forward code keeps alive at the
// step named; see docs/memory.md for the derivation.

struct Term {
  std::string name;
  int64_t bytes;
};

// Attention::operator() on the explicit path (attention_probs + record_map), nn.cpp: q, k, v projections,
// the reshape copies q3/k3, baddbmm's base + scores, then scores + P, then (self head mean) P + its fp32 copy
// + the fp32 mean. `act` = activations the caller keeps alive (block input, normed input...).
std::vector<Term> explicit_attention(int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t C, at::ScalarType dt,
                                     bool head_mean, bool store_fp32, int64_t act_tokens) {
  const int64_t s = esize(dt);
  const int64_t P = B * H * Nq * Nk;
  const int64_t proj = B * (act_tokens * C + Nq * C + 2 * Nk * C + Nq * C + Nk * C) * s;  // act, q, k, v, q3, k3
  int64_t scores = std::max<int64_t>(2 * P * s, 2 * P * s);  // base+scores (baddbmm), scores+P (softmax)
  int64_t record = 0;
  if (head_mean) record = P * s + (dt == at::kFloat ? 0 : P * 4) + (store_fp32 ? 0 : B * Nq * Nk * 4);
  if (record > scores)
    return {{"activations (x, q, k, v, q/k reshape copies)", proj},
            {"attention P + its fp32 copy + fp32 head mean (record_map)", record}};
  return {{"activations (x, q, k, v, q/k reshape copies)", proj}, {"scores + softmax P (attention_probs)", scores}};
}

// Fused SDPA (LibTorch 2.x: flash / memory-efficient, no score matrix): activations, q, k, v and the output.
std::vector<Term> fused_attention(int64_t B, int64_t Nq, int64_t Nk, int64_t C, at::ScalarType dt, int64_t act_tokens) {
  return {{"activations (x, q, k, v, output; fused SDPA)", B * (act_tokens * C + Nq * C + 2 * Nk * C + Nq * C) * esize(dt)}};
}

int64_t sum(const std::vector<Term>& t) {
  int64_t n = 0;
  for (const auto& x : t) n += x.bytes;
  return n;
}

// ResnetBlock2D::operator() (nn.cpp) on [B, in, r, r] -> out: max of
//   conv1 step: x + norm1(x) + silu + h1 = 3·in + out;  conv2 step: x + h1 + norm2 + silu + h2 = in + 4·out;
//   residual step: x + h2 + shortcut(x) + sum = in + 3·out (in + 2·out without a shortcut).
int64_t resnet_peak(int64_t B, int64_t in, int64_t out, int64_t r, int64_t s) {
  const int64_t px = B * r * r * s;
  int64_t a = 3 * in + out, b = in + 4 * out, c = in + (in != out ? 3 : 2) * out;
  return std::max({a, b, c}) * px;
}

MemoryPhase vae_phase(const Configs& c, int64_t B, int64_t S, at::ScalarType vdt, at::ScalarType dt) {
  const int64_t s = esize(vdt);
  const auto& boc = c.vae.block_out_channels;
  const int64_t levels = static_cast<int64_t>(boc.size());
  const int64_t latent = S >> (levels - 1);
  MemoryPhase p;
  p.name = "vae";
  int64_t best = 0;
  std::string where;
  auto consider = [&](int64_t bytes, const std::string& w) {
    if (bytes > best) best = bytes, where = w;
  };
  consider(B * (c.vae.in_channels + boc[0]) * S * S * s, "conv_in");
  int64_t ch = boc[0], r = S;
  for (int64_t i = 0; i < levels; ++i) {
    for (int64_t k = 0; k < c.vae.layers_per_block; ++k) {
      const int64_t in = k == 0 ? ch : boc[i];
      consider(resnet_peak(B, in, boc[i], r, s), fmt::format("down_blocks.{}.resnets.{} at {}²", i, k, r));
    }
    ch = boc[i];
    if (i + 1 < levels) {  // zero-pad copy + strided conv
      consider(B * ch * (r * r + (r + 1) * (r + 1) + (r / 2) * (r / 2)) * s, fmt::format("down_blocks.{}.downsample", i));
      r /= 2;
    }
  }
  const int64_t cm = boc.back();
  consider(resnet_peak(B, cm, cm, r, s), fmt::format("mid_block resnets at {}²", r));
  // mid attention (fused SDPA, one head of width C): h, norm, q, k, v, o, output + residual.
  if (c.vae.mid_block_add_attention) consider(B * 8 * cm * r * r * s, fmt::format("mid_block attention at {}² (fused SDPA)", r));
  p.at = where;
  const int64_t inputs = B * 3 * S * S * s + B * c.vae.latent_channels * latent * latent * (s + esize(dt)) +
                         B * c.text_len * (c.kind == "flux" ? c.t5.d_model : c.kind == "pixart-sigma" ? c.t5.d_model : 0) * esize(dt);
  p.transient.push_back({"activations at the peak (" + where + ")", best});
  p.transient.push_back({"pixels, VAE noise, latents, text conditioning", inputs});
  return p;
}

// T5Encoder::operator() (t5_encoder.cpp): attention step = q, k, v, h, matmul + bias, scores (dt) +
// fp32 copy + fp32 softmax + dt probabilities; FFN step = wi_0, gelu, wi_1, product (dt) + fp32 copy +
// fp32 output. The fp32 residual stream and the position bias are alive throughout.
std::vector<Term> t5_terms(const T5Config& t5, int64_t B, int64_t L, at::ScalarType dt, bool masked) {
  const int64_t s = esize(dt), H = t5.num_heads, inner = t5.inner_dim(), d = t5.d_model, ff = t5.d_ff;
  const int64_t P = B * H * L * L;
  const bool f32 = dt == at::kFloat;
  const int64_t attn = B * L * (3 * inner + d) * s + std::max<int64_t>(2 * P * s, P * (s + (f32 ? 0 : 4) + 4 + (f32 ? 0 : s)));
  const int64_t ffn = B * L * (d * s + 4 * ff * s + (f32 ? 0 : ff * 4) + d * 4);
  const int64_t resid = B * L * d * 4 + (masked ? B : 1) * H * L * L * s;
  std::vector<Term> out;
  if (attn >= ffn)
    out.push_back({fmt::format("T5 attention at {} tokens (scores, fp32 softmax, q/k/v)", L), attn});
  else
    out.push_back({fmt::format("T5 gated FFN at {} tokens", L), ffn});
  out.push_back({"T5 fp32 residual stream + position bias", resid});
  return out;
}

std::vector<Term> clip_terms(const ClipTextConfig& cc, int64_t B, at::ScalarType dt) {
  const int64_t L = cc.max_position_embeddings, d = cc.hidden_size, s = esize(dt);
  // x, h, q, k, v, o, y, fc1, act (fused SDPA; the causal mask [L, L]).
  return {{fmt::format("CLIP layer at {} tokens", L), B * L * (7 * d + 2 * cc.intermediate_size) * s + L * L * s}};
}

MemoryPhase text_phase(const Configs& c, int64_t B, at::ScalarType dt, bool t5_int8) {
  MemoryPhase p;
  p.name = "text";
  std::vector<Term> best;
  if (c.has_t5 && t5_int8) {
    // LLM.int8 T5 encodes one sequence per call (outlier columns are chosen over a call's rows): the batch-1
    // working set, the int8 GEMM's int8 input + int32 accumulators of the widest projection, and the outputs.
    const int64_t L = c.text_len;
    best = t5_terms(c.t5, 1, L, dt, c.kind == "pixart-sigma");
    best.push_back({"int8 GEMM buffers (int8 input, int32 accumulators)", L * (c.t5.d_model + 4 * c.t5.d_ff)});
    best.push_back({"encoded sequences (then their concatenation)", 2 * B * L * c.t5.d_model * esize(dt)});
    p.at = "T5 encoder (int8, one sequence per call)";
  } else if (c.has_t5) {
    best = t5_terms(c.t5, B, c.text_len, dt, c.kind == "pixart-sigma");
    p.at = "T5 encoder";
  } else {
    best = clip_terms(c.has_clip2 ? c.clip2 : c.clip, B, dt);
    p.at = c.has_clip2 ? "text_encoder_2 (bigG)" : "text_encoder (CLIP)";
  }
  if (c.has_t5 && c.has_clip) {  // Flux: the pooled CLIP vector is computed first and kept
    best.push_back({"pooled CLIP vector", B * c.clip.hidden_size * esize(dt)});
  }
  for (auto& t : best) p.transient.push_back({t.name, t.bytes});
  return p;
}

// ---- Denoiser: attention units in forward order, each with its transient and the keys it records. ----

struct Unit {
  std::string id;
  std::vector<Term> transient;
};

std::string unit_of_key(const std::string& kind, const std::string& key) {
  if (kind == "flux") {
    for (const char* s : {"-cross-", "-self-", "-attn-out"}) {
      auto pos = key.find(s);
      if (pos != std::string::npos) return key.substr(0, pos);
    }
    return key;
  }
  return block_of(key);
}

std::vector<int64_t> shape_of(const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& key) {
  auto it = shapes.find(key);
  if (it == shapes.end()) throw std::logic_error("memory plan: no layer '" + key + "'");
  return it->second;
}

std::vector<Unit> denoiser_units(const Configs& c, const std::vector<LayerInfo>& layers, const CaptureSpec& spec,
                                 int64_t B, int64_t S, at::ScalarType dt, at::ScalarType store) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& l : layers) shapes[l.name] = l.shape;
  const bool mean = spec.self_map_head_mean;
  const bool store_fp32 = store == at::kFloat;
  std::vector<Unit> units;
  if (c.kind == "sd15" || c.kind == "sdxl" || c.kind == "pixart-sigma") {
    const bool unet = c.kind != "pixart-sigma";
    std::vector<std::string> blocks;
    if (unet) {
      blocks = unet_block_ids(c.unet);
    } else {
      for (int64_t i = 0; i < c.pixart.num_layers; ++i) blocks.push_back("vit-block" + std::to_string(i));
    }
    for (const auto& b : blocks) {
      for (const char* kind : {"-self", "-cross"}) {
        const std::string id = b + kind;
        auto m = shape_of(shapes, id + "-map");  // [H, Nq, Nk]
        auto v = shape_of(shapes, id + "-special-post-value");  // [Nq, C]
        const int64_t H = m[0], Nq = m[1], Nk = m[2], C = v[1];
        const bool self = kind[1] == 's';
        // act: Transformer2D input x + tokens + normed tokens (UNet); x + modulated h (PixArt self), x (cross).
        const int64_t act = unet ? 3 : (self ? 2 : 1);
        Unit u{id, {}};
        if (spec.wants(id + "-map"))
          u.transient = explicit_attention(B, H, Nq, Nk, C, dt, mean && self, store_fp32, act);
        else
          u.transient = fused_attention(B, Nq, Nk, C, dt, act);
        units.push_back(std::move(u));
      }
    }
    return units;
  }
  // Flux (flux_transformer.cpp).
  const auto& f = c.flux;
  const int64_t H = f.num_attention_heads, C = f.inner_dim(), d = f.attention_head_dim;
  const int64_t T = c.text_len;
  const int64_t g2 = (S >> (static_cast<int64_t>(c.vae.block_out_channels.size()) - 1)) / 2;
  const int64_t N = g2 * g2, Sq = N + T;
  const int64_t s = esize(dt);
  const int64_t mlp = static_cast<int64_t>(C * f.mlp_ratio);
  for (int64_t k = 0; k < f.total_blocks(); ++k) {
    const std::string id = "vit-block" + std::to_string(k);
    const bool dbl = k < f.num_layers;
    const bool want_cross = spec.wants(id + "-cross-map"), want_self = spec.wants(id + "-self-map");
    Unit u{id, {}};
    // Block activations alive during attend(): double: x, xn, v (N) + ctx, cn, eq, ek, ev (T) + q, k, [ev|v] (S);
    // single: s, sn, q, k, v (S) + the MLP branch [S, mlp].
    const int64_t act = dbl ? B * C * (3 * N + 5 * T + 3 * Sq) * s : B * Sq * (5 * C + mlp) * s;
    u.transient.push_back({dbl ? "double-block activations" : "single-block activations (incl. MLP branch)", act});
    if (!want_cross && !want_self) {
      u.transient.push_back({"attention output (fused SDPA)", B * Sq * C * s});
      units.push_back(std::move(u));
      continue;
    }
    const bool self_mean = want_self && mean;
    int64_t bufs = B * Sq * C * s;  // per-chunk outputs (then their cat)
    if (want_cross) bufs += B * H * N * T * s;
    if (want_cross && spec.cross_map_head_mean)  // head_average_maps: stored-dtype copy, then fp32 sum + one head
      bufs += (store == dt ? 0 : B * H * N * T * esize(store)) + 2 * N * T * 4;
    if (want_self && !self_mean) bufs += B * H * N * N * s;
    if (self_mean) bufs += B * N * N * 4;
    u.transient.push_back({"attend buffers (cross map, self sum/map, outputs)", bufs});
    const int64_t per_head = B * Sq * Sq;
    const int64_t group = std::max<int64_t>(1, std::min<int64_t>(H, kFluxChunkElements / std::max<int64_t>(per_head, 1)));
    const int64_t chunk = B * group * Sq * Sq;
    int64_t step = 3 * chunk * s;  // QKᵀ, ·scale, softmax alive together
    if (self_mean)
      step = std::max(step, chunk * s + (dt == at::kFloat ? 0 : B * group * N * N * 4) + B * N * N * 4);
    u.transient.push_back({fmt::format("score chunk: {} of {} heads (QKᵀ, ·scale, softmax)", group, H), step});
    (void)d;
    units.push_back(std::move(u));
  }
  return units;
}

// Persistent denoiser tensors: inputs and (UNet) the skip connections.
std::vector<Term> denoiser_persistent(const Configs& c, int64_t B, int64_t S, at::ScalarType dt) {
  const int64_t s = esize(dt);
  const int64_t levels = static_cast<int64_t>(c.vae.block_out_channels.size());
  const int64_t lat = S >> (levels - 1);
  std::vector<Term> out;
  if (c.kind == "sd15" || c.kind == "sdxl") {
    const auto& u = c.unet;
    int64_t skips = u.block_out_channels[0] * lat * lat, r = lat;
    for (size_t i = 0; i < u.block_out_channels.size(); ++i) {
      skips += u.layers_per_block * u.block_out_channels[i] * r * r;
      if (i + 1 < u.block_out_channels.size()) r /= 2, skips += u.block_out_channels[i] * r * r;
    }
    out.push_back({"UNet skip connections", B * skips * s});
    out.push_back({"latents + text conditioning", B * (u.in_channels * lat * lat + c.text_len * u.cross_attention_dim) * s});
  } else if (c.kind == "pixart-sigma") {
    const int64_t C = c.pixart.inner_dim();
    out.push_back({"latents, T5 states, caption projection", B * (c.pixart.in_channels * lat * lat +
                                                                   c.text_len * (c.t5.d_model + 2 * C)) * s});
  } else {
    const int64_t g = lat / 2, C = c.flux.inner_dim();
    out.push_back({"packed latents, T5 states, RoPE tables", B * (g * g * c.flux.in_channels + c.text_len * c.t5.d_model) * s +
                                                               (g * g + c.text_len) * c.flux.attention_head_dim * 8});
    (void)C;
  }
  return out;
}

}  // namespace

int64_t MemoryPhase::transient_bytes() const {
  int64_t n = 0;
  for (const auto& t : transient) n += t.bytes;
  return n;
}

int64_t MemoryPlan::weight_bytes() const {
  int64_t n = 0;
  for (const auto& w : weights) n += w.bytes;
  return n;
}

int64_t MemoryPlan::capture_bytes() const {
  int64_t n = 0;
  for (const auto& c : captures) n += c.bytes;
  return n;
}

const MemoryPhase& MemoryPlan::peak_phase() const {
  const MemoryPhase* best = &phases.at(0);
  for (const auto& p : phases)
    if (p.total() > best->total()) best = &p;
  return *best;
}

at::ScalarType paper_dtype(const std::string& kind) { return kind == "flux" ? at::kBFloat16 : at::kHalf; }

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "fp32";
    case at::kHalf: return "fp16";
    case at::kBFloat16: return "bf16";
    default: return c10::toString(t);
  }
}

std::vector<ComponentWeights> plan_weights(const std::string& kind, const std::optional<std::string>& folder,
                                           at::ScalarType dtype, bool t5_int8) {
  auto c = load_configs(kind, folder);
  if (t5_int8 && kind != "flux") fail("{}: t5_int8 is a flux option", kind);
  return weights_of(c, dtype, t5_int8, folder);
}

std::vector<CaptureBytes> plan_captures(const std::string& kind, const std::vector<LayerInfo>& layers,
                                        const CaptureSpec& spec, int64_t batch, at::ScalarType store,
                                        at::ScalarType dtype) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& l : layers) shapes[l.name] = l.shape;
  std::vector<std::string> unknown;
  for (const auto& k : spec.keys)
    if (!shapes.count(k)) unknown.push_back(k);
  if (!unknown.empty()) {
    std::string list;
    for (const auto& k : unknown) list += (list.empty() ? "" : ", ") + k;
    fail("{}: unknown capture keys: {} (see `goca-bench list-layers --backbone {}`)", kind, list, kind);
  }
  std::vector<CaptureBytes> out;
  for (const auto& l : layers) {  // forward order
    if (!spec.wants(l.name)) continue;
    CaptureBytes c;
    c.key = l.name;
    c.shape = l.shape;
    if (spec.self_map_head_mean && ends_with(l.name, "-self-map")) c.shape[0] = 1;
    const bool cross_mean = spec.cross_map_head_mean && ends_with(l.name, "-cross-map");
    if (cross_mean) c.shape[0] = 1;  // gb::head_average_maps: fp32 [B, 1, P, T]
    c.dtype = cross_mean ? at::kFloat : store;
    c.shape.insert(c.shape.begin(), batch);
    int64_t n = 1;
    for (auto x : c.shape) n *= x;
    c.bytes = n * esize(c.dtype);
    if (ends_with(l.name, "special-weight")) {
      // record_weight: the resident weight expanded over the batch (no copy) unless cast to the store dtype.
      c.bytes = store == dtype ? 0 : l.shape[0] * l.shape[1] * esize(store);
    } else if (kind == "flux" && batch == 1 && store == dtype && ends_with(l.name, "-cross-special-post-value")) {
      // o.narrow(1, T, N) of the contiguous joint output [1, S, C] is itself contiguous: the stored view keeps
      // the whole [1, S, C] buffer (S = N + T tokens).
      for (const auto& x : layers)
        if (x.name == "vit-block0-cross-map") c.bytes = (l.shape[0] + x.shape[2]) * l.shape[1] * esize(store);
    }
    out.push_back(std::move(c));
  }
  return out;
}

MemoryPlan plan_memory(const MemoryPlanOptions& o, int64_t batch) {
  if (batch <= 0) fail("batch size must be positive, got {}", batch);
  auto c = load_configs(o.kind, o.folder);
  MemoryPlan plan;
  plan.kind = o.kind;
  plan.batch_size = batch;
  plan.dtype = o.dtype.value_or(paper_dtype(o.kind));
  if (plan.dtype != at::kFloat && plan.dtype != at::kHalf && plan.dtype != at::kBFloat16)
    fail("dtype must be fp32, fp16 or bf16");
  plan.store_dtype = o.store_dtype.value_or(plan.dtype);
  plan.vae_dtype = vae_dtype_of(c, plan.dtype);
  plan.image_size = o.image_size.value_or(default_image_size(o.kind));
  plan.text_encoder = o.text_encoder;
  const bool t5_kind = o.kind == "pixart-sigma" || o.kind == "flux";
  if (!t5_kind && o.text_encoder != TextEncoderResidency::keep)
    fail("{}: text_encoder '{}' is for the T5 backbones (pixart-sigma, flux); CLIP stays resident", o.kind,
         to_string(o.text_encoder));
  if (o.t5_int8.value_or(false) && o.kind != "flux") fail("{}: t5_int8 is a flux option", o.kind);
  plan.t5_int8 = o.kind == "flux" && o.t5_int8.value_or(plan.dtype != at::kFloat);

  // Image size checks as the backbones make them.
  const int64_t levels = static_cast<int64_t>(c.vae.block_out_channels.size());
  int64_t multiple = int64_t(1) << (levels - 1);
  if (o.kind == "sd15" || o.kind == "sdxl") multiple <<= (c.unet.block_out_channels.size() - 1);
  else if (o.kind == "pixart-sigma") multiple *= c.pixart.patch_size;
  else multiple *= 2;
  if (plan.image_size <= 0 || plan.image_size % multiple != 0)
    fail("image size {} must be a positive multiple of {}", plan.image_size, multiple);

  plan.weights = weights_of(c, plan.dtype, plan.t5_int8, o.folder);
  BackboneOptions bo;
  bo.image_size = plan.image_size;
  if (o.text_length) {
    if (*o.text_length <= 0) fail("text length must be positive, got {}", *o.text_length);
    if (o.kind == "sd15" || o.kind == "sdxl")
      fail("{}: the text length is CLIP's max_position_embeddings ({})", o.kind, c.text_len);
    c.text_len = *o.text_length;
    bo.tokenizer = std::make_shared<LengthOnlyTokenizer>(c.text_len);
  }
  const auto layers = backbone_kind(o.kind).layers(bo, o.folder);
  plan.captures = plan_captures(o.kind, layers, o.spec, batch, plan.store_dtype, plan.dtype);

  int64_t all_w = 0, denoise_w = 0;
  for (const auto& w : plan.weights) {
    all_w += w.bytes;
    // offload parks T5 in host memory between encodes; free destroys T5 and Flux's CLIP after encoding
    // (flux_backbone.cpp, pixart_backbone.cpp). Encoding itself always runs with them on the device.
    const bool off = (w.t5 && o.text_encoder != TextEncoderResidency::keep) ||
                     (w.text_encoder && o.text_encoder == TextEncoderResidency::free);
    if (!off) denoise_w += w.bytes;
  }
  const int64_t S = plan.image_size;

  MemoryPhase text = text_phase(c, batch, plan.dtype, plan.t5_int8);
  text.weights = all_w;  // every mode encodes with the encoders on the device next to the rest
  MemoryPhase vae = vae_phase(c, batch, S, plan.vae_dtype, plan.dtype);
  vae.weights = denoise_w;

  MemoryPhase den;
  den.name = "denoiser";
  den.weights = denoise_w;
  auto persistent = denoiser_persistent(c, batch, S, plan.dtype);
  auto units = denoiser_units(c, layers, o.spec, batch, S, plan.dtype, plan.store_dtype);
  // Captures recorded by earlier units are alive; the current unit's own maps are inside its transient.
  std::map<std::string, int64_t> unit_bytes;
  for (const auto& cb : plan.captures) unit_bytes[unit_of_key(o.kind, cb.key)] += cb.bytes;
  int64_t before = 0, best = -1;
  for (const auto& u : units) {
    const int64_t total = before + sum(u.transient);
    if (total > best) {
      best = total;
      den.captures = before;
      den.at = u.id;
      den.transient.clear();
      for (const auto& t : u.transient) den.transient.push_back({t.name, t.bytes});
    }
    before += unit_bytes[u.id];
  }
  if (before >= best) {  // after the last unit every capture is alive
    den.captures = before;
    den.at = "end of the pass (all captures alive)";
    den.transient.clear();
  }
  for (const auto& t : persistent) den.transient.push_back({t.name, t.bytes});
  plan.phases = {text, vae, den};
  for (auto& p : plan.phases)
    std::stable_sort(p.transient.begin(), p.transient.end(),
                     [](const MemoryTerm& a, const MemoryTerm& b) { return a.bytes > b.bytes; });
  return plan;
}

}  // namespace gb::bb
