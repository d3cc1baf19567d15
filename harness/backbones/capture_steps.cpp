#include "harness/backbones/capture_steps.h"

#include "harness/core/errors.h"

namespace gb::bb {

Capture begin_capture(const std::vector<at::Tensor>& images, const std::vector<std::string>& image_ids,
                      double text_seconds, const std::string& kind) {
  const int64_t b = static_cast<int64_t>(images.size());
  if (static_cast<int64_t>(image_ids.size()) != b) fail("{}: {} images but {} image ids", kind, b, image_ids.size());
  Capture cap;
  cap.batch_size = b;
  cap.stage_seconds["text"] = text_seconds;
  return cap;
}

}  // namespace gb::bb
