#!/usr/bin/env python3
"""Goldens for LLM.int8 (bitsandbytes 0.45.0 Linear8bitLt inference numerics) and a tiny int8 T5 encoder.

Run (the pinned stack of requirements/python-tools.txt):

    /work/main/.venv/bin/python tools/parity/int8_goldens.py [--out DIR]

bitsandbytes 0.45.0 cannot run here: its int8 path is CUDA-only (int8_vectorwise_quant / int8_linear_matmul call
is_on_gpu and the CUDA kernels; the wheel's CPU library has none of them, it says "compiled without GPU support.
8-bit multiplication ... unavailable"), and with triton 3.x `import bitsandbytes` itself fails (triton.ops is gone).
So Linear8bitLt is an independent plain numpy/torch re-statement of what the bitsandbytes 0.45.0 sources do
(docs/int8.md cites them); the T5 around it is transformers' T5EncoderModel:
  bitsandbytes/nn/modules.py      Int8Params.cuda        weight → .half() → int8_vectorwise_quant (threshold 0)
  bitsandbytes/autograd/_functions.py MatMul8bitLt.forward input → fp16 → int8_vectorwise_quant(threshold),
                                  int8_linear_matmul, int8_mm_dequant(...).to(A.dtype),
                                  subB = (CB[:, idx].t() * SCB * 7.874015718698502e-3).to(A.dtype),
                                  output.addmm(A[:, idx], subB)
  bitsandbytes/functional.py      int8_vectorwise_quant (outlier columns: any |A| >= threshold; zeroed in all rows)
  csrc/kernels.cu                 kInt8VectorQuant (row absmax over |a| < threshold, __fdividef(127, absmax),
                                  __float2int_rn), kdequant_mm_int32_fp16 (fmaf(v*row*col, 6.200012e-05f, 0))
The reference here uses numpy float32 arithmetic with IEEE division for 127/absmax (the GPU uses an approximate
reciprocal, see docs/int8.md), an int64 GEMM, and a correctly rounded (float64) outlier matmul.

Writes tests/backbones/goldens/int8/ :
  linear.safetensors     hand-built activations/weights (outliers, zero rows/columns, threshold ties, fp16
                         saturation, bf16 / fp16 / fp32 inputs) with every intermediate
  gemm.safetensors       int8 operands (K = 1100, extreme values) and their int64 product
  t5/text_encoder/       tiny T5 v1.1 encoder with outlier channels (transformers key layout, bf16 weights)
  t5/golden.safetensors  ids and the last hidden state of that T5 (transformers' T5EncoderModel) as load_in_8bit
                         with torch_dtype bf16 builds it (q,k,v,o,wi_0,wi_1 int8, wo fp32), one sequence per
                         call, no mask; and the same model without int8 (bf16, wo fp32) and in fp32 for contrast
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import T5Config, T5EncoderModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "backbones", "goldens", "int8")
THRESHOLD = 6.0
DEQ = np.float32(6.200012e-05)          # MM_DEQUANT_CONST
INV127 = np.float32(7.874015718698502e-3)


def np16(t):
    return t.detach().to(torch.float16).numpy()


def row_quant(a16, threshold):
    """int8_vectorwise_quant on an fp16 [R, K] numpy array -> (int8 q, float32 absmax, int64 outlier columns)."""
    a = a16.astype(np.float32)
    mag = np.abs(a)
    if threshold > 0:
        thr = np.float16(threshold)
        is_out = np.abs(a16) >= thr
        cols = np.nonzero(is_out.any(axis=0))[0].astype(np.int64)
        below = mag < np.float32(thr)
        absmax = np.where(below, mag, np.float32(0)).max(axis=1).astype(np.float32)
    else:
        cols = np.zeros(0, dtype=np.int64)
        below = np.ones_like(mag, dtype=bool)
        absmax = mag.max(axis=1).astype(np.float32)
    q = np.zeros(a.shape, dtype=np.int8)
    for r in range(a.shape[0]):
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.float32(127.0) / absmax[r]
            v = (a[r] * scale).astype(np.float32)
        v = np.where(np.isfinite(v), np.rint(v), 0.0)  # rint: half to even; NaN (0 * inf) -> 0 as cvt.rni does
        if threshold > 0:
            v = np.where(mag[r] < np.float32(threshold), v, 0.0)
        q[r] = v.astype(np.int8)
    q[:, cols] = 0
    return q, absmax, cols


def int8_linear(x, w_model, threshold=THRESHOLD):
    """Linear8bitLt forward. x: torch [R, K] (bf16/fp16/fp32); w_model: torch [N, K] weight in the model dtype."""
    cb, scb, _ = row_quant(np16(w_model.contiguous()), 0.0)
    ca, sca, cols = row_quant(np16(x), threshold)
    acc = ca.astype(np.int64) @ cb.astype(np.int64).T
    assert np.abs(acc).max(initial=0) < 2**31
    acc32 = acc.astype(np.int32)
    y = acc32.astype(np.float32) * sca[:, None]
    y = (y * scb[None, :]).astype(np.float32)
    y = (y * DEQ).astype(np.float32) + np.float32(0.0)
    y16 = y.astype(np.float16)
    out = torch.from_numpy(y16.copy()).to(x.dtype)
    if threshold > 0 and cols.size > 0:
        sub_a = x[:, torch.from_numpy(cols)]
        sub_b = ((cb[:, cols].T.astype(np.float32) * scb[None, :]).astype(np.float32) * INV127).astype(np.float32)
        sub_b = torch.from_numpy(sub_b).to(x.dtype)
        acc_f = out.double() + sub_a.double() @ sub_b.double()
        out = acc_f.float().to(x.dtype)
    parts = {"cb": torch.from_numpy(cb), "scb": torch.from_numpy(scb), "ca": torch.from_numpy(ca),
             "sca": torch.from_numpy(sca), "cols": torch.from_numpy(cols), "acc": torch.from_numpy(acc32),
             "dequant": torch.from_numpy(y16)}
    return out, parts


def linear_cases():
    g = torch.Generator().manual_seed(11)
    R, K, N = 10, 40, 24
    w = (torch.rand(N, K, generator=g) * 2 - 1) * 0.4
    w[3] = 0.0                      # an all-zero weight row: SCB 0
    w[5, 7] = 2.5                   # a row dominated by one weight
    w[8] = w[8] * 1e-3              # small weights (fp16 subnormal range after scaling)
    x = torch.randn(R, K, generator=g) * 1.5
    x[0] = x[0].clamp(-5.5, 5.5)    # row 0: no outlier of its own
    x[1, 4] = 6.0                   # exactly at the threshold: an outlier (>=)
    x[1, 9] = 5.96875               # just below (bf16- and fp16-representable): quantized, sets the absmax
    x[2, 13] = -7.25                # negative outlier
    x[2, 4] = 0.5                   # non-outlier value in an outlier column: still goes to the outlier matmul
    x[3] = 0.0                      # all-zero row
    x[:, 21] = 0.0                  # all-zero column
    x[4, 30] = 70000.0              # saturates fp16 (inf), bf16 keeps it: outlier column carries it
    x[5] = 0.0
    x[5, :8] = torch.tensor([8.0, -9.0] * 4)  # a row of outliers and zeros: absmax 0, every code 0
    x[6, 17] = 5.99                 # rounds to 6 in bf16 and fp16: outlier after the cast
    x[7, 2] = 2.0 ** -20            # fp16 subnormal
    x[9] = x[9] * 0.05              # small row
    out = {"w": w, "x": x}
    for name, dt in [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32)]:
        xd, wd = x.to(dt), w.to(dt)
        y, parts = int8_linear(xd, wd)
        out[f"{name}.y"] = y
        for k, v in parts.items():
            out[f"{name}.{k}"] = v
    # no outliers at all (threshold path with an empty column set), bf16
    xs = (x[:3].clamp(-4, 4)).to(torch.bfloat16)
    y, parts = int8_linear(xs, w.to(torch.bfloat16))
    assert parts["cols"].numel() == 0
    out["noout.x"], out["noout.y"] = xs, y
    # a single row (bnb's kernel zeroes only the outlier elements themselves; same result)
    x1 = x[2:3].to(torch.bfloat16)
    y, parts = int8_linear(x1, w.to(torch.bfloat16))
    out["row1.x"], out["row1.y"] = x1, y
    return out


def gemm_case():
    g = torch.Generator().manual_seed(5)
    M, N, K = 7, 9, 1100
    a = torch.randint(-127, 128, (M, K), generator=g, dtype=torch.int64)
    b = torch.randint(-127, 128, (N, K), generator=g, dtype=torch.int64)
    a[0] = 127
    b[0] = 127                      # 127·127·1100 = 17.7 M > 2^24: not exact in a single fp32 sum
    b[1] = -127
    a[1] = -128                     # the int8 minimum (never produced by the quantizer, still exact)
    b[2] = -128
    prod = a @ b.T
    return {"a": a.to(torch.int8), "b": b.to(torch.int8), "prod": prod}


# -------------------------------------------------------------------------------------------------------------
# tiny T5 v1.1: transformers' T5EncoderModel as `load_in_8bit` builds it, with the re-stated Linear8bitLt
# -------------------------------------------------------------------------------------------------------------
class Int8Linear(torch.nn.Module):
    """Stands in for bitsandbytes.nn.Linear8bitLt(has_fp16_weights=False, threshold=6.0) in the transformers model:
    the forward is int8_linear above on the weight as loaded (bf16)."""

    def __init__(self, linear):
        super().__init__()
        self.weight = linear.weight

    def forward(self, x):
        y, _ = int8_linear(x.reshape(-1, x.shape[-1]), self.weight)
        return y.view(*x.shape[:-1], self.weight.shape[0])


def t5_model(cfg, sd, dtype, int8):
    """transformers 4.47.1 T5EncoderModel with `torch_dtype=dtype`: every tensor in dtype except `wo`, kept in fp32
    (`_keep_in_fp32_modules`) when dtype is 16-bit; with int8, what transformers' `load_in_8bit` replaces (every
    nn.Linear but the fp32-kept `wo`) becomes an Int8Linear."""
    model = T5EncoderModel(T5Config(**{k: v for k, v in cfg.items() if k != "architectures"})).eval()
    sd = dict(sd, **{"encoder.embed_tokens.weight": sd["shared.weight"]})
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    model.to(dtype)
    for blk in model.encoder.block:
        if dtype != torch.float32:
            blk.layer[1].DenseReluDense.wo.float()
        if int8:
            att, ff = blk.layer[0].SelfAttention, blk.layer[1].DenseReluDense
            for n in "qkvo":
                setattr(att, n, Int8Linear(getattr(att, n)))
            ff.wi_0, ff.wi_1 = Int8Linear(ff.wi_0), Int8Linear(ff.wi_1)
    return model


def t5_forward(model, ids):
    """One sequence [1, L] per call (the paper's batch), no mask (Flux)."""
    return torch.cat([model(input_ids=ids[i:i + 1]).last_hidden_state for i in range(ids.shape[0])])


def make_t5():
    cfg = {"architectures": ["T5EncoderModel"], "model_type": "t5", "d_model": 32, "d_kv": 8, "num_heads": 4,
           "d_ff": 48, "num_layers": 2, "vocab_size": 50, "relative_attention_num_buckets": 8,
           "relative_attention_max_distance": 16, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "gated-gelu",
           "dense_act_fn": "gelu_new", "is_gated_act": True, "pad_token_id": 0, "eos_token_id": 1,
           "tie_word_embeddings": False, "torch_dtype": "float32"}
    g = torch.Generator().manual_seed(23)
    d, inner, ff = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"], cfg["d_ff"]

    def mat(o, i):
        return (torch.rand(o, i, generator=g) * 2 - 1) * 1.7 / math.sqrt(i)

    sd = {"shared.weight": torch.randn(cfg["vocab_size"], d, generator=g)}
    for i in range(cfg["num_layers"]):
        p = f"encoder.block.{i}.layer."
        ln0 = 1 + 0.3 * torch.randn(d, generator=g)
        ln0[[3, 17]] = torch.tensor([9.0, -7.5])   # outlier feature channels, as in large T5s
        sd[p + "0.layer_norm.weight"] = ln0
        for n in "qkv":
            sd[p + f"0.SelfAttention.{n}.weight"] = mat(inner, d)
        sd[p + "0.SelfAttention.o.weight"] = mat(d, inner) * 3.0
        if i == 0:
            sd[p + "0.SelfAttention.relative_attention_bias.weight"] = torch.randn(
                cfg["relative_attention_num_buckets"], cfg["num_heads"], generator=g)
        ln1 = 1 + 0.3 * torch.randn(d, generator=g)
        ln1[[5, 28]] = torch.tensor([8.0, 6.5])
        sd[p + "1.layer_norm.weight"] = ln1
        sd[p + "1.DenseReluDense.wi_0.weight"] = mat(ff, d)
        sd[p + "1.DenseReluDense.wi_1.weight"] = mat(ff, d)
        sd[p + "1.DenseReluDense.wo.weight"] = mat(d, ff)
    sd["encoder.final_layer_norm.weight"] = 1 + 0.3 * torch.randn(d, generator=g)
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}  # stored in bf16, as FLUX.1-dev's text_encoder_2
    folder = os.path.join(ROOT, "t5", "text_encoder")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(folder, "model.safetensors"))

    L = 20
    ids = torch.randint(2, cfg["vocab_size"], (2, L), generator=g)
    ids[0, 14] = 1
    ids[0, 15:] = 0
    ids[1, 9] = 1
    ids[1, 10:] = 0
    with torch.no_grad():
        int8 = t5_forward(t5_model(cfg, sd, torch.bfloat16, True), ids)
        dense = t5_forward(t5_model(cfg, sd, torch.bfloat16, False), ids)
        fp32 = t5_forward(t5_model(cfg, sd, torch.float32, False), ids)
    print("t5: int8 vs bf16 rel", ((int8.float() - dense.float()).abs().max() / dense.float().abs().max()).item(),
          "int8 vs fp32 rel", ((int8.float() - fp32).abs().max() / fp32.abs().max()).item())
    save(os.path.join(ROOT, "t5", "golden.safetensors"),
         {"ids": ids, "int8_bf16": int8, "dense_bf16": dense, "fp32": fp32},
         "tiny T5 v1.1 encoder: transformers load_in_8bit (bitsandbytes 0.45.0 Linear8bitLt, threshold 6) with "
         "torch_dtype bf16, `wo` fp32; one sequence per call, no mask")


def save(path, tensors, notes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path,
              metadata={"notes": notes, "bitsandbytes": "0.45.0 (re-stated)", "torch": torch.__version__})


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        ROOT = sys.argv[2]
    torch.set_num_threads(1)
    lin = linear_cases()
    print("linear outlier columns (bf16):", lin["bf16.cols"].tolist(), "SCA:", lin["bf16.sca"].tolist())
    save(os.path.join(ROOT, "linear.safetensors"), lin,
         "bitsandbytes 0.45.0 Linear8bitLt (has_fp16_weights=False, threshold 6.0) re-stated in numpy/torch")
    save(os.path.join(ROOT, "gemm.safetensors"), gemm_case(), "int8 x int8^T with int64 accumulation")
    make_t5()
    total = 0
    for dp, _, fs in os.walk(ROOT):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    print("wrote", ROOT, total, "bytes")
