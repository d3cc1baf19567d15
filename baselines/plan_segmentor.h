#pragma once
// Runs a MethodPlan (a preset or a method file) on one capture: the goca::Segmentor, then the plan's
// post-processing. This is how the baselines are Segmentors: Vanilla, Baseline and GoCA are plans of the
// goca Segmentor with affinity propagation; FTTM (post: dcrf) adds the dense CRF (fttm.h), which needs
// the image and returns marginals at image resolution.
#include "baselines/dense_crf.h"
#include "baselines/presets.h"
#include "goca/segmentor.h"

#include <ATen/core/Tensor.h>

#include <optional>

namespace gb::baselines {

struct PlanOutput {
  goca::SegmentOutput segment;  // scores (after affinity, or pre-propagation for post: none) and intermediates
  at::Tensor crf;               // post: dcrf only: marginals [objects+1, H_img, W_img] float32; else undefined
  // What the evaluator should read: `crf` when defined, else segment.scores.
  const at::Tensor& final_scores() const { return crf.defined() ? crf : segment.scores; }
};

class PlanSegmentor;
// What one shared forward pass records for several methods: the union of their required captures (in order,
// CaptureSpec::merge). `goca-bench run` captures this for a backbone's variants and `goca-bench capture --method A
// --method B` the same, so a method segments the same maps from either.
gb::CaptureSpec union_capture(const std::vector<const PlanSegmentor*>& segmentors);

class PlanSegmentor {
 public:
  // UserError (prefixed by `source`) on an invalid plan.
  explicit PlanSegmentor(MethodPlan plan, const std::string& source = "method");

  // `image`: RGB uint8 [H, W, 3] at its original size (the paper's dcrf reads the image file itself).
  // Required when needs_image(), ignored otherwise.
  PlanOutput run(const gb::TensorMap& sample, const gb::TokenGroups& groups,
                 const std::optional<at::Tensor>& image = std::nullopt) const;

  bool needs_image() const { return plan_.post == PostProcess::Dcrf; }
  gb::CaptureSpec required_capture() const { return segmentor_.required_capture(); }
  const MethodPlan& plan() const { return plan_; }

 private:
  MethodPlan plan_;
  goca::Segmentor segmentor_;
  DenseCrfParams crf_params_;  // FTTM's: 10 iterations, Gaussian (1, 3), bilateral (67, 3, 4)
};

}  // namespace gb::baselines
