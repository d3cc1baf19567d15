#pragma once
// CLIP score as torchmetrics' CLIPScore computes it (docs/metrics.md, "CLIP score") with a Hugging Face
// CLIPModel folder: config.json, model.safetensors, preprocessor_config.json, vocab.json + merges.txt.
//   image: CLIPImageProcessor (resize the shortest edge to size.shortest_edge with PIL BICUBIC on 8-bit, the
//          other edge int(S·long/short); centre crop (top (H - h) // 2, left (W - w) // 2); x·rescale_factor in
//          float64 -> float32; (x - mean) / std in float32) -> vision tower -> visual_projection;
//   text:  CLIP BPE [BOS] tokens [EOS], cut to max_position_embeddings (torchmetrics truncates after padding,
//          so an over-long caption loses its EOS) -> text tower (gb::bb::ClipTextModel) -> text_projection;
//   score: 100·cos(image, text) per pair; CLIPScore = max(mean over pairs, 0).
#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace gb::metrics {

struct ClipImageProcessorConfig {  // preprocessor_config.json
  bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true;
  int64_t shortest_edge = 224;         // resize target (size.shortest_edge or an int); 0 with height/width
  int64_t resize_h = 0, resize_w = 0;  // size.height / size.width (fixed-size resize) when shortest_edge == 0
  int64_t crop_h = 224, crop_w = 224;
  double rescale_factor = 1.0 / 255.0;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
  static ClipImageProcessorConfig from_json(const std::string& path);
};

// RGB uint8 [H, W, 3] -> float32 [3, crop_h, crop_w].
at::Tensor clip_preprocess(const at::Tensor& rgb_u8_hw3, const ClipImageProcessorConfig& config);

class ClipScorer {
 public:
  // Opens and checks the whole folder (UserError naming the file for anything missing or wrong).
  ClipScorer(const std::string& clip_dir, at::Device device);
  ~ClipScorer();
  const ClipImageProcessorConfig& processor() const;
  // L2-normalised embeddings, float32 [B, projection_dim] on the CPU.
  at::Tensor image_embeddings(const at::Tensor& pixels /* [B, 3, h, w] */) const;
  at::Tensor text_embeddings(const std::vector<std::string>& texts) const;
  // Token ids as torchmetrics feeds them: [BOS] ids [EOS], cut to max_position_embeddings.
  std::vector<int64_t> token_ids(const std::string& text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ClipScoreResult {
  double score = 0;               // torchmetrics CLIPScore: max(mean of per_image, 0)
  std::vector<double> per_image;  // 100·cos
};

// 100·cos(image embedding, text embedding) of each pair (RGB uint8 [H, W, 3] images), one forward pass per tower.
std::vector<double> clip_pair_scores(const ClipScorer& scorer, const std::vector<at::Tensor>& images,
                                     const std::vector<std::string>& texts);

// Scores image i (RGB uint8 [H, W, 3] read from paths[i]) against texts[i], `batch_size` pairs at a time.
ClipScoreResult clip_score(const ClipScorer& scorer, const std::vector<std::string>& image_paths,
                           const std::vector<std::string>& texts, int64_t batch_size);

}  // namespace gb::metrics
