#pragma once
// The first steps of a checkpoint backbone's capture from encoded text (capture_text of flux, pixart, sd3): the
// other shared steps are check_batch and timed_stage (factory.h) and record_denoise (recorder.h).
#include "harness/backbones/factory.h"
#include "harness/backbones/recorder.h"
#include "harness/backbones/text_cache.h"
#include "harness/core/capture.h"

#include <c10/core/Device.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <set>
#include <utility>

#include <string>
#include <vector>

namespace gb::bb {

class VaeEncoder;

// The text stage of capture() for the backbones with a text cache (PixArt, Flux, SD3.5): the batch and the spec's
// keys checked (check_batch, check_capture_keys against `known`), then the prompts' conditioning rows on `device`
// (PromptConditioningCache::conditioning), timed as stage "text". Returns {rows, seconds}.
std::pair<PromptConditioningCache::Rows, double> text_stage(const BackboneBatch& batch, const CaptureSpec& spec,
                                                            const std::set<std::string>& known, const std::string& kind,
                                                            PromptConditioningCache& cache,
                                                            TextEncoderResidency residency,
                                                            const PromptConditioningCache::Encoders& encoders,
                                                            const at::Device& device);

// capture_ids' checks of token ids: UserError "<kind>: empty batch" for no images (`batch` 0), and
// "<kind>: <what> ids must be [<batch>, T], got <shape>" unless `ids` has one row per image.
void check_id_rows(const at::Tensor& ids, int64_t batch, const std::string& what, const std::string& kind);

// A Capture of `images` with the text stage's seconds; UserError "<kind>: N images but M image ids" unless there
// is one image id per image.
Capture begin_capture(const std::vector<at::Tensor>& images, const std::vector<std::string>& image_ids,
                      double text_seconds, const std::string& kind);

// The VAE stage: `images` prepared at `size` with both noises in the latent channel count (prepare_images: seeded
// per image id), pixels and posterior noise on `device` in `pixel_dtype`, encoded to (z - shift) * scale in `dtype`;
// `noise` is the diffusion ε on `device` in `dtype`. Timed into cap.stage_seconds["vae"] (trace span "vae").
struct EncodedImages {
  at::Tensor latents, noise;
};
EncodedImages vae_stage(Capture& cap, const VaeEncoder& vae, const std::vector<at::Tensor>& images,
                        const std::vector<std::string>& ids, uint64_t seed, int64_t size, at::Device device,
                        at::ScalarType pixel_dtype, at::ScalarType dtype);

// The denoiser stage: `forward(recorder)` (the model call) recording `spec` into `cap` with captures stored in
// `store_dtype`, timed into cap.stage_seconds["denoiser"] (trace span "denoiser"); UserError naming `kind` for an
// asked key that was not recorded.
template <class Forward>
void denoiser_stage(Capture& cap, const CaptureSpec& spec, std::optional<at::ScalarType> store_dtype,
                    const at::Device& device, const std::string& kind, Forward&& forward) {
  CaptureRecorder rec(spec, cap, store_dtype);
  cap.stage_seconds["denoiser"] = timed_stage("denoiser", device, [&] { return forward(&rec); }).second;
  rec.require_all_recorded(kind);
}

}  // namespace gb::bb
