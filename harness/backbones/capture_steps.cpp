#include "harness/backbones/capture_steps.h"

#include "harness/backbones/factory.h"
#include "harness/backbones/image_preprocess.h"
#include "harness/backbones/recorder.h"
#include "harness/backbones/vae.h"
#include "harness/core/errors.h"
#include "harness/core/shape.h"

namespace gb::bb {

std::pair<PromptConditioningCache::Rows, double> text_stage(const BackboneBatch& batch, const CaptureSpec& spec,
                                                            const std::set<std::string>& known, const std::string& kind,
                                                            PromptConditioningCache& cache,
                                                            TextEncoderResidency residency,
                                                            const PromptConditioningCache::Encoders& encoders,
                                                            const at::Device& device) {
  check_batch(batch, kind);
  check_capture_keys(spec, known, kind);
  return timed_stage("text", device,
                     [&] { return cache.conditioning(batch.prompts, device, residency, encoders, kind); });
}

void check_id_rows(const at::Tensor& ids, int64_t batch, const std::string& what, const std::string& kind) {
  if (batch == 0) fail("{}: empty batch", kind);
  if (ids.dim() != 2 || ids.size(0) != batch)
    fail("{}: {} ids must be [{}, T], got {}", kind, what, batch, shape_str(ids.sizes()));
}

Capture begin_capture(const std::vector<at::Tensor>& images, const std::vector<std::string>& image_ids,
                      double text_seconds, const std::string& kind) {
  const int64_t b = static_cast<int64_t>(images.size());
  if (static_cast<int64_t>(image_ids.size()) != b) fail("{}: {} images but {} image ids", kind, b, image_ids.size());
  Capture cap;
  cap.batch_size = b;
  cap.stage_seconds["text"] = text_seconds;
  return cap;
}

EncodedImages vae_stage(Capture& cap, const VaeEncoder& vae, const std::vector<at::Tensor>& images,
                        const std::vector<std::string>& ids, uint64_t seed, int64_t size, at::Device device,
                        at::ScalarType pixel_dtype, at::ScalarType dtype) {
  auto [out, seconds] = timed_stage("vae", device, [&] {
    const int64_t zc = vae.config().latent_channels;
    const PreparedImages prep = prepare_images(images, ids, seed, size, zc, zc, size / vae.config().scale_factor());
    EncodedImages e;
    e.latents = vae.latents(prep.pixels.to(device, pixel_dtype), prep.noise_vae.to(device, pixel_dtype), dtype);
    e.noise = prep.noise.to(device, dtype);
    return e;
  });
  cap.stage_seconds["vae"] = seconds;
  return out;
}

}  // namespace gb::bb
