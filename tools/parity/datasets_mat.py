#!/usr/bin/env python3
"""Tiny MAT files written by scipy (not by libmatio) for tests/datasets: compressed uint16 and plain double
`LabelMap`s, to check that read_mat_variable reads files other writers produce, in the orientation
scipy.io.loadmat shows.

  .venv/bin/python tools/parity/datasets_mat.py tests/datasets/data
"""
import os
import sys

import numpy as np
import scipy.io as sio

out = sys.argv[1]
label = np.array([[0, 2, 259, 260, 415], [324, 9, 1, 3, 459], [440, 445, 0, 0, 284]])
sio.savemat(os.path.join(out, 'labelmap_uint16_zlib.mat'), {'LabelMap': label.astype(np.uint16)},
            do_compression=True)
sio.savemat(os.path.join(out, 'labelmap_double.mat'), {'LabelMap': label.astype(np.float64), 'Other': np.eye(2)})
for name in ['labelmap_uint16_zlib.mat', 'labelmap_double.mat']:
    back = sio.loadmat(os.path.join(out, name))['LabelMap']
    assert back.shape == (3, 5) and (back == label).all()
print('wrote', out)
