#!/usr/bin/env python3
"""at::mm (PyTorch's MKL GEMM) beside at::mkldnn_linear (oneDNN) for goca/'s product shapes, side by side in one
process on the same inputs, with the LibTorch goca-bench builds against (the venv's torch).

    .venv/bin/python tools/bench/gemm_routes.py [--threads 2] [--iters 5]
"""
import argparse
import time

import torch


def bench(f, iters):
    f()
    t = time.perf_counter()
    for _ in range(iters):
        f()
    return (time.perf_counter() - t) / iters * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    print("| [M, K] · [N, K]ᵀ | at::mm (MKL) | mkldnn_linear | mm / mkldnn |")
    print("|---|---:|---:|---:|")
    for m, k, n in [(4096, 320, 320), (4096, 1280, 77), (16384, 640, 640), (1024, 1280, 1280)]:
        x, w = torch.randn(m, k), torch.randn(n, k)
        with torch.inference_mode():
            a = bench(lambda: torch.mm(x, w.t()), args.iters)
            b = bench(lambda: torch._C._nn.mkldnn_linear(x.to_mkldnn(), w, None).to_dense(), args.iters)
        print(f"| {m} × {k} · {n} | {a:.1f} ms | {b:.1f} ms | {a / b:.2f} |")


if __name__ == "__main__":
    main()
