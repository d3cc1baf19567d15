#!/usr/bin/env python3
"""Tokenizer goldens.
CLIP: ids of tricky strings from tools/parity/clip_bpe.py (the Python reference of HF's CLIPTokenizer).
T5: trains a tiny SentencePiece unigram model with python3-sentencepiece (T5's special ids: pad 0, eos 1,
unk 2, no bos) on the VOC captions, saves it, and records sp.encode pieces/ids of test strings.

    /usr/bin/python3 tools/parity/tokenizer_goldens.py
"""
import json
import os
import sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from clip_bpe import ClipBPE  # noqa: E402

OUT = os.path.join(HERE, "../../tests/text/golden")
STRINGS = [
    "a photo of a cat", "A   Photo OF a dog's tail!", "café, crème brûlée", "they'll've we'RE it's I'M",
    "hello\tworld\nnew  line", "numbers 12345 and 3.14", "emoji 😀 ok", "中文字符 mixed", "soft\u00adhyphen zero\u200bwidth",
    "(person, clothes), chair, store", "t-shirt... wow!!! ???", "ÀÉÎÕÜ upper", "<|startoftext|>inner<|endoftext|>",
    "", "   ", "x" * 300, "skyscraper, sky, bookshelf, book", "İstanbul ΣΑΣ",
]


def main():
    bpe = ClipBPE()
    bpe2 = ClipBPE(pad="!")
    clip = [{"text": s, "ids": bpe(s), "ids_pad_bang": bpe2(s)} for s in STRINGS]
    with open(os.path.join(OUT, "clip_tricky.json"), "w") as f:
        json.dump(clip, f, ensure_ascii=False)
    caps = json.load(open("/work/shared/data/goca-captions/voc.json"))
    corpus = os.path.join("/tmp", "gb_t5_corpus.txt")
    with open(corpus, "w") as f:
        for v in caps.values():
            f.write(v["caption"].lower() + "\n")
    prefix = os.path.join(OUT, "tiny_spiece")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=300, model_type="unigram",
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, seed_sentencepiece_size=100000,
                                   character_coverage=1.0)
    os.remove(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    t5 = [{"text": s, "pieces": sp.encode(s, out_type=str), "ids": sp.encode(s)} for s in STRINGS
          + ["aeroplane, (person, clothes), background", "zebra qqq", "a  b"]]
    with open(os.path.join(OUT, "t5_tiny.json"), "w") as f:
        json.dump(t5, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
