#pragma once
// Evaluating one image of a segmentation run: every variant segments the image's captures, the evaluator sweeps
// the background thresholds against the label, and the outcome becomes the image's journal record
// (record_codec.h), with example overlays for the first images.
#include "datasets/sample.h"
#include "harness/core/capture.h"
#include "harness/eval/evaluator.h"
#include "harness/runner/integration.h"
#include "harness/runner/record_codec.h"
#include "harness/runner/variant_run.h"
#include "reports/results.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace gb::runner {

// One image as the pipeline's workers prepare it: loaded (nullopt: the dataset skipped it) and prompted.
struct PreparedItem {
  int64_t index = 0;
  std::optional<gb::datasets::Sample> sample;
  PreparedPrompt prompt;
  double decode_s = 0, prompt_s = 0;
};

// What is the same for every image of a (dataset, backbone).
struct ItemEvaluation {
  const std::vector<VariantRun>* variants = nullptr;
  gb::eval::EvalConfig eval;
  std::string device;            // where labels go ("cpu" or a CUDA device)
  double example_threshold = 0;  // variant_run.h
  int64_t examples = 0;          // images with index < examples get overlays (main-table variants only)
};

// A variant's diagnostics: the layer weights (per-pixel ones averaged) keyed by the method's layers, and each
// cross-map key's head weights averaged over pixels (NaN counted as 0).
VariantDelta diagnostics(const gb::goca::SegmentOutput& out, const std::vector<std::string>& layers);

// The journal record of one loaded image (item.sample set) whose captures are `captures`; adds the
// aggregation and evaluation seconds to `seconds`.
nlohmann::json evaluate_item(const PreparedItem& item, const gb::TensorMap& captures, const ItemEvaluation& how,
                             std::map<std::string, double>& seconds);

}  // namespace gb::runner
