#include "harness/backbones/synthetic_backbone.h"

#include "datasets/classes.h"
#include "harness/text/clip_tokenizer.h"
#include "harness/core/errors.h"
#include "harness/backbones/synthetic_field.h"
#include "harness/backbones/synthetic_rng.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

namespace gb::bb {

namespace {

using Clock = std::chrono::steady_clock;

at::Tensor field_tensor(Rng& rng, int grid, int64_t side) {
  std::vector<float> f = smooth_field(rng, grid, side, side);
  return at::from_blob(f.data(), {side, side}, at::kFloat).clone();
}

at::Tensor normal_tensor(Rng& rng, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return at::from_blob(v.data(), shape, at::kFloat).clone();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Fixed per-concept embedding (a property of the "model", not of the image).
at::Tensor concept_embedding(uint64_t seed, int64_t concept, int64_t dim, const char* tag) {
  Rng rng(seed, "concept:" + std::to_string(concept), tag);
  return normal_tensor(rng, {dim});
}

// The capture keys of one synthetic layer (a cross-attention block) and of its self-attention sibling.
struct LayerKeys {
  std::string map, value, post, weight, q, self;
};

LayerKeys layer_keys(const SyntheticLayer& l) {
  return {capture_key(l.block, CaptureTensor::map),
          capture_key(l.block, CaptureTensor::special_value),
          capture_key(l.block, CaptureTensor::special_post_value),
          capture_key(l.block, CaptureTensor::special_weight),
          capture_key(l.block, CaptureTensor::q),
          capture_key(self_block_for_cross(l.block), CaptureTensor::map)};
}

}  // namespace

int64_t synthetic_concept_of_word(const std::string& word_in) {
  static const std::map<std::string, int64_t> table = [] {
    std::map<std::string, int64_t> t;
    const auto& voc = gb::datasets::class_table(gb::datasets::DatasetKind::Voc, gb::datasets::Protocol::paper);
    for (int64_t c = 1; c < voc.num_classes(); ++c)
      for (const auto& s : voc.classes[static_cast<size_t>(c)].synonyms) t.emplace(s, c);
    for (size_t i = 0; i < stuff_kinds().size(); ++i) t[stuff_kinds()[i].word] = kStuffBase + static_cast<int64_t>(i);
    t["clothes"] = 15;
    t["background"] = kBackgroundConcept;
    return t;
  }();
  auto it = table.find(lower(word_in));
  return it == table.end() ? -1 : it->second;
}

SyntheticBackboneConfig SyntheticBackboneConfig::sd15_like() {
  SyntheticBackboneConfig c;
  // SD1.5's 16 cross-attention blocks at half resolution; reliabilities follow the common observation that
  // the middle resolutions are the most semantic and the finest ones the noisiest.
  auto add = [&](const std::string& b, int64_t side, double q) {
    c.layers.push_back({b + "-vit-block0-cross", side, q});
  };
  add("down-level0-repeat0", 32, 0.05);
  add("down-level0-repeat1", 32, 0.1);
  add("down-level1-repeat0", 16, 0.2);
  add("down-level1-repeat1", 16, 0.3);
  add("down-level2-repeat0", 8, 0.85);
  add("down-level2-repeat1", 8, 0.9);
  add("mid", 4, 0.9);
  add("up-level1-repeat0", 8, 0.95);
  add("up-level1-repeat1", 8, 0.95);
  add("up-level1-repeat2", 8, 0.9);
  add("up-level2-repeat0", 16, 0.85);
  add("up-level2-repeat1", 16, 0.8);
  add("up-level2-repeat2", 16, 0.3);
  add("up-level3-repeat0", 32, 0.15);
  add("up-level3-repeat1", 32, 0.1);
  add("up-level3-repeat2", 32, 0.05);
  return c;
}

SyntheticBackbone::SyntheticBackbone(SyntheticBackboneConfig config, std::shared_ptr<const gb::TextTokenizer> tokenizer,
                                     std::string device)
    : config_(std::move(config)), tokenizer_(std::move(tokenizer)), device_(std::move(device)) {
  if (config_.layers.empty()) {
    auto d = SyntheticBackboneConfig::sd15_like();
    config_.layers = d.layers;
  }
  if (!tokenizer_) fail("synthetic backbone: a tokenizer is required");
  if (config_.heads < 1 || config_.head_dim < 1) fail("synthetic backbone: heads and head_dim must be positive");
  if (static_cast<int64_t>(config_.head_reliability.size()) != config_.heads)
    fail("synthetic backbone: head_reliability has {} values for {} heads", config_.head_reliability.size(),
         config_.heads);
  bool ref_found = false;
  for (const auto& l : config_.layers) ref_found |= l.block == config_.ref_block;
  if (!ref_found) fail("synthetic backbone: ref_block '{}' is not one of the layers", config_.ref_block);
}

std::vector<gb::LayerInfo> SyntheticBackbone::list_layers() const {
  return synthetic_layers(config_, tokenizer_->max_length());
}

std::vector<gb::LayerInfo> synthetic_layers(const SyntheticBackboneConfig& config, int64_t text_length) {
  std::vector<gb::LayerInfo> out;
  const int64_t H = config.heads, d = config.head_dim, T = text_length;
  for (const auto& l : config.layers) {
    const int64_t P = l.side * l.side;
    const LayerKeys k = layer_keys(l);
    out.push_back({k.map, {H, P, T}});
    out.push_back({k.value, {H, T, d}});
    out.push_back({k.post, {P, H * d}});
    out.push_back({k.weight, {d, H * d}});
    out.push_back({k.q, {config.ref_channels, l.side, l.side}});
    out.push_back({k.self, {H, P, P}});
  }
  return out;
}

namespace {

// What one image brings to every layer: the scene's concepts (plus those only the prompt names), the prompt's
// token roles, per-token biases and value vectors.
struct ImageTokens {
  std::vector<int64_t> concepts;
  std::vector<int> role;               // 0 = start token, 1 = entity token with a concept, 2 = filler / end / padding
  std::vector<int64_t> token_concept;  // concept of an entity token, else -1
  std::vector<int64_t> token_ci;       // index into concepts, else -1
  std::vector<float> bias;             // per-token imbalance
  at::Tensor u;                        // [T, d] values: concept embeddings + token noise
  int64_t T = 0, NC = 0;
};

ImageTokens image_tokens(const SyntheticBackboneConfig& C, const std::string& id, const Scene& scene,
                         const std::vector<gb::TextToken>& tokens) {
  const uint64_t seed = C.seed;
  const int64_t d = C.head_dim;
  ImageTokens im;
  im.T = static_cast<int64_t>(tokens.size());
  const int64_t T = im.T;
  im.concepts = scene.concepts();
  auto& concepts = im.concepts;
  im.role.assign(static_cast<size_t>(T), 2);
  im.token_concept.assign(static_cast<size_t>(T), -1);
  for (int64_t t = 0; t < T; ++t) {
    const auto& tok = tokens[static_cast<size_t>(t)];
    if (t == 0 && tok.special) {
      im.role[0] = 0;
      continue;
    }
    if (tok.special) continue;
    const int64_t c = synthetic_concept_of_word(tok.text);
    if (c < 0) continue;
    im.role[static_cast<size_t>(t)] = 1;
    im.token_concept[static_cast<size_t>(t)] = c;
    if (std::find(concepts.begin(), concepts.end(), c) == concepts.end()) concepts.push_back(c);
  }
  im.NC = static_cast<int64_t>(concepts.size());
  im.token_ci.assign(static_cast<size_t>(T), -1);
  for (int64_t t = 0; t < T; ++t)
    if (im.token_concept[static_cast<size_t>(t)] >= 0)
      im.token_ci[static_cast<size_t>(t)] =
          std::find(concepts.begin(), concepts.end(), im.token_concept[static_cast<size_t>(t)]) - concepts.begin();

  Rng tok_rng(seed, id, "tokens");
  im.bias.resize(static_cast<size_t>(T));
  for (auto& b : im.bias) b = static_cast<float>(tok_rng.uniform(C.token_bias_low, C.token_bias_high));
  im.u = at::zeros({T, d}, at::kFloat);
  const at::Tensor e_sos = concept_embedding(seed, -1, d, "value") * 2.0;
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor noise = normal_tensor(tok_rng, {d});
    if (im.role[static_cast<size_t>(t)] == 0) im.u[t] = e_sos;
    else if (im.role[static_cast<size_t>(t)] == 1)
      im.u[t] = concept_embedding(seed, im.token_concept[static_cast<size_t>(t)], d, "value") + 0.3 * noise;
    else im.u[t] = 0.5 * noise;
  }
  return im;
}

// A distractor is what an unreliable layer or head "sees" instead of a concept: an object-like blob at a
// wrong place (soft-edged ellipse), so noise is confusable with real objects rather than flat. [NC, s, s]
at::Tensor distractors(const SyntheticBackboneConfig& C, const std::string& id, int64_t NC, const std::string& tag,
                       int64_t side) {
  Rng rng(C.seed, id, tag);
  std::vector<at::Tensor> fields;
  const at::Tensor coords = (at::arange(side, at::kFloat) + 0.5) / static_cast<double>(side);
  const at::Tensor yy = coords.view({side, 1}), xx = coords.view({1, side});
  for (int64_t c = 0; c < NC; ++c) {
    const double cy = rng.uniform(0.15, 0.85), cx = rng.uniform(0.15, 0.85);
    const double ry = rng.uniform(0.1, 0.3), rx = rng.uniform(0.1, 0.3);
    const at::Tensor d2 = ((yy - cy) / ry).pow(2) + ((xx - cx) / rx).pow(2);
    fields.push_back(at::sigmoid(C.distractor_sharpness * (1.0 - d2.sqrt())));
  }
  return at::stack(fields, 0);
}

// The heads of one layer: reliabilities permuted per layer (a property of the model: fixed across images), and
// each head's view of the concepts [NC, P].
struct LayerHeads {
  std::vector<at::Tensor> masks;
  std::vector<double> r;
};

LayerHeads layer_heads(const SyntheticBackboneConfig& C, const std::string& id, int64_t NC, const SyntheticLayer& L,
                       const at::Tensor& layer_mask) {
  const int64_t H = C.heads, s = L.side, P = s * s;
  std::vector<int64_t> perm(static_cast<size_t>(H));
  std::iota(perm.begin(), perm.end(), 0);
  Rng perm_rng(C.seed, L.block, "heads");
  for (int64_t i = H - 1; i > 0; --i)
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(perm_rng.below(i + 1))]);
  LayerHeads heads;
  heads.r.resize(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    heads.r[static_cast<size_t>(h)] = C.head_reliability[static_cast<size_t>(perm[static_cast<size_t>(h)])];
    const double rh = heads.r[static_cast<size_t>(h)];
    heads.masks.push_back(
        (rh * layer_mask + (1.0 - rh) * distractors(C, id, NC, L.block + ":head" + std::to_string(h), s))
            .reshape({NC, P}));
  }
  return heads;
}

