#include "harness/runner/variant_run.h"

#include <cmath>

namespace gb::runner {

std::vector<VariantRun> load_variants(const std::vector<Variant>& variants) {
  std::vector<VariantRun> out;
  for (const auto& v : variants) {
    VariantRun vr;
    vr.variant = v;
    vr.plan = gb::baselines::load_method_plan(v.method_file, v.method_overrides);
    vr.segmentor = std::make_unique<gb::baselines::PlanSegmentor>(vr.plan, v.method_file);
    out.push_back(std::move(vr));
  }
  return out;
}

std::vector<gb::reports::Cell> new_cells(const std::string& dataset, const std::string& backbone,
                                         const std::vector<Variant>& variants, const gb::eval::EvalConfig& eval) {
  std::vector<gb::reports::Cell> cells;
  for (const auto& v : variants) {
    gb::reports::Cell c;
    c.dataset = dataset;
    c.backbone = backbone;
    c.variant = v.name;
    c.method = v.method;
    c.type = v.type;
    c.group = v.group;
    c.axes = v.axes;
    c.method_config = yaml_to_json(v.method_yaml);
    c.background = gb::eval::to_string(eval.method);
    c.select_rule = eval.rule.kind == gb::eval::ThresholdRule::Kind::fixed ? "fixed" : "best";
    c.fixed_threshold = eval.rule.value;
    for (double t : eval.thresholds) {
      gb::reports::ThresholdResult tr;
      tr.threshold = t;
      tr.confusion = gb::eval::ConfusionMatrix(eval.num_classes);
      c.thresholds.push_back(tr);
    }
    cells.push_back(std::move(c));
  }
  return cells;
}

double example_threshold(const gb::eval::EvalConfig& eval) {
  if (eval.rule.kind == gb::eval::ThresholdRule::Kind::fixed) return eval.rule.value;
  double best = eval.thresholds.front();
  for (double t : eval.thresholds)
    if (std::fabs(t) < std::fabs(best)) best = t;
  return best;
}

}  // namespace gb::runner
