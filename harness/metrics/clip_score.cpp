#include "harness/metrics/clip_score.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>

#include "harness/backbones/clip_text.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/json_config.h"
#include "harness/backbones/weights.h"
#include "harness/core/errors.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"
#include "harness/text/clip_tokenizer.h"

namespace fs = std::filesystem;

namespace gb::metrics {
namespace {

using bb::json_get;
using bb::WeightStore;

// {"shortest_edge": n} | {"height": h, "width": w} | n (legacy), as transformers' get_size_dict reads them.
void read_size(const nlohmann::json& j, const char* key, bool default_to_square, int64_t& shortest, int64_t& h,
               int64_t& w, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (it->is_number_integer()) {
    const int64_t n = it->get<int64_t>();
    if (default_to_square) {
      shortest = 0;
      h = w = n;
    } else {
      shortest = n;
    }
    return;
  }
  if (!it->is_object()) fail_file(path, "\"{}\" must be an integer or an object", key);
  if (it->contains("shortest_edge")) {
    json_get(*it, "shortest_edge", shortest, path);
    return;
  }
  if (it->contains("height") && it->contains("width")) {
    shortest = 0;
    json_get(*it, "height", h, path);
    json_get(*it, "width", w, path);
    return;
  }
  fail_file(path, "\"{}\" needs shortest_edge or height and width", key);
}

struct VisionConfig {  // transformers CLIPVisionConfig defaults
  int64_t hidden_size = 768, intermediate_size = 3072, num_hidden_layers = 12, num_attention_heads = 12;
  int64_t num_channels = 3, image_size = 224, patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
};

VisionConfig read_vision_config(const std::string& path) {
  auto j = bb::read_json_file(path);
  auto it = j.find("vision_config");
  if (it == j.end() || !it->is_object()) fail_file(path, "no \"vision_config\" object (not a CLIPModel config.json)");
  VisionConfig c;
  json_get(*it, "hidden_size", c.hidden_size, path);
  json_get(*it, "intermediate_size", c.intermediate_size, path);
  json_get(*it, "num_hidden_layers", c.num_hidden_layers, path);
  json_get(*it, "num_attention_heads", c.num_attention_heads, path);
  json_get(*it, "num_channels", c.num_channels, path);
  json_get(*it, "image_size", c.image_size, path);
  json_get(*it, "patch_size", c.patch_size, path);
  json_get(*it, "hidden_act", c.hidden_act, path);
  json_get(*it, "layer_norm_eps", c.layer_norm_eps, path);
  if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu")
    fail_file(path, "vision hidden_act '{}' is not supported (quick_gelu or gelu)", c.hidden_act);
  if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
    fail_file(path, "vision hidden_size {} is not divisible by num_attention_heads {}", c.hidden_size,
              c.num_attention_heads);
  if (c.num_channels != 3) fail_file(path, "vision num_channels {} is not supported (3)", c.num_channels);
  if (c.patch_size <= 0 || c.image_size % c.patch_size != 0)
    fail_file(path, "vision image_size {} is not a multiple of patch_size {}", c.image_size, c.patch_size);
  return c;
}

// transformers CLIPVisionTransformer + visual_projection.
struct VisionTower {
  VisionConfig cfg;
  at::Tensor class_embedding, patch_weight, position_embedding;
  bb::LayerNorm pre_ln, post_ln;
  std::vector<bb::ClipEncoderLayer> layers;
  bb::Linear projection;
  VisionTower(const VisionConfig& c, const WeightStore& ws, int64_t projection_dim) : cfg(c) {
    const int64_t d = c.hidden_size, grid = c.image_size / c.patch_size;
    WeightStore vm = ws.sub("vision_model");
    class_embedding = vm.get("embeddings.class_embedding", {d});
    patch_weight = vm.get("embeddings.patch_embedding.weight", {d, 3, c.patch_size, c.patch_size});
    position_embedding = vm.get("embeddings.position_embedding.weight", {grid * grid + 1, d});
    vm.ignore("embeddings.position_ids");
    pre_ln = bb::LayerNorm(vm.sub("pre_layrnorm"), d, c.layer_norm_eps);
    const auto act = c.hidden_act == "gelu" ? bb::Activation::GELU : bb::Activation::QuickGELU;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      layers.emplace_back(vm.sub("encoder.layers." + std::to_string(i)), d, c.intermediate_size, c.num_attention_heads,
                          c.layer_norm_eps, act);
    post_ln = bb::LayerNorm(vm.sub("post_layernorm"), d, c.layer_norm_eps);
    projection = bb::Linear(ws.sub("visual_projection"), d, projection_dim, false);
  }
  at::Tensor operator()(const at::Tensor& pixels) const {
    if (pixels.size(2) != cfg.image_size || pixels.size(3) != cfg.image_size)
      fail(
          "CLIP vision tower expects {}x{} pixels, got {}x{} (preprocessor_config.json's crop_size does not match "
          "config.json's image_size)",
          cfg.image_size, cfg.image_size, pixels.size(2), pixels.size(3));
    const int64_t b = pixels.size(0);
    at::Tensor x =
        at::conv2d(pixels.to(patch_weight.scalar_type()), patch_weight, {}, {cfg.patch_size, cfg.patch_size});
    x = x.flatten(2).transpose(1, 2);
    x = at::cat({class_embedding.expand({b, 1, -1}), x}, 1) + position_embedding.unsqueeze(0);
    x = pre_ln(x);
    for (const auto& l : layers) x = l(x, {});
    at::Tensor pooled = post_ln(x.select(1, 0));
    return projection(pooled);
  }
};

at::Tensor l2_normalise(const at::Tensor& x) { return x / x.norm(2, -1, true); }

}  // namespace

ClipImageProcessorConfig ClipImageProcessorConfig::from_json(const std::string& path) {
  auto j = bb::read_json_file(path);
  ClipImageProcessorConfig c;
  json_get(j, "do_resize", c.do_resize, path);
  json_get(j, "do_center_crop", c.do_center_crop, path);
  json_get(j, "do_rescale", c.do_rescale, path);
  json_get(j, "do_normalize", c.do_normalize, path);
  json_get(j, "rescale_factor", c.rescale_factor, path);
  int64_t dummy = 0;
  read_size(j, "size", false, c.shortest_edge, c.resize_h, c.resize_w, path);
  read_size(j, "crop_size", true, dummy, c.crop_h, c.crop_w, path);
  if (dummy != 0) fail_file(path, "\"crop_size\" must give height and width");
  for (const char* key : {"image_mean", "image_std"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    std::vector<double> v;
    json_get(j, key, v, path);
    if (v.size() != 3) fail_file(path, "\"{}\" must have 3 values, got {}", key, v.size());
    auto& dst = std::string(key) == "image_mean" ? c.mean : c.std;
    for (int i = 0; i < 3; ++i) dst[i] = static_cast<float>(v[i]);  // numpy: np.array(mean, dtype=float32)
  }
  int64_t resample = 3;
  json_get(j, "resample", resample, path);
  if (resample != 3) fail_file(path, "resample {} is not supported (3, bicubic, is CLIP's)", resample);
  return c;
}

at::Tensor clip_preprocess(const at::Tensor& rgb, const ClipImageProcessorConfig& c) {
  if (rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte)
    fail("CLIP preprocessing expects an RGB uint8 [H, W, 3] image, got {}", bb::shape_str(rgb.sizes()));
  at::Tensor img = rgb;
  if (c.do_resize) {
    const int64_t h = img.size(0), w = img.size(1);
    int64_t oh = c.resize_h, ow = c.resize_w;
    if (c.shortest_edge > 0) {
      const int64_t s = std::min(h, w), l = std::max(h, w);
      // int(requested_short * long / short) in Python: a float64 quotient, truncated.
      const int64_t nl = static_cast<int64_t>(static_cast<double>(c.shortest_edge * l) / static_cast<double>(s));
      oh = w <= h ? nl : c.shortest_edge;
      ow = w <= h ? c.shortest_edge : nl;
    }
    img = bb::pil_resize_bicubic(img.contiguous(), ow, oh);
  }
  if (c.do_center_crop) {
    const int64_t h = img.size(0), w = img.size(1);
    if (c.crop_h > h || c.crop_w > w)
      fail("CLIP centre crop {}x{} is larger than the resized image {}x{} (padding is not supported)", c.crop_w,
           c.crop_h, w, h);
    img = img.narrow(0, (h - c.crop_h) / 2, c.crop_h).narrow(1, (w - c.crop_w) / 2, c.crop_w);
  }
  at::Tensor x = img.permute({2, 0, 1}).contiguous();
  if (c.do_rescale) {
    x = x.to(at::kDouble).mul(c.rescale_factor).to(at::kFloat);
  } else {
    x = x.to(at::kFloat);
  }
  if (c.do_normalize) {
    const at::Tensor mean = at::tensor(std::vector<float>(c.mean.begin(), c.mean.end())).view({3, 1, 1});
    const at::Tensor std = at::tensor(std::vector<float>(c.std.begin(), c.std.end())).view({3, 1, 1});
    x = (x - mean) / std;
  }
  return x;
}

struct ClipScorer::Impl {
  ClipImageProcessorConfig processor;
  bb::ClipTextConfig text_cfg;
  std::unique_ptr<text::ClipTokenizer> tokenizer;
  std::unique_ptr<bb::ClipTextModel> text;
  std::unique_ptr<VisionTower> vision;
  at::Device device = at::kCPU;
};

ClipScorer::ClipScorer(const std::string& dir, at::Device device) : impl_(std::make_unique<Impl>()) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail_file(dir, "CLIP model folder not found");
  auto file = [&](const char* name) {
    const std::string p = (fs::path(dir) / name).string();
    if (!fs::is_regular_file(p, ec)) fail_file(p, "missing from the CLIP model folder");
    return p;
  };
  const std::string config = file("config.json");
  impl_->device = device;
  impl_->processor = ClipImageProcessorConfig::from_json(file("preprocessor_config.json"));
  impl_->text_cfg = bb::ClipTextConfig::from_clip_model_json(config);
  const VisionConfig vcfg = read_vision_config(config);
  impl_->tokenizer = text::ClipTokenizer::from_files(file("vocab.json"), file("merges.txt"), text::ClipTokenizer::kEnd,
                                                     impl_->text_cfg.max_position_embeddings);
  auto ckpt = std::make_shared<const SafetensorsCheckpoint>(SafetensorsCheckpoint::open(file("model.safetensors")));
  WeightStore ws(ckpt, file("model.safetensors"), at::kFloat, device);
  ws.ignore("logit_scale");
  impl_->text = std::make_unique<bb::ClipTextModel>(impl_->text_cfg, ws);
  impl_->vision = std::make_unique<VisionTower>(vcfg, ws, impl_->text_cfg.projection_dim);
  ws.finish();
}

ClipScorer::~ClipScorer() = default;

const ClipImageProcessorConfig& ClipScorer::processor() const { return impl_->processor; }

std::vector<int64_t> ClipScorer::token_ids(const std::string& text) const {
  std::vector<int64_t> ids{impl_->tokenizer->bos_id()};
  for (int64_t id : impl_->tokenizer->encode_ids(text)) ids.push_back(id);
  ids.push_back(impl_->tokenizer->eos_id());
  if (static_cast<int64_t>(ids.size()) > impl_->text_cfg.max_position_embeddings)
    ids.resize(static_cast<size_t>(impl_->text_cfg.max_position_embeddings));
  return ids;
}

at::Tensor ClipScorer::image_embeddings(const at::Tensor& pixels) const {
  return l2_normalise((*impl_->vision)(pixels.to(impl_->device))).to(at::kCPU, at::kFloat);
}

at::Tensor ClipScorer::text_embeddings(const std::vector<std::string>& texts) const {
  // Right-padded to the longest with the pad token; with the causal mask the padding never reaches the pooled
  // (EOS, or argmax-id) position, as with transformers' attention mask.
  std::vector<std::vector<int64_t>> all;
  size_t longest = 0;
  for (const auto& t : texts) {
    all.push_back(token_ids(t));
    longest = std::max(longest, all.back().size());
  }
  at::Tensor ids = at::full({static_cast<int64_t>(texts.size()), static_cast<int64_t>(longest)},
                            impl_->tokenizer->pad_id(), at::kLong);
  for (size_t i = 0; i < all.size(); ++i)
    for (size_t k = 0; k < all[i].size(); ++k) ids[i][k] = all[i][k];
  auto out = impl_->text->forward(ids);
  return l2_normalise(out.text_embeds).to(at::kCPU, at::kFloat);
}

std::vector<double> clip_pair_scores(const ClipScorer& scorer, const std::vector<at::Tensor>& images,
                                     const std::vector<std::string>& texts) {
  if (images.size() != texts.size()) fail("clip score: {} images but {} texts", images.size(), texts.size());
  if (images.empty()) return {};
  std::vector<at::Tensor> px;
  px.reserve(images.size());
  for (const auto& im : images) px.push_back(clip_preprocess(im, scorer.processor()));
  const at::Tensor cos = (scorer.image_embeddings(at::stack(px)) * scorer.text_embeddings(texts))
                             .sum(-1)
                             .mul(100)
                             .to(at::kDouble)
                             .contiguous();
  return std::vector<double>(cos.data_ptr<double>(), cos.data_ptr<double>() + cos.numel());
}

ClipScoreResult clip_score(const ClipScorer& scorer, const std::vector<std::string>& paths,
                           const std::vector<std::string>& texts, int64_t batch_size) {
  if (paths.size() != texts.size()) fail("clip score: {} images but {} texts", paths.size(), texts.size());
  if (paths.empty()) fail("clip score: no images");
  if (batch_size < 1) fail("--batch-size must be positive, got {}", batch_size);
  ClipScoreResult r;
  double sum = 0;
  const size_t n = paths.size();
  for (size_t begin = 0; begin < n; begin += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(n, begin + static_cast<size_t>(batch_size));
    std::vector<at::Tensor> images;
    std::vector<std::string> tx;
    for (size_t i = begin; i < end; ++i) {
      images.push_back(read_image_rgb(paths[i]));
      tx.push_back(texts[i]);
    }
    for (const double v : clip_pair_scores(scorer, images, tx)) {
      r.per_image.push_back(v);
      sum += v;
    }
  }
  r.score = std::max(sum / static_cast<double>(n), 0.0);
  return r;
}

}  // namespace gb::metrics