// The cross-attention captures of one layer (maps, values, post-values, output weight) that `spec` wants.
void cross_captures(const SyntheticBackboneConfig& C, const std::string& id, const ImageTokens& im,
                    const SyntheticLayer& L, const LayerHeads& heads, const LayerKeys& k, const gb::CaptureSpec& spec,
                    gb::TensorMap& out) {
  const int64_t H = C.heads, d = C.head_dim, T = im.T, s = L.side, P = s * s;
  Rng sos_rng(C.seed, id, "sos");  // one per-pixel start-token field per image, evaluated at each side
  const at::Tensor nu = field_tensor(sos_rng, 3, s).reshape({P});
  std::vector<at::Tensor> maps, values, posts;
  Rng vrng(C.seed, id, L.block + ":values");
  for (int64_t h = 0; h < H; ++h) {
    at::Tensor logits = at::full({P, T}, C.filler_logit, at::kFloat);
    for (int64_t t = 0; t < T; ++t) {
      if (im.role[static_cast<size_t>(t)] == 0) {
        logits.select(1, t).copy_(C.sos_logit + C.sos_pixel_amplitude * nu);
      } else if (im.role[static_cast<size_t>(t)] == 1) {
        logits.select(1, t).copy_(im.bias[static_cast<size_t>(t)] +
                                  C.content_gain *
                                      heads.masks[static_cast<size_t>(h)][im.token_ci[static_cast<size_t>(t)]]);
      }
    }
    at::Tensor A = at::softmax(logits, 1);  // [P, T]
    const double rh = heads.r[static_cast<size_t>(h)];
    at::Tensor V = im.u + C.value_noise * (1.0 - rh) * normal_tensor(vrng, {T, d});  // [T, d]
    maps.push_back(A);
    values.push_back(V);
    posts.push_back(at::matmul(A, V));  // [P, d]
  }
  if (spec.wants(k.map))
    out[k.map] = spec.cross_map_head_mean ? gb::head_average_maps(at::stack(maps, 0).unsqueeze(0), at::kFloat)[0]
                                          : at::stack(maps, 0);
  if (spec.wants(k.value)) out[k.value] = at::stack(values, 0);
  if (spec.wants(k.post)) out[k.post] = at::cat(posts, 1);
  if (spec.wants(k.weight)) {
    at::Tensor W = at::zeros({d, H * d}, at::kFloat);
    for (int64_t h = 0; h < H; ++h)
      W.narrow(1, h * d, d).copy_(at::eye(d, at::kFloat) * (0.3 + 1.5 * heads.r[static_cast<size_t>(h)]));
    out[k.weight] = W;
  }
}

