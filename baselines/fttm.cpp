// FTTM dcrf post-processing (see fttm.h).
#include "baselines/fttm.h"

#include "harness/core/errors.h"

#include <ATen/ATen.h>

#include <cmath>

namespace gb::baselines {

at::Tensor fttm_crf_image(const at::Tensor& rgb) {
  if (rgb.scalar_type() != at::kByte || rgb.dim() != 3 || rgb.size(2) != 3)
    fail("FTTM: the image must be uint8 [H, W, 3] RGB, got {} with {} dims",
         std::string(c10::toString(rgb.scalar_type())), rgb.dim());
  at::Tensor src = rgb.to(at::kCPU).contiguous();
  at::Tensor out = at::empty_like(src);
  const uint8_t* s = src.data_ptr<uint8_t>();
  uint8_t* d = out.data_ptr<uint8_t>();
  const int64_t pixels = src.size(0) * src.size(1);
  for (int64_t i = 0; i < pixels; ++i) {
    for (int c = 0; c < 3; ++c) {
      // BGR channel c is RGB channel 2 - c. numpy: float32(float64(v) - mean) then astype(uint8).
      const float v = static_cast<float>(static_cast<double>(s[i * 3 + (2 - c)]) - kFttmMeanBgr[c]);
      const auto t = static_cast<int32_t>(std::trunc(v));
      d[i * 3 + c] = static_cast<uint8_t>(static_cast<uint32_t>(t) & 0xFFu);
    }
  }
  return out;
}

at::Tensor fttm_crf_probabilities(const at::Tensor& maps, int64_t height, int64_t width) {
  if (maps.dim() != 3) fail("FTTM: maps must be [C, S, S], got {} dims", maps.dim());
  if (height < 1 || width < 1) fail("FTTM: image size must be positive, got {}x{}", height, width);
  at::Tensor x = maps.to(at::kFloat).unsqueeze(0);
  x = at::upsample_bicubic2d(x, {height, width}, /*align_corners=*/false).clamp_min(0).squeeze(0);
  const at::Tensor lo = x.amin({1, 2}, /*keepdim=*/true);
  const at::Tensor hi = x.amax({1, 2}, /*keepdim=*/true);
  return (x - lo) / (hi - lo);
}

at::Tensor fttm_dcrf(const at::Tensor& maps, const at::Tensor& rgb, const DenseCrfParams& params) {
  if (rgb.dim() != 3) fail("FTTM: the image must be [H, W, 3], got {} dims", rgb.dim());
  const at::Tensor probs = fttm_crf_probabilities(maps, rgb.size(0), rgb.size(1));
  const at::Tensor image = fttm_crf_image(rgb);
  return dense_crf_2d(probs.cpu(), image, params).to(maps.device());
}

}  // namespace gb::baselines
