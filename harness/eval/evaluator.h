#pragma once
// The per-image evaluation of score maps (the paper's `quantitative_evaluation`, spec goca-method.md §F):
// upsample (K+1, S, S) maps bilinearly (align_corners=False) to the label size, place channel k into class
// channel present[k], fill channel 0 by the background rule for every threshold, argmax over the C class
// channels, and accumulate one int64 confusion matrix per threshold. See docs/evaluation.md.
#include "harness/eval/confusion.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gb::eval {

enum class BackgroundMethod { vanilla, max, exact, avg, offset };
BackgroundMethod parse_background_method(const std::string& s);
std::string to_string(BackgroundMethod m);

// Which threshold of the sweep is reported: `best` picks the highest mIoU on the evaluated split (what the
// paper implicitly does: an oracle choice on the test set); `fixed` reports the given threshold.
struct ThresholdRule {
  enum class Kind { best, fixed } kind = Kind::best;
  double value = 0;
  static ThresholdRule parse(const std::string& s);  // "best" | "fixed:0.1" | "fixed: 0.1"
  std::string to_string() const;
};

struct EvalConfig {
  Protocol protocol = Protocol::paper;
  int64_t num_classes = 0;
  int64_t ignore_index = 255;  // standard protocol only
  BackgroundMethod method = BackgroundMethod::offset;
  std::vector<double> thresholds = {-0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4};
  ThresholdRule rule;
};

struct ThresholdMetrics {
  double threshold = 0;
  Metrics metrics;
};

struct SweepResult {
  std::vector<ThresholdMetrics> per_threshold;  // in config order
  size_t chosen = 0;                            // index into per_threshold chosen by the rule
  ThresholdRule rule;
  int64_t images = 0;
  std::string to_json() const;  // metrics as fractions
};

class SweepEvaluator {
 public:
  explicit SweepEvaluator(EvalConfig config);

  const EvalConfig& config() const { return config_; }
  // maps: (K+1, S, S) float, channels = K objects then the background support map; present: K class ids
  // (channel k -> class present[k]); label: (H, W) integer. CPU or CUDA (maps and label may differ; the
  // work runs on the maps' device).
  void add_image(const at::Tensor& maps, const std::vector<int64_t>& present, const at::Tensor& label);
  // The predicted class map for one threshold (same rules), int64 (H, W) on the maps' device.
  at::Tensor predict(const at::Tensor& maps, const std::vector<int64_t>& present, int64_t height, int64_t width,
                     double threshold) const;
  void merge(const SweepEvaluator& other);  // same config; sums the matrices

  const std::vector<ConfusionMatrix>& matrices() const { return matrices_; }
  std::vector<ConfusionMatrix>& matrices() { return matrices_; }
  int64_t images() const { return images_; }
  SweepResult result() const;

 private:
  // Returns (candidate ids ascending, stacked candidate scores (n, H, W) float32, support map (H, W)).
  void prepare(const at::Tensor& maps, const std::vector<int64_t>& present, int64_t H, int64_t W, at::Tensor& ids,
               at::Tensor& stack, at::Tensor& support) const;
  void fill_background(at::Tensor& stack, at::Tensor& support, const at::Tensor& beta0, double threshold) const;

  EvalConfig config_;
  std::vector<ConfusionMatrix> matrices_;
  int64_t images_ = 0;
};

}  // namespace gb::eval