// The reference-layer query features of one layer [ref_channels, s, s]: foreground in channel 0, concept
// embeddings in the others. M: the concept masks [NC, s, s].
at::Tensor query_features(const SyntheticBackboneConfig& C, const std::string& id, const ImageTokens& im,
                          const SyntheticLayer& L, const at::Tensor& M) {
  const int64_t s = L.side, P = s * s, NC = im.NC;
  Rng qrng(C.seed, id, L.block + ":q");
  at::Tensor fg = at::zeros({s, s}, at::kFloat);
  for (int64_t c = 0; c < NC; ++c)
    if (im.concepts[static_cast<size_t>(c)] < kBackgroundConcept) fg += M[c];
  at::Tensor F = at::zeros({C.ref_channels, s, s}, at::kFloat);
  F[0] = 4.0 * (fg.clamp(0, 1) - 0.5) + 0.1 * normal_tensor(qrng, {s, s});
  if (C.ref_channels > 1) {
    at::Tensor E = at::zeros({C.ref_channels - 1, NC}, at::kFloat);
    for (int64_t c = 0; c < NC; ++c)
      E.select(1, c).copy_(concept_embedding(C.seed, im.concepts[static_cast<size_t>(c)], C.ref_channels - 1, "ref"));
    F.narrow(0, 1, C.ref_channels - 1)
        .copy_(at::matmul(E, M.reshape({NC, P})).reshape({C.ref_channels - 1, s, s}) +
               0.1 * normal_tensor(qrng, {C.ref_channels - 1, s, s}));
  }
  return F;
}

