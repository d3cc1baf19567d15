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

// The id of an image file, the one rule for every command: its file name with the extension ("2007_000032.jpg"),
// as the datasets (datasets/dataset.cpp) and the paper's caption files name images. `run` and `capture` give
// the same file the same noise through it.
std::string image_id_of(const std::string& path);

struct LayerInfo {
  std::string name;            // capture key, e.g. "up-level2-repeat1-vit-block0-cross-map"
  std::vector<int64_t> shape;  // without the batch dimension
};

class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual std::string kind() const = 0;  // "sd15", "sdxl", "pixart-sigma", "flux", "synthetic"
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

// The batch's capture made one sample at a time, stacked in place: the same tensors as `backbone.capture(batch,
// spec)` but each sample's values independent of the batch it came in. A batched forward is not: oneDNN, cuDNN and
// cuBLAS choose their algorithms from the whole input shape, minibatch included, so a convolution, a GroupNorm or
// a GEMM can sum in another order at batch 3 than at batch 1 (measured on PyTorch 2.11's CPU build: up to 1e-6 in
// the VAE latents, flipping near-tied argmaxes downstream). This is what makes a run's results identical for every
// `batch_size`, shard and resume (the experiment's `batch_invariant: true`, the default).
// Memory: the stacked tensors are allocated after the first sample and filled as the others finish, so the peak is
// one sample's forward plus the batch's captures (gb::bb::plan_memory with `per_sample_forward`). Tensors the
// backbone returns expanded over the batch (a resident weight, stride 0) stay expanded; stage seconds add up.
Capture capture_each_sample(Backbone& backbone, const BackboneBatch& batch, const CaptureSpec& spec);

}  // namespace gb
