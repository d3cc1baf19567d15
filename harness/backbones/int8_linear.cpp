#include "harness/backbones/int8_linear.h"

#include "harness/core/errors.h"
#include "harness/core/torch_compat.h"

#include <c10/util/Half.h>

namespace gb::bb {

namespace {
// bnb's fp32 constants: MM_DEQUANT_CONST in csrc/kernels.cu (written 6.200012e-05f, ~1/127²) and the
// reciprocal 7.874015718698502e-3 used for the outlier weights (exactly fp32(1/127)). Passed to ATen as the
// double holding the fp32 value, so that an fp32 kernel multiplies by exactly that fp32 number.
constexpr float kMmDequant = 6.200012e-05f;
constexpr float kInv127 = 7.874015718698502e-3f;
}  // namespace

Int8RowQuant int8_vectorwise_quant(const at::Tensor& a16, double threshold) {
  if (a16.scalar_type() != at::kHalf || a16.dim() != 2)
    fail("int8_vectorwise_quant: expects a 2-D fp16 tensor, got {} dims of {}", a16.dim(),
         c10::toString(a16.scalar_type()));
  Int8RowQuant r;
  const at::Tensor af = a16.to(at::kFloat);  // exact
  const at::Tensor absf = af.abs();
  at::Tensor absmax;
  at::Tensor keep;  // elements that are quantized (not outliers)
  if (threshold > 0.0) {
    // The outlier test of int8_vectorwise_quant (`A.abs() >= threshold` on the fp16 tensor) and the kernel's
    // absmax filter (`absval < TReduction(threshold)`, T = half) compare with the threshold in fp16; the
    // kernel's zeroing compares with it in fp32. All agree for a threshold representable in fp16 (6.0).
    const double thr_h = static_cast<float>(c10::Half(static_cast<float>(threshold)));
    const double thr_f = static_cast<float>(threshold);
    const at::Tensor outlier = absf.ge(thr_h);
    r.outlier_cols = outlier.any(0).nonzero().view({-1});
    absmax = at::where(absf.lt(thr_h), absf, at::zeros_like(absf)).amax(1);
    keep = absf.lt(thr_f);
  } else {
    absmax = absf.amax(1);
    r.outlier_cols = at::empty({0}, a16.options().dtype(at::kLong));
  }
  // scale = 127 / absmax in fp32 (bnb: __fdividef), q = round-half-even(val * scale) (bnb: __float2int_rn).
  const at::Tensor scale = at::full_like(absmax, 127.0).div(absmax);
  at::Tensor q = af.mul(scale.unsqueeze(1)).round();
  // An all-zero row has absmax 0 and scale inf: 0·inf = NaN, which the GPU's float→int conversion turns into 0.
  q = at::where(at::isfinite(q), q, at::zeros_like(q));
  if (keep.defined()) q = at::where(keep, q, at::zeros_like(q));
  q = q.to(at::kChar);
  // Every row's entries in an outlier column are zeroed (they go through the 16-bit outlier matmul instead).
  if (r.outlier_cols.numel() > 0) q.index_fill_(1, r.outlier_cols, 0);
  r.q = q;
  r.stats = absmax;
  return r;
}

at::Tensor int8_mm_dequant(const at::Tensor& acc, const at::Tensor& row_stats, const at::Tensor& col_stats) {
  if (acc.scalar_type() != at::kInt || acc.dim() != 2) fail("int8_mm_dequant: expects 2-D int32 accumulators");
  // kdequant_mm_int32_fp16: fmaf(v * rowStat * colStat, MM_DEQUANT_CONST, 0) → __float2half. Left to right in
  // fp32; the fma with a zero addend is one rounded product (+0 turns a -0 into +0).
  at::Tensor y =
      acc.to(at::kFloat).mul(row_stats.to(at::kFloat).unsqueeze(1)).mul(col_stats.to(at::kFloat).unsqueeze(0));
  y = y.mul(static_cast<double>(kMmDequant)).add(0.0);
  return y.to(at::kHalf);
}

Int8Linear::Int8Linear(const at::Tensor& weight, double threshold) : threshold_(threshold) {
  if (weight.dim() != 2) fail("Int8Linear: weight must be [out, in], got {} dims", weight.dim());
  if (weight.is_meta()) {
    cb_ = at::empty(weight.sizes(), weight.options().dtype(at::kChar));
    scb_ = at::empty({weight.size(0)}, weight.options().dtype(at::kFloat));
    return;
  }
  // Int8Params.cuda: B = data.contiguous().half(); CB, SCB = int8_vectorwise_quant(B) (threshold 0).
  auto qw = int8_vectorwise_quant(weight.contiguous().to(at::kHalf), 0.0);
  cb_ = qw.q;
  scb_ = qw.stats;
}

Int8Linear::Int8Linear(at::Tensor cb, at::Tensor scb, double threshold)
    : cb_(std::move(cb)), scb_(std::move(scb)), threshold_(threshold) {
  if (cb_.scalar_type() != at::kChar || cb_.dim() != 2) fail("Int8Linear: CB must be a 2-D int8 tensor");
  if (scb_.scalar_type() != at::kFloat || scb_.dim() != 1 || scb_.size(0) != cb_.size(0))
    fail("Int8Linear: SCB must be float32 [{}]", cb_.size(0));
}

int64_t Int8Linear::out_features() const { return cb_.size(0); }
int64_t Int8Linear::in_features() const { return cb_.size(1); }
int64_t Int8Linear::nbytes() const { return defined() ? static_cast<int64_t>(cb_.nbytes() + scb_.nbytes()) : 0; }

Int8Linear Int8Linear::to(at::Device device, bool non_blocking) const {
  Int8Linear r;
  r.threshold_ = threshold_;
  if (defined()) {
    r.cb_ = cb_.to(device, /*non_blocking=*/non_blocking);
    r.scb_ = scb_.to(device, /*non_blocking=*/non_blocking);
  }
  return r;
}

at::Tensor Int8Linear::operator()(const at::Tensor& x) const {
  if (!defined()) fail("Int8Linear: layer is empty");
  const int64_t K = in_features(), N = out_features();
  if (x.dim() < 1 || x.size(-1) != K) fail("Int8Linear: input's last dim must be {}, got {}", K, x.size(-1));
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = N;
  const auto dt = x.scalar_type();
  if (x.numel() == 0) return at::empty(out_shape, x.options());
  const at::Tensor a = x.reshape({-1, K});
  auto qa = int8_vectorwise_quant(a.to(at::kHalf), threshold_);
  at::Tensor out = int8_mm_dequant(compat::int8_matmul(qa.q, cb_), qa.stats, scb_).to(dt);
  if (threshold_ > 0.0 && qa.outlier_cols.numel() > 0) {
    const at::Tensor& cols = qa.outlier_cols;
    // subA in the input dtype; subB = (CB[:, cols]ᵀ · SCB · fp32(1/127)) → input dtype.
    at::Tensor sub_a = a.index_select(1, cols);
    at::Tensor sub_b = cb_.index_select(1, cols).t().to(at::kFloat).mul(scb_).mul(static_cast<double>(kInv127)).to(dt);
    // output.addmm(subA, subB): fp32 accumulation, one rounding to the dtype.
    out = at::addmm(out.to(at::kFloat), sub_a.to(at::kFloat), sub_b.to(at::kFloat)).to(dt);
  }
  return out.view(out_shape);
}

}  // namespace gb::bb