// The self-attention maps of one layer [H, P, P] (or the head mean [1, P, P]).
at::Tensor self_maps(const SyntheticBackboneConfig& C, const std::string& id, int64_t NC, const SyntheticLayer& L,
                     const at::Tensor& M, bool head_mean) {
  const int64_t s = L.side, P = s * s;
  // Locality: squared distance between grid cells in units of the side.
  at::Tensor coords = at::arange(s, at::kFloat) / static_cast<double>(s);
  at::Tensor yy = coords.view({s, 1}).expand({s, s}).reshape({P});
  at::Tensor xx = coords.view({1, s}).expand({s, s}).reshape({P});
  at::Tensor dist2 = (yy.view({P, 1}) - yy.view({1, P})).pow(2) + (xx.view({P, 1}) - xx.view({1, P})).pow(2);
  const at::Tensor locality = dist2 / (2.0 * C.self_sigma * C.self_sigma);
  std::vector<at::Tensor> selfs;
  for (int64_t h = 0; h < C.heads; ++h) {
    // Self attention groups by appearance as well as semantics: coherence rises with the layer's
    // reliability but never vanishes (self_floor), so high-resolution layers still propagate usefully.
    const double qs = C.self_floor + (1.0 - C.self_floor) * L.reliability;
    const at::Tensor m =
        (qs * M + (1.0 - qs) * distractors(C, id, NC, L.block + ":self" + std::to_string(h), s)).reshape({NC, P});
    at::Tensor coh = at::matmul(m.t(), m);  // [P, P]
    selfs.push_back(at::softmax(C.self_beta * coh - locality, 1));
  }
  at::Tensor S = at::stack(selfs, 0);
  return head_mean ? S.mean(0, /*keepdim=*/true) : S;
}

}  // namespace

