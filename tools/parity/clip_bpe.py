#!/usr/bin/env python3
"""An independent Python reference of Hugging Face's slow CLIPTokenizer without ftfy (written for goca-bench
from the algorithm's description, not copied): BasicTokenizer(strip_accents=False, do_split_on_punc=False)
cleanup, the CLIP pre-tokenisation regex (python `regex`), byte-level BPE with `</w>`, and
[BOS] + tokens + [EOS] truncated to 77 and padded. The vocabulary is derived from openai's merges file.

Used by captioner_goldens.py as the tokenizer stub, and as a command:
    /usr/bin/python3 tools/parity/clip_bpe.py "a photo of a cat"
"""
import gzip
import sys
import unicodedata

import regex

MERGES = "/work/shared/data/clip/bpe_simple_vocab_16e6.txt.gz"
PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)


def byte_table():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table  # insertion order = vocabulary order


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or
            0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or
            0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_clean(text):
    chars = []
    for ch in text:
        cp = ord(ch)
        ws = ch in " \t\n\r" or unicodedata.category(ch) == "Zs"
        control = ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")
        if cp == 0 or cp == 0xFFFD or control:
            continue
        if ws:
            chars.append(" ")
        elif is_cjk(cp):
            chars.append(" " + ch + " ")
        else:
            chars.append(ch)
    text = unicodedata.normalize("NFC", "".join(chars))
    return " ".join(w.lower() for w in text.strip().split())


class ClipBPE:
    def __init__(self, merges_path=MERGES, pad="<|endoftext|>", max_length=77):
        lines = gzip.open(merges_path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(l.split()) for l in lines]
        self.bytes = byte_table()
        vocab = list(self.bytes.values())
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {t: i for i, t in enumerate(vocab)}
        self.decoder = {i: t for t, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pad = pad
        self.max_length = max_length

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(self.ranks.get((word[i], word[i + 1]), float("inf")), i) for i in range(len(word) - 1)]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            a, b = next((word[i], word[i + 1]) for r, i in pairs if r == rank)
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        self.cache[token] = " ".join(word)
        return self.cache[token]

    def tokenize(self, text):
        specials = ["<|startoftext|>", "<|endoftext|>"] + ([self.pad] if self.pad not in ("<|endoftext|>",) else [])
        pieces, start, i = [], 0, 0
        segments = []
        while i < len(text):
            hit = max((s for s in specials if text.startswith(s, i)), key=len, default=None)
            if hit:
                if i > start:
                    segments.append((False, text[start:i]))
                segments.append((True, hit))
                i += len(hit)
                start = i
            else:
                i += 1
        if start < len(text):
            segments.append((False, text[start:]))
        for special, seg in segments:
            if special:
                pieces.append(seg)
                continue
            for tok in PATTERN.findall(basic_clean(seg)):
                if tok not in ("<|startoftext|>", "<|endoftext|>"):
                    tok = "".join(self.bytes[b] for b in tok.encode("utf-8"))
                pieces.extend(self.bpe(tok).split(" "))
        return pieces

    def __call__(self, text):
        body = [self.encoder.get(t, self.encoder["<|endoftext|>"]) for t in self.tokenize(text)]
        ids = [self.encoder["<|startoftext|>"]] + body[:self.max_length - 2] + [self.encoder["<|endoftext|>"]]
        return ids + [self.encoder[self.pad]] * (self.max_length - len(ids))


if __name__ == "__main__":
    tok = ClipBPE()
    for arg in sys.argv[1:]:
        ids = tok(arg)
        print(ids, [tok.decoder[i] for i in ids if i != 49407][:20])
