#pragma once
// The start of a checkpoint backbone's capture from encoded text (capture_text of flux, pixart, sd3): the other
// shared steps are check_batch and timed_stage (factory.h) and record_denoise (recorder.h).
#include "harness/core/capture.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace gb::bb {

// A Capture of `images` with the text stage's seconds; UserError "<kind>: N images but M image ids" unless there
// is one image id per image.
Capture begin_capture(const std::vector<at::Tensor>& images, const std::vector<std::string>& image_ids,
                      double text_seconds, const std::string& kind);

}  // namespace gb::bb