gb::TensorMap SyntheticBackbone::capture_one(const std::string& id, const std::string& prompt,
                                             const gb::CaptureSpec& spec) const {
  const auto& C = config_;
  // Dataset ids are image file names ("synth_000003.jpg"); the scene is keyed by the stem.
  const std::string stem =
      id.size() > 4 && id.compare(id.size() - 4, 4, ".jpg") == 0 ? id.substr(0, id.size() - 4) : id;
  const Scene scene = make_scene(stem, C.world);
  const ImageTokens im = image_tokens(C, id, scene, tokenizer_->encode(prompt));

  std::map<int64_t, at::Tensor> masks_by_side;  // [NC, s, s]
  auto masks = [&](int64_t side) -> const at::Tensor& {
    auto it = masks_by_side.find(side);
    if (it == masks_by_side.end()) it = masks_by_side.emplace(side, concept_masks(scene, im.concepts, side)).first;
    return it->second;
  };

  gb::TensorMap out;
  for (const auto& L : C.layers) {
    const LayerKeys k = layer_keys(L);
    const bool want_cross = spec.wants(k.map) || spec.wants(k.value) || spec.wants(k.post) || spec.wants(k.weight);
    const bool want_self = spec.wants(k.self);
    if (!want_cross && !want_self && !spec.wants(k.q)) continue;
    const double q = L.reliability;
    const at::Tensor M = masks(L.side);
    const at::Tensor layer_mask =
        q * M + (1.0 - q) * distractors(C, id, im.NC, L.block + ":layer", L.side);  // [NC, s, s]
    const LayerHeads heads = layer_heads(C, id, im.NC, L, layer_mask);
    if (want_cross) cross_captures(C, id, im, L, heads, k, spec, out);
    if (spec.wants(k.q)) out[k.q] = query_features(C, id, im, L, M);
    if (want_self) out[k.self] = self_maps(C, id, im.NC, L, M, spec.self_map_head_mean);
  }
  for (const auto& key : spec.keys)
    if (!out.count(key)) fail("synthetic backbone: cannot capture '{}' (see `goca-bench list-layers`)", key);
  return out;
}

void SyntheticBackbone::prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) {
  if (!require_prepared_) return;
  if (batch_size < 1) throw std::logic_error("prepare_prompts: batch_size < 1");
  prepared_.insert(prompts.begin(), prompts.end());
}

