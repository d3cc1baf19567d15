#pragma once
// FTTM's `dcrf` post-processing (spec goca-method.md §E, quirk Q10; the paper's
// src-main/components/postprocess/dcrf.py). Runs after affinity propagation on the (K+1) x S x S maps:
//
//   1. maps -> bicubic resize (align_corners=False, A = -0.75, as F.interpolate) to the image's H x W,
//      clamp at >= 0, per-map MinMax over space (a constant map, e.g. the zero support map, becomes NaN);
//   2. image (RGB uint8) -> BGR (cv2.imread order), minus (104.008, 116.669, 122.675), cast to uint8 the
//      way numpy does on x86: truncate toward zero, keep the low 8 bits (negative values wrap: -4.008 -> 252);
//   3. dense CRF (pydensecrf DenseCRF2D semantics, dense_crf.h) with unary_from_softmax on the maps,
//      Gaussian (sxy=1, compat=3), bilateral (sxy=67, srgb=3, compat=4), 10 iterations;
//   4. the marginals, (K+1) x H x W at image resolution.
//
// The Python code reads the image itself with cv2.imread; here the caller passes the decoded RGB image.
#include "baselines/dense_crf.h"

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace gb::baselines {

// The mean the paper subtracts, in BGR order.
inline constexpr double kFttmMeanBgr[3] = {104.008, 116.669, 122.675};

// Step 2: RGB uint8 [H, W, 3] -> the uint8 [H, W, 3] BGR image the CRF's bilateral kernel sees.
at::Tensor fttm_crf_image(const at::Tensor& rgb);

// Step 1: maps [C, S, S] (any float dtype, any device) -> float32 [C, height, width] on the same device.
at::Tensor fttm_crf_probabilities(const at::Tensor& maps, int64_t height, int64_t width);

// Steps 1–4: maps [C, S, S], rgb [H, W, 3] uint8 -> marginals float32 [C, H, W] (on the maps' device).
at::Tensor fttm_dcrf(const at::Tensor& maps, const at::Tensor& rgb, const DenseCrfParams& params = {});

}  // namespace gb::baselines
