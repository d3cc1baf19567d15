#pragma once
// The expanded variants of one backbone, ready to segment, and the result cells they fill per dataset.
#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "harness/eval/evaluator.h"
#include "harness/runner/experiment.h"
#include "reports/results.h"

#include <memory>
#include <string>
#include <vector>

namespace gb::runner {

// One variant of one backbone, ready to run.
struct VariantRun {
  Variant variant;
  gb::baselines::MethodPlan plan;
  std::unique_ptr<gb::baselines::PlanSegmentor> segmentor;
};

// Reads each variant's method file with its overrides and builds its segmentor (UserError on a bad method).
std::vector<VariantRun> load_variants(const std::vector<Variant>& variants);

// One empty cell per variant of a (dataset, backbone), in variant order: names, method and ablation columns,
// resolved method config, the dataset's background rule and threshold selection, and one zeroed confusion
// matrix per threshold.
std::vector<gb::reports::Cell> new_cells(const std::string& dataset, const std::string& backbone,
                                         const std::vector<Variant>& variants, const gb::eval::EvalConfig& eval);

// The threshold the example overlays are drawn at: the fixed one, else the configured threshold closest to 0.
double example_threshold(const gb::eval::EvalConfig& eval);

}  // namespace gb::runner
