#!/usr/bin/env python3
"""Writes configs/synthetic/clip-mini-merges.txt.gz: a CLIP BPE merges file that tokenizes the synthetic
world's captions into exactly the same pieces as the full CLIP file (bpe_simple_vocab_16e6.txt.gz), so the
quickstart needs no download and no 1.3 MB file.

BPE applies, at each step, the lowest-rank merge among the word's adjacent pairs. Keeping every merge the
full tokenizer applies to our words, in their original relative order, therefore reproduces its output
(the chosen merge is always in the subset, and it has the lowest rank of all pairs, so also of the subset).
The file is padded to CLIP's 48894 merges with merges of control-byte symbols (bytes 0..32, which never occur
in captions) so that loaders expecting the full count accept it. Token ids differ from CLIP's; the synthetic
backbone reads token text only.

usage: make_clip_mini_merges.py FULL_MERGES.gz OUT.gz"""
import gzip
import itertools
import sys

WORDS = """bird duck parrot bottle car truck cat kitten dog puppy person man woman boy girl clothes
sky wall grass road floor water background
( ) , . ), ). ., ,( .( (( ))""".split()
WANT = 49152 - 256 - 2


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def bpe(word, ranks, used):
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        used.add(rank)
        a, b = symbols[i], symbols[i + 1]
        out, j = [], 0
        while j < len(symbols):  # merge every occurrence of the pair, left to right
            if j + 1 < len(symbols) and symbols[j] == a and symbols[j + 1] == b:
                out.append(a + b)
                j += 2
            else:
                out.append(symbols[j])
                j += 1
        symbols = out
    return symbols


def main():
    full, out = sys.argv[1], sys.argv[2]
    lines = gzip.open(full, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(l.split()) for l in lines[1:WANT + 1]]
    ranks = {m: i for i, m in enumerate(merges)}
    used = set()
    for w in WORDS:
        print(w, bpe(w, ranks, used))
    keep = [merges[r] for r in sorted(used)]
    b2u = bytes_to_unicode()
    ctrl = [b2u[b] for b in range(33)]
    pad = []
    for a, b, c, d in itertools.product(ctrl, repeat=4):
        if len(keep) + len(pad) >= WANT:
            break
        pad.append((a, b + c + d))
    body = "#version: 0.2 (goca-bench synthetic subset of CLIP's bpe_simple_vocab_16e6; see tools/runner)\n"
    body += "\n".join(f"{a} {b}" for a, b in keep + pad) + "\n"
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        f.write(body.encode("utf-8"))
    print(f"{len(keep)} real merges + {len(pad)} padding -> {out}")


if __name__ == "__main__":
    main()
