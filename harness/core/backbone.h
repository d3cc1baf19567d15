#pragma once
// The abstract denoiser a run captures attention from. A backbone knows nothing of datasets or methods.
#include "harness/core/capture.h"
#include "harness/core/tokenizer.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gb {

struct BackboneBatch {
  std::vector<at::Tensor> images;    // RGB uint8 [H, W, 3], any size (the backbone resizes)
  std::vector<std::string> prompts;  // one caption per image
  std::vector<std::string> ids;      // image ids: the per-image noise seed derives from (seed, id)
  uint64_t seed = 0;
  int64_t size() const { return static_cast<int64_t>(images.size()); }
};

struct LayerInfo {
  std::string name;             // capture key, e.g. "up-level2-repeat1-vit-block0-cross-map"
  std::vector<int64_t> shape;   // without the batch dimension
};

class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual std::string kind() const = 0;   // "sd15", "sdxl", "pixart-sigma", "flux", "synthetic"
  virtual std::vector<LayerInfo> list_layers() const = 0;
  virtual const TextTokenizer& tokenizer() const = 0;
  // One forward pass over the batch; records exactly what `spec` asks for.
  virtual Capture capture(const BackboneBatch& batch, const CaptureSpec& spec) = 0;
  // Every prompt the coming captures will use (a hint). A backbone whose text encoders are to be freed
  // (text_encoder: free) encodes them now, keeps the conditioning in host memory and releases the encoders;
  // the others ignore it. `batch_size` prompts go through the encoders at a time.
  virtual void prepare_prompts(const std::vector<std::string>& prompts, int64_t batch_size) {
    (void)prompts;
    (void)batch_size;
  }
};

}  // namespace gb
