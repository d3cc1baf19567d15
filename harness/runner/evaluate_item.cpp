#include "harness/runner/evaluate_item.h"

#include "harness/core/trace.h"
#include "harness/runner/run_support.h"
#include "reports/overlay.h"

#include <ATen/ATen.h>

namespace gb::runner {

using nlohmann::json;

VariantDelta diagnostics(const gb::goca::SegmentOutput& out, const std::vector<std::string>& layers) {
  VariantDelta d;
  if (out.layer_weights.defined()) {
    at::Tensor lw = out.layer_weights.to(at::kCPU).to(at::kDouble);
    if (lw.dim() > 1) lw = lw.reshape({lw.size(0), -1}).mean(1);
    for (int64_t l = 0; l < lw.size(0) && l < static_cast<int64_t>(layers.size()); ++l)
      d.layer_weights[layers[static_cast<size_t>(l)]] = lw[l].item<double>();
  }
  for (const auto& [layer, w] : out.head_weights) {
    at::Tensor m = at::nan_to_num(w.to(at::kCPU).to(at::kDouble), 0.0).mean(0);
    d.head_weights[layer] = std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
  }
  return d;
}

json evaluate_item(const PreparedItem& p, const gb::TensorMap& captures, const ItemEvaluation& how,
                   std::map<std::string, double>& seconds) {
  std::vector<int64_t> present;
  for (const auto& o : p.prompt.groups.objects) present.push_back(o.class_id);
  at::Tensor label = p.sample->label;
  if (how.device != "cpu") label = label.to(at::Device(how.device));
  json rec = {{"i", p.index}, {"id", p.sample->id}, {"v", json::array()}};
  json examples = json::array();
  for (const auto& vr : *how.variants) {
    auto t0 = Clock::now();
    gb::trace::Span aggregation_span("aggregation", vr.variant.name + " " + p.sample->id);
    const gb::baselines::PlanOutput plan_out = vr.segmentor->needs_image()
                                                   ? vr.segmentor->run(captures, p.prompt.groups, p.sample->image)
                                                   : vr.segmentor->run(captures, p.prompt.groups);
    const at::Tensor& scores = plan_out.final_scores();
    VariantDelta d = diagnostics(plan_out.segment, vr.plan.method.layers);
    seconds["aggregation"] += seconds_since(t0);
    aggregation_span.end();
    t0 = Clock::now();
    gb::trace::Span evaluation_span("evaluation", vr.variant.name + " " + p.sample->id);
    gb::eval::SweepEvaluator ev(how.eval);
    ev.add_image(scores, present, label);
    for (const auto& cm : ev.matrices()) d.sparse.push_back(sparse_counts(cm));
    if (p.index < how.examples && vr.variant.group.empty()) {
      const at::Tensor pred = ev.predict(scores, present, label.size(0), label.size(1), how.example_threshold);
      examples.push_back({{"variant", vr.variant.name},
                          {"png", gb::reports::overlay_png_base64(p.sample->image, p.sample->label, pred)}});
    }
    seconds["evaluation"] += seconds_since(t0);
    rec["v"].push_back(delta_to_json(d));
  }
  if (!examples.empty()) rec["ex"] = examples;
  return rec;
}

}  // namespace gb::runner
