#pragma once
// T5 v1.1 encoder (transformers T5EncoderModel), the text encoder of PixArt-Sigma (text_encoder/) and
// Flux.1-dev (text_encoder_2/). Semantics follow transformers' modeling_t5.py (spec backbones.md §1.7):
//   - pre-norm blocks with T5LayerNorm (RMS, no mean subtraction, variance in fp32, weight only);
//   - attention without 1/sqrt(d) scaling, one relative-position bias (bidirectional log buckets) computed
//     from block 0's `relative_attention_bias` and shared by every block, softmax in fp32;
//   - a key mask becomes (1 - m) * finfo(dtype).min added to that bias;
//   - gated-GELU (gelu_new, the tanh form) feed-forward, `wo` kept in fp32 (`_keep_in_fp32_modules`), so a
//     16-bit model carries an fp32 residual stream from the first feed-forward on, as transformers does.
// int8 = transformers' `load_in_8bit=True` (how the paper loads Flux's T5): q, k, v, o, wi_0 and wi_1 become
// bitsandbytes LLM.int8 layers (int8_linear.h, outlier threshold 6.0); `wo` stays fp32 and unquantized, the
// embedding, relative bias and norms stay in the model dtype. Every sequence of a batch is encoded on its own
// (the paper encodes one prompt per call), because LLM.int8 picks its outlier columns over all rows of a call.
// Parameter names are the checkpoint keys (shared.weight, encoder.block.{i}.layer.{0,1}...).
#include "harness/backbones/int8_linear.h"
#include "harness/backbones/weights.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gb::bb {

struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 4096;
  int64_t d_kv = 64;
  int64_t d_ff = 10240;
  int64_t num_layers = 24;
  int64_t num_heads = 64;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  std::string feed_forward_proj = "gated-gelu";
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;

  // google/t5-v1_1-xxl as shipped in PixArt-Sigma-XL-2-1024-MS/text_encoder and FLUX.1-dev/text_encoder_2
  // (spec backbones.md §0 HPS, HFX: d_model 4096, d_kv 64, 64 heads, d_ff 10240, 24 layers, gated-gelu).
  static T5Config v1_1_xxl() { return {}; }
  // config.json of a transformers T5 checkpoint. Only gated-gelu (T5 v1.1) is supported.
  static T5Config from_json(const std::string& path);
  int64_t inner_dim() const { return num_heads * d_kv; }
};

// Bidirectional relative-position bucket of (key position - query position), exactly as transformers
// computes it (float32 log, truncation toward zero, clamp to the last bucket). int64 in, int64 out.
at::Tensor t5_relative_position_bucket(const at::Tensor& relative_position, int64_t num_buckets, int64_t max_distance);

// One projection of a block: a dense weight [out, in] or, in int8 mode, an LLM.int8 layer.
struct T5Linear {
  at::Tensor w;
  Int8Linear q8;
  at::Tensor operator()(const at::Tensor& x) const;
  int64_t nbytes() const;
};

class T5Encoder {
 public:
  // Builds from a store rooted at the component folder (keys `shared.weight`, `encoder.*`); the tied
  // `encoder.embed_tokens.weight` is accepted in place of, or beside, `shared.weight`. `int8`: see above (the
  // weights are quantized from the store's dtype, as transformers hands bitsandbytes the torch_dtype weights).
  T5Encoder(const WeightStore& ws, T5Config config, bool int8 = false);
  // <root>/<component>/{config.json, model*.safetensors[.index.json]}; strict loading.
  static std::unique_ptr<T5Encoder> load(const std::string& root, const std::string& component, at::ScalarType dtype,
                                         at::Device device, bool int8 = false);
  // A backbone's T5 from <root>/<component> (`variant` files): on `device`, or with `offload` (text_encoder:
  // offload) loaded on the CPU and moved to pinned host memory when `device` is CUDA (it visits the device for
  // each encode).
  static std::unique_ptr<T5Encoder> load_for_backbone(const std::string& root, const std::string& component,
                                                      const T5Config& config, at::ScalarType dtype, at::Device device,
                                                      const std::string& variant, bool offload, bool int8 = false);
  // weight_bytes() (below) computed from a config alone (int8 layers: N·K + 4·N bytes).
  static int64_t weight_bytes(const T5Config& config, at::ScalarType dtype, bool int8);
  bool int8() const { return int8_; }

  // ids [B, L] int64; mask [B, L] {0,1} or undefined (Flux passes none). Returns the last hidden state
  // [B, L, d_model] in the model dtype (as the pipelines cast it).
  at::Tensor operator()(const at::Tensor& ids, const at::Tensor& mask = {}) const;

  const T5Config& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const;
  // A copy with every weight on `device` (the same tensors when already there). `pin` page-locks host copies
  // (CUDA builds only) so that the copies back to the GPU run at full PCIe speed.
  T5Encoder to(at::Device device, bool pin = false) const;
  int64_t weight_bytes() const;  // every weight tensor, as stored

 private:
  struct Block {
    at::Tensor ln0;
    T5Linear q, k, v, o;
    at::Tensor ln1;
    T5Linear wi_0, wi_1;
    at::Tensor wo;  // fp32, never quantized
  };
  at::Tensor encode(const at::Tensor& ids, const at::Tensor& mask) const;
  at::Tensor norm(const at::Tensor& x, const at::Tensor& w) const;
  // Every weight tensor, for to() and weight_bytes() (add new fields here).
  template <typename F>
  void for_each_weight(F&& f);
  T5Config config_;
  at::ScalarType dtype_;
  bool int8_ = false;
  at::Tensor embed_, rel_bias_, final_ln_;
  std::vector<Block> blocks_;
};

}  // namespace gb::bb
