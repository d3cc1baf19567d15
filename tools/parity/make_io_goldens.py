"""Goldens for the foundation I/O tests (tests/io/data/), written by the reference Python stack.

    .venv/bin/python tools/parity/make_io_goldens.py   (the pinned stack, requirements/python-tools.txt)

- golden.safetensors: one tensor per dtype, a 0-dim and an empty tensor, and __metadata__, written by
  safetensors.torch.save_file; tests/io/test_safetensors.cpp rebuilds the same values in C++.
- images/: PNGs of every colour type and bit depth (written by a tiny encoder below, so every layout is
  covered, including ones PIL cannot write), palette PNGs written by PIL, and JPEGs written by PIL;
  images_expected.safetensors holds PIL's decode of each: `rgb/<name>` = np.array(Image.open(f).convert('RGB')),
  `label/<name>` = np.array(Image.open(f)) for palette and gray PNGs (the indices / raw values).
"""
import io
import math
import struct
import zlib
import os
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'io', 'data')


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
        # a transposed view, made contiguous (the writer stores row-major data)
        'i32_t': torch.arange(6, dtype=torch.int32).reshape(2, 3).t().contiguous(),  # save_file refuses views
    }
    save_file(t, os.path.join(OUT, 'golden.safetensors'), metadata={'format': 'pt', 'note': 'goca-bench golden'})


def png_bytes(width, height, color_type, bit_depth, rows, palette=None, trns=None):
    """A minimal PNG encoder: rows are lists of sample values (already channel-interleaved)."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    raw = bytearray()
    for row in rows:
        raw.append(0)  # filter: none
        if bit_depth == 16:
            for v in row:
                raw += struct.pack('>H', v)
        elif bit_depth == 8:
            raw += bytes(row)
        else:
            per = 8 // bit_depth
            for i in range(0, len(row), per):
                byte = 0
                for j, v in enumerate(row[i:i + per]):
                    byte |= v << (8 - bit_depth * (j + 1))
                raw.append(byte)
    out = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b'PLTE', bytes(c for rgb in palette for c in rgb))
    if trns is not None:
        out += chunk(b'tRNS', trns)
    out += chunk(b'IDAT', zlib.compress(bytes(raw), 9)) + chunk(b'IEND', b'')
    return out


def voc_palette(n=256):
    pal = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal.append((r, g, b))
    return pal


def image_goldens():
    import numpy as np
    from PIL import Image

    d = os.path.join(OUT, 'images')
    os.makedirs(d, exist_ok=True)
    w, h = 13, 7  # odd sizes: sub-byte rows end mid-byte
    rng = np.random.RandomState(7)
    files = {}
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    for ct, depths in [(0, [1, 2, 4, 8, 16]), (2, [8, 16]), (3, [1, 2, 4, 8]), (4, [8, 16]), (6, [8, 16])]:
        for bd in depths:
            n = channels[ct]
            top = (1 << bd) - 1
            if ct == 3:
                top = min(top, 20)  # indices into a palette of at most 21 entries (and at most 2^depth)
            vals = rng.randint(0, top + 1, size=(h, w * n))
            pal = voc_palette(top + 1) if ct == 3 else None
            name = f'ct{ct}_{bd}bit.png'
            files[name] = png_bytes(w, h, ct, bd, vals.tolist(), palette=pal)
    # Palette with transparency (tRNS) and a gray image with a tRNS colour: alpha is ignored for RGB.
    vals = rng.randint(0, 4, size=(h, w))
    files['ct3_trns.png'] = png_bytes(w, h, 3, 8, vals.tolist(), palette=voc_palette(4), trns=bytes([0, 128, 255, 255]))
    for name, b in files.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(b)
    # Palette PNGs written by PIL (VOC-style label maps, 255 = ignore), 8-bit and 4-bit.
    lab = rng.randint(0, 21, size=(9, 11)).astype(np.uint8)
    lab[0, :] = 255
    im = Image.fromarray(lab, mode='P')
    im.putpalette([c for rgb in voc_palette(256) for c in rgb])
    im.save(os.path.join(d, 'pil_voc_palette.png'))
    im4 = Image.fromarray((lab % 16).astype(np.uint8), mode='P')
    im4.putpalette([c for rgb in voc_palette(16) for c in rgb])
    im4.save(os.path.join(d, 'pil_palette_4bit.png'), bits=4)
    # 16-bit gray and gray+alpha written by PIL.
    Image.fromarray(rng.randint(0, 65536, size=(6, 5)).astype(np.uint16)).save(os.path.join(d, 'pil_gray16.png'))
    Image.fromarray(rng.randint(0, 256, size=(6, 5, 2)).astype(np.uint8), mode='LA').save(os.path.join(d, 'pil_la.png'))
    # JPEGs written by PIL: smooth content (a gradient plus noise) at odd sizes, several subsamplings.
    yy, xx = np.mgrid[0:23, 0:37]
    rgb = np.stack([xx * 7 % 256, yy * 11 % 256, (xx + yy) * 5 % 256], -1) + rng.randint(0, 40, size=(23, 37, 3))
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(os.path.join(d, 'pil_420.jpg'), quality=90)
    Image.fromarray(rgb).save(os.path.join(d, 'pil_444.jpg'), quality=90, subsampling=0)
    Image.fromarray(rgb).save(os.path.join(d, 'pil_422.jpg'), quality=75, subsampling=1)
    Image.fromarray(rgb).save(os.path.join(d, 'pil_progressive.jpg'), quality=85, progressive=True)
    Image.fromarray(rgb[..., 0]).save(os.path.join(d, 'pil_gray.jpg'), quality=90)
    Image.fromarray(rgb).convert('CMYK').save(os.path.join(d, 'pil_cmyk.jpg'), quality=90)

    expected = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        with Image.open(p) as im:
            expected['rgb/' + name] = torch.from_numpy(np.array(im.convert('RGB')))
        if name.endswith('.png'):
            with Image.open(p) as im:
                if im.mode in ('P', 'L', 'I;16', 'I', '1'):
                    a = np.array(im)
                    if im.mode == '1':
                        a = a.astype(np.uint8)
                    expected['label/' + name] = torch.from_numpy(a.astype(np.int64))
    save_file(expected, os.path.join(OUT, 'images_expected.safetensors'))


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    which = sys.argv[1:] or ['safetensors', 'images']
    if 'safetensors' in which:
        safetensors_golden()
    if 'images' in which:
        image_goldens()
