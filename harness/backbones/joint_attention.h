#pragma once
// Joint attention of the MMDiT transformers (SD3.5 in sd3_transformer.cpp, Flux in flux_transformer.cpp): one
// softmax per block over image (N) and text (T) tokens in one sequence, its capture keys (block `vit-block{k}`:
// `-cross-map` image queries x text keys, `-self-map` image x image, `-attn-out`, and the `-cross-special-*`
// tensors), the explicit path that records the maps a group of heads at a time, and its memory model.
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/recorder.h"
#include "harness/core/backbone.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace gb::bb {

// Where the image and text tokens stand in the joint sequence (SD3.5: image first; Flux: text first).
struct JointLayout {
  int64_t image_start, image_len, text_start, text_len;
};

// Whether `rec` wants anything of block `location`: its maps, its attention output and, `with_specials`, its
// cross special tensors.
bool joint_block_wanted(CaptureRecorder* rec, const std::string& location, bool with_specials);

// softmax(q kᵀ / sqrt(d)) v on q, k, v [B, H, S, d] -> [B, S, H*d] in q's dtype: fused SDPA when no map of the
// block is wanted, else the explicit softmax (the paper's my_scaled_dot_product_attention: scores in the model
// dtype) in groups of heads of at most `chunk_elements` scores, recording the cross map (per head, or their fp32
// head average) and the self map (per head, or the fp32 head mean rounded once to the stored dtype).
at::Tensor joint_attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const JointLayout& layout,
                        const std::string& location, CaptureRecorder* rec, int64_t chunk_elements);

// The capture layers of one joint block (list-layers order): maps, `-attn-out` when N is a square, and with
// `with_specials` the cross special value, post-value and weight. C = H * d.
void append_joint_block_layers(std::vector<LayerInfo>& out, const std::string& location, int64_t H, int64_t N,
                               int64_t T, int64_t d, bool with_specials);

namespace mem {
// The attention working set of joint block `location` (B samples, N image + T text tokens, C = H*d): fused SDPA
// (or the math path where LibTorch has no fused kernel) when no map is captured, else the explicit path's buffers
// and its score chunk of at most `chunk_elements`.
void joint_attention_terms(MemoryUnit& u, const CaptureSpec& spec, const std::string& location, int64_t B, int64_t H,
                           int64_t C, int64_t N, int64_t T, at::ScalarType dt, at::ScalarType store,
                           int64_t chunk_elements, const std::string& device);
// At batch 1 the stored cross special post-value (a narrow of the contiguous joint output [1, N + T, C]) keeps
// the whole buffer alive: its bytes then count the T text rows too (T from vit-block0's cross map).
int64_t joint_post_value_bytes(const LayerInfo& l, const std::vector<LayerInfo>& layers, int64_t batch,
                               at::ScalarType store, at::ScalarType dtype, int64_t bytes);

// What the memory models of the joint-attention transformers share: a unit per block `vit-block{k}` (a key's unit
// is its location), and joint_post_value_bytes for stored captures. A model gives its block count and one block's
// unit (activations, then joint_attention_terms).
class JointMemoryModel : public MemoryModel {
 public:
  std::string unit_of_key(const std::string& key) const override;
  std::vector<MemoryUnit> denoiser_units(const std::vector<LayerInfo>& layers, const CaptureSpec& spec, int64_t batch,
                                         int64_t size, at::ScalarType dtype, at::ScalarType store) const override;
  int64_t stored_bytes(const LayerInfo& layer, const std::vector<LayerInfo>& layers, int64_t batch,
                       at::ScalarType store, at::ScalarType dtype, int64_t bytes) const override;

 protected:
  virtual int64_t num_blocks() const = 0;
  virtual MemoryUnit block_unit(int64_t k, const CaptureSpec& spec, int64_t batch, int64_t size, at::ScalarType dtype,
                                at::ScalarType store) const = 0;
};
}  // namespace mem

}  // namespace gb::bb