gb::Capture SyntheticBackbone::capture(const gb::BackboneBatch& batch, const gb::CaptureSpec& spec) {
  const auto t0 = Clock::now();
  if (require_prepared_)
    for (const auto& p : batch.prompts)
      if (!prepared_.count(p))
        fail("synthetic: the text encoders were freed (text_encoder: free) but the prompt \"{}\" was not prepared", p);
  std::vector<gb::TensorMap> samples;
  for (int64_t i = 0; i < batch.size(); ++i) samples.push_back(capture_one(batch.ids[i], batch.prompts[i], spec));
  gb::Capture cap = gb::Capture::from_samples(samples);
  if (device_ != "cpu")
    for (auto& [k, v] : cap.tensors) v = v.to(at::Device(device_));
  cap.stage_seconds["denoiser"] = std::chrono::duration<double>(Clock::now() - t0).count();
  return cap;
}

namespace {

// The generator parameters a run may set under `options:` (docs/runner.md), read into the config.
SyntheticBackboneConfig synthetic_config(const BackboneOptions& o) {
  SyntheticBackboneConfig c = SyntheticBackboneConfig::sd15_like();
  c.seed = o.seed;
  c.heads = param_or(o, "heads", c.heads);
  c.head_dim = param_or(o, "head_dim", c.head_dim);
  c.sos_logit = param_or(o, "sos_logit", c.sos_logit);
  c.sos_pixel_amplitude = param_or(o, "sos_pixel_amplitude", c.sos_pixel_amplitude);
  c.content_gain = param_or(o, "content_gain", c.content_gain);
  c.filler_logit = param_or(o, "filler_logit", c.filler_logit);
  c.value_noise = param_or(o, "value_noise", c.value_noise);
  c.self_beta = param_or(o, "self_beta", c.self_beta);
  c.self_sigma = param_or(o, "self_sigma", c.self_sigma);
  c.self_floor = param_or(o, "self_floor", c.self_floor);
  c.distractor_sharpness = param_or(o, "distractor_sharpness", c.distractor_sharpness);
  c.head_reliability = param_or(o, "head_reliability", c.head_reliability);
  return c;
}

}  // namespace

BackboneKind synthetic_backbone_kind() {
  using T = BackboneParam::Type;
  BackboneKind k;
  k.kind = "synthetic";
  k.description = "synthetic attention backbone (SD1.5-shaped; the embedded quickstart and the runner's tests)";
  k.defaults.gpu_dtype = at::kFloat;
  k.defaults.image_size = 512;
  k.defaults.text_length = 77;
  k.needs_weights = false;
  // text_encoder: free makes it refuse prompts the run did not pre-encode (the runner's pre-encoding pass).
  k.options = {"text_encoder"};
  k.text_encoder_modes = {TextEncoderResidency::keep, TextEncoderResidency::free};
  k.params = {{"tokenizer", T::text},
              {"heads", T::integer},
              {"head_dim", T::integer},
              {"sos_logit", T::number},
              {"sos_pixel_amplitude", T::number},
              {"content_gain", T::number},
              {"filler_logit", T::number},
              {"value_noise", T::number},
              {"self_beta", T::number},
              {"self_sigma", T::number},
              {"self_floor", T::number},
              {"distractor_sharpness", T::number},
              {"head_reliability", T::numbers}};
  k.load = [](const std::optional<CheckpointFolder>&, const BackboneOptions& o) -> std::unique_ptr<Backbone> {
    std::shared_ptr<const TextTokenizer> tok = o.tokenizer;
    const std::string merges = param_or(o, "tokenizer", std::string());
    if (!merges.empty()) tok = text::ClipTokenizer::from_merges(merges);
    if (!tok) fail("the synthetic backbone needs options.tokenizer (a CLIP merges file)");
    auto bb = std::make_unique<SyntheticBackbone>(synthetic_config(o), tok, o.device);
    bb->require_prepared_prompts(o.text_encoder == TextEncoderResidency::free);
    return bb;
  };
  k.layers = [len = k.defaults.text_length](const BackboneOptions& o, const std::optional<std::string>&) {
    return synthetic_layers(synthetic_config(o), o.tokenizer ? o.tokenizer->max_length() : len);
  };
  return k;
}

}  // namespace gb::bb
