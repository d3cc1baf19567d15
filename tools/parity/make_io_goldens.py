"""Goldens for the foundation I/O tests (tests/core/data/), written by the reference Python stack.

    PYTHONPATH=../shared/tools/pyref /usr/bin/python3 tools/parity/make_io_goldens.py

- golden.safetensors: one tensor per dtype, a 0-dim and an empty tensor, and __metadata__, written by
  safetensors.torch.save_file; tests/core/test_safetensors.cpp rebuilds the same values in C++.
"""
import math
import os
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'core', 'data')


def safetensors_golden():
    t = {
        'f32': torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1,
        'f16': torch.tensor([0.1, -2.5, 65504.0, 1e-4], dtype=torch.float16),
        'bf16': torch.tensor([1.0, -3.140625, 1e30], dtype=torch.bfloat16),
        'f64': torch.tensor([math.pi, -math.e], dtype=torch.float64),
        'i64': torch.tensor([-2**40, 7], dtype=torch.int64),
        'i32': torch.tensor([-5, 2**31 - 1], dtype=torch.int32),
        'i16': torch.tensor([-32768, 12], dtype=torch.int16),
        'i8': torch.tensor([-128, 127], dtype=torch.int8),
        'u8': torch.tensor([0, 255, 3], dtype=torch.uint8),
        'bool': torch.tensor([True, False, True]),
        'scalar': torch.tensor(2.5, dtype=torch.float32),
        'empty': torch.zeros(0, 3, dtype=torch.float32),
        # a transposed view: the writer stores it contiguous
        'i32_t': torch.arange(6, dtype=torch.int32).reshape(2, 3).t(),
    }
    save_file(t, os.path.join(OUT, 'golden.safetensors'), metadata={'format': 'pt', 'note': 'goca-bench golden'})


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    which = sys.argv[1:] or ['safetensors']
    if 'safetensors' in which:
        safetensors_golden()
