#pragma once
// The shared pieces a backbone's MemoryModel (memory_plan.h) is built from: exact weight counting on shape-only
// stores, and the modelled working sets of the code paths several backbones share (attention in nn.cpp, the T5
// and CLIP encoders, the VAE encoder). Every count is elements x element size of what the forward code keeps
// alive at the step named; docs/memory.md has the derivation.
#include "harness/backbones/clip_text.h"
#include "harness/backbones/memory_plan.h"
#include "harness/backbones/t5_encoder.h"
#include "harness/backbones/vae.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gb::bb {

class WeightStore;

namespace mem {

using Make = std::function<void(const WeightStore&)>;  // constructs a component's module on a store

int64_t esize(at::ScalarType t);
int64_t sum(const std::vector<MemoryTerm>& terms);

// With a folder: the component's checkpoint headers as meta tensors (no data read), so the module constructors
// and WeightStore::finish() check names and shapes exactly as a real load would (one UserError naming the file).
void check_headers(const std::string& root, const std::string& component, at::ScalarType dtype, const Make& make);
// A component built on a shape-only store in `dtype`: its parameters and resident bytes.
ComponentWeights component(const std::string& name, at::ScalarType dtype, const Make& make, bool text_encoder);
// T5 (text encoder, parked under offload): `wo` fp32; with int8 q/k/v/o/wi_0/wi_1 at 1 byte + fp32 row scales.
ComponentWeights t5_component(const std::string& name, const T5Config& cfg, at::ScalarType dtype, bool int8);

// Attention::operator() on the explicit path (scores and softmax materialised, the map recorded) and on fused
// SDPA; `act_tokens` = activations of width C the caller keeps alive (block input, normed input...). `upcast`
// (diffusers upcast_attention, SD 2.1 768-v): the explicit path computes q·kᵀ and the softmax in fp32.
std::vector<MemoryTerm> explicit_attention(int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t C, at::ScalarType dt,
                                           bool head_mean, bool store_fp32, int64_t act_tokens, bool upcast = false);
std::vector<MemoryTerm> fused_attention(int64_t B, int64_t Nq, int64_t Nk, int64_t C, at::ScalarType dt,
                                        int64_t act_tokens);
// compat::scaled_dot_product_attention on `device` (H heads of width C/H, with or without a mask): the fused
// terms above where LibTorch runs a fused kernel there (compat::sdpa_fused), else its math path (the [B, H, Nq, Nk]
// scores and their softmax alive together, as at::_scaled_dot_product_attention_math computes them).
std::vector<MemoryTerm> sdpa_attention(const std::string& device, int64_t B, int64_t H, int64_t Nq, int64_t Nk,
                                       int64_t C, at::ScalarType dt, int64_t act_tokens, bool mask);
// The self and cross units of Transformer2D-style blocks (UNet, PixArt): `blocks` in forward order, each with
// "<block>-self" then "<block>-cross"; act_self/act_cross as `act_tokens` above.
// `device` and `cross_masked` choose the SDPA kernel of the units that capture no map (sdpa_attention).
std::vector<MemoryUnit> attention_units(const std::vector<std::string>& blocks, const std::vector<LayerInfo>& layers,
                                        const CaptureSpec& spec, int64_t B, at::ScalarType dt, at::ScalarType store,
                                        int64_t act_self, int64_t act_cross, const std::string& device,
                                        bool cross_masked, bool upcast = false);

// Text phases: T5 at L tokens (masked: a per-sample position bias; int8: one sequence per call) and CLIP.
MemoryPhase t5_text_phase(const T5Config& t5, int64_t B, int64_t L, at::ScalarType dt, bool int8, bool masked);
MemoryPhase clip_text_phase(const ClipTextConfig& clip, int64_t B, at::ScalarType dt, const std::string& at,
                            const std::string& device);
// VaeEncoder::operator() on [B, 3, S, S] in `vdt` plus the pixels, noise, latents and the text conditioning
// (text_tokens x text_width in `dt`) alive meanwhile; the mid-block attention on `device`'s SDPA kernel.
MemoryPhase vae_encode_phase(const VaeConfig& vae, int64_t B, int64_t S, at::ScalarType vdt, at::ScalarType dt,
                             int64_t text_tokens, int64_t text_width, const std::string& device);

std::map<std::string, std::vector<int64_t>> layer_shapes(const std::vector<LayerInfo>& layers);
// The shape of a capturable key (logic_error when absent: the model and list_layers disagree).
std::vector<int64_t> shape_of(const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& key);

}  // namespace mem
}  // namespace gb::bb
