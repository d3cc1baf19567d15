#include "baselines/plan_segmentor.h"

#include "baselines/fttm.h"
#include "harness/core/errors.h"

namespace gb::baselines {
namespace {

goca::MethodConfig checked(const MethodPlan& plan, const std::string& source) {
  if (plan.post == PostProcess::None && !plan.method.self_layers.empty())
    fail_file(source, "post is 'none' but self_layers lists propagation maps");
  if (plan.post != PostProcess::None && plan.method.self_layers.empty())
    fail_file(source, "post '{}' needs self_layers for the affinity propagation", to_string(plan.post));
  if (plan.post == PostProcess::Dcrf && plan.method.keep_all_objects)
    fail_file(source, "post 'dcrf' cannot run with keep_all_objects");
  plan.method.validate(source);
  return plan.method;
}

}  // namespace

PlanSegmentor::PlanSegmentor(MethodPlan plan, const std::string& source)
    : plan_(std::move(plan)), segmentor_(checked(plan_, source)) {}

PlanOutput PlanSegmentor::run(const gb::TensorMap& sample, const gb::TokenGroups& groups,
                              const std::optional<at::Tensor>& image) const {
  PlanOutput out;
  out.segment = segmentor_.run(sample, groups);
  if (plan_.post == PostProcess::Dcrf) {
    if (!image || !image->defined()) fail("method post 'dcrf' (FTTM) needs the image");
    out.crf = fttm_dcrf(out.segment.scores, *image, crf_params_);
  }
  return out;
}

gb::CaptureSpec union_capture(const std::vector<const PlanSegmentor*>& segmentors) {
  gb::CaptureSpec spec;
  for (size_t i = 0; i < segmentors.size(); ++i) {
    if (i == 0) spec = segmentors[i]->required_capture();
    else spec.merge(segmentors[i]->required_capture());
  }
  return spec;
}

}  // namespace gb::baselines
