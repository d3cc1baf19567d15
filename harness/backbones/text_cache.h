#pragma once
// Per-prompt text conditioning kept in host memory, for backbones whose text encoders are freed once the run's
// prompts are encoded (BackboneOptions::text_encoder = free). Each entry holds named rows (the batch dimension
// removed), e.g. Flux {"t5": [512, 4096], "pooled": [768]}, PixArt {"t5": [300, 4096], "mask": [300]}.
#include "harness/backbones/factory.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace gb::bb {

class PromptConditioningCache {
 public:
  using Rows = std::map<std::string, at::Tensor>;
  // `batch`: named tensors [B, ...] for `prompts` (B = prompts.size()); each row is copied to host memory.
  void store(const std::vector<std::string>& prompts, const Rows& batch);
  bool contains(const std::string& prompt) const { return rows_.count(prompt) != 0; }
  // The rows of `prompts`, stacked [B, ...] on `device`. UserError (naming `who` and the prompt) for one that was
  // never encoded.
  Rows gather(const std::vector<std::string>& prompts, at::Device device, const std::string& who) const;
  // Distinct prompts not cached yet, in first-seen order, split into chunks of at most `batch_size`.
  std::vector<std::vector<std::string>> pending(const std::vector<std::string>& prompts, int64_t batch_size) const;
  // prepare_prompts: encodes (`encode`: prompts -> named [B, ...] tensors) the distinct prompts not cached yet,
  // `batch_size` at a time, and stores them. Without encoders (`can_encode` false) a missing prompt is a UserError
  // naming `who` and the prompt.
  void fill(const std::vector<std::string>& prompts, int64_t batch_size, bool can_encode,
            const std::function<Rows(const std::vector<std::string>&)>& encode, const std::string& who);
  // A backbone's text encoders as the cache drives them: whether they are loaded, prompts -> rows, and freeing
  // them.
  struct Encoders {
    bool loaded = false;
    std::function<Rows(const std::vector<std::string>&)> encode;
    std::function<void()> release;
  };
  // A backbone's prepare_prompts: under text_encoder: free, fill() with its encoders, then (when they were loaded)
  // log what the cache holds and release them; a no-op under the other residencies.
  void prepare(const std::vector<std::string>& prompts, int64_t batch_size, TextEncoderResidency residency,
               const Encoders& encoders, const std::string& who);
  // A capture's text conditioning on `device`: the cached rows once the encoders are gone (text_encoder: free after
  // prepare_prompts or an earlier capture), else encoded, and under text_encoder: free stored before the encoders
  // are released.
  Rows conditioning(const std::vector<std::string>& prompts, at::Device device, TextEncoderResidency residency,
                    const Encoders& encoders, const std::string& who);
  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  int64_t bytes() const { return bytes_; }

 private:
  std::unordered_map<std::string, Rows> rows_;
  int64_t bytes_ = 0;
};

}  // namespace gb::bb
