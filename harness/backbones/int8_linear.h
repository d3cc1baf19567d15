#pragma once
// LLM.int8 linear layer with the inference numerics of bitsandbytes 0.45.0 `bnb.nn.Linear8bitLt`
// (has_fp16_weights=False, threshold 6.0, no bias), which is what transformers' `load_in_8bit=True` puts in
// place of every nn.Linear it converts. docs/int8.md walks through the sources; in short, for y = x Wᵀ:
//
//   load (Int8Params.cuda → F.int8_vectorwise_quant, threshold 0):
//     W16 = W (model dtype) → fp16;  SCB[n] = max_k |W16[n,k]| (fp32);  CB[n,k] = rne(W16[n,k] · (127 / SCB[n]))
//   forward (MatMul8bitLt.forward, inference path):
//     A  = x reshaped [rows, K];  A16 = A → fp16 (also for bf16 inputs)
//     outlier columns = columns where some |A16| ≥ threshold (over all rows of this call)
//     SCA[r] = max |A16[r,k]| over the elements with |A16[r,k]| < threshold;  CA = rne(A16 · (127 / SCA[r])),
//              elements ≥ threshold and then every outlier column set to 0
//     C32 = CA · CBᵀ exact in int32
//     out = fp16(((fp32(C32) · SCA[r]) · SCB[n]) · 6.200012e-05f)  → cast to x's dtype
//     if outliers: subB = dtype(fp32(CB[:,cols]ᵀ) · SCB · fp32(1/127));  out = dtype(fp32(out) + A[:,cols] · subB)
//                  (A in x's dtype, fp32 accumulation, one rounding: cuBLAS addmm semantics)
//   returned in x's dtype.
//
// Differences from bnb on CUDA that this CPU/ATen implementation cannot remove (docs/int8.md):
//   - bnb's kernel forms 127/absmax with __fdividef (approximate reciprocal, ≤ 2 ulp); here it is IEEE fp32
//     division. The int8 code of an element can differ by one only when x·127/absmax is within ~2⁻²² (relative)
//     of a half-integer.
//   - the order of the fp32 sums in the outlier matmul is cuBLAS's there and ATen's here.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace gb::bb {

// transformers' BitsAndBytesConfig.llm_int8_threshold default.
inline constexpr double kLlmInt8Threshold = 6.0;

// bnb F.int8_vectorwise_quant on a 2-D fp16 tensor: row-wise absmax quantization to int8 with the outlier
// handling described above (threshold 0 = none, as for the weights).
struct Int8RowQuant {
  at::Tensor q;             // int8 [R, K]
  at::Tensor stats;         // float32 [R]: absmax of the elements below the threshold
  at::Tensor outlier_cols;  // int64 [n], ascending; empty when there are none (or threshold is 0)
};
Int8RowQuant int8_vectorwise_quant(const at::Tensor& a16, double threshold);

// bnb F.int8_mm_dequant without bias: int32 [R, N] accumulators → fp16 [R, N].
at::Tensor int8_mm_dequant(const at::Tensor& acc, const at::Tensor& row_stats, const at::Tensor& col_stats);

class Int8Linear {
 public:
  Int8Linear() = default;
  // Quantizes weight [N, K] once (weights given in the model dtype, as transformers hands them to Int8Params).
  // A weight on the meta device gives a meta int8 layer (shape-only stores).
  explicit Int8Linear(const at::Tensor& weight, double threshold = kLlmInt8Threshold);
  // Wraps an already quantized layer (CB int8 [N, K], SCB float32 [N]).
  Int8Linear(at::Tensor cb, at::Tensor scb, double threshold);

  // x [..., K] in any floating dtype → [..., N] in x's dtype.
  at::Tensor operator()(const at::Tensor& x) const;

  // The same layer on another device (CB and SCB copied; cheap to copy otherwise: two tensor handles).
  Int8Linear to(at::Device device, bool non_blocking = false) const;

  bool defined() const { return cb_.defined(); }
  const at::Tensor& cb() const { return cb_; }
  const at::Tensor& scb() const { return scb_; }
  double threshold() const { return threshold_; }
  int64_t out_features() const;
  int64_t in_features() const;
  // CB then SCB, mutable (T5Encoder::to moves them).
  template <typename F>
  void for_each_tensor(F&& f) {
    f(cb_);
    f(scb_);
  }
  // Bytes held: N·K (int8) + 4·N (SCB).
  int64_t nbytes() const;

 private:
  at::Tensor cb_, scb_;
  double threshold_ = kLlmInt8Threshold;
};

}  // namespace gb::bb
