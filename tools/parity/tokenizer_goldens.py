#!/usr/bin/env python3
"""Tokenizer goldens from the real Hugging Face tokenizers (transformers 4.47.1; see hf_tokenizers.py).

tests/text/golden/clip_tricky.json   transformers' CLIPTokenizer ids (padded to 77) of tricky strings, pad
                                     <|endoftext|> and "!" (SDXL tokenizer_2)
tests/text/golden/t5_tiny.json       T5TokenizerFast ids (without the appended </s>) of the same strings plus a few
                                     caption-like ones, on tests/text/golden/tiny_spiece.model (the slow T5Tokenizer
                                     and sentencepiece's own encode are asserted to give the same ids), and
                                     sentencepiece's surface pieces (an unknown piece keeps its text; transformers'
                                     convert_ids_to_tokens would say <unk>)
tests/text/golden/tiny_spiece.model  a tiny SentencePiece unigram model (T5's special ids: pad 0, eos 1, unk 2, no
                                     bos) trained on the VOC captions. It is an input, committed and kept: it was
                                     trained with Debian's python3-sentencepiece; sentencepiece 0.2.0 (pip) retrains
                                     a different model from the same corpus and options (other pieces and scores;
                                     the script reports it, --write-spiece would replace the committed model)

    /work/main/.venv/bin/python tools/parity/tokenizer_goldens.py [--write-spiece]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_tokenizers as hft  # noqa: E402

OUT = os.path.join(hft.REPO, "tests", "text", "golden")
STRINGS = [
    "a photo of a cat", "A   Photo OF a dog's tail!", "café, crème brûlée", "they'll've we'RE it's I'M",
    "hello\tworld\nnew  line", "numbers 12345 and 3.14", "emoji 😀 ok", "中文字符 mixed", "soft\u00adhyphen zero\u200bwidth",
    "(person, clothes), chair, store", "t-shirt... wow!!! ???", "ÀÉÎÕÜ upper", "<|startoftext|>inner<|endoftext|>",
    "", "   ", "x" * 300, "skyscraper, sky, bookshelf, book", "İstanbul ΣΑΣ",
]
T5_EXTRA = ["aeroplane, (person, clothes), background", "zebra qqq", "a  b"]


def pieces_and_scores(path):
    m = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        m.ParseFromString(f.read())
    return [(p.piece, p.score, p.type) for p in m.pieces], m.normalizer_spec.SerializeToString()


def train_spiece(prefix):
    caps = json.load(open(os.path.join(hft.CAPTIONS, "voc.json")))
    corpus = prefix + "_corpus.txt"
    with open(corpus, "w") as f:
        for v in caps.values():
            f.write(v["caption"].lower() + "\n")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=300, model_type="unigram",
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1,
                                   seed_sentencepiece_size=100000, character_coverage=1.0, minloglevel=2)
    return prefix + ".model"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-spiece", action="store_true", help="replace the committed tiny_spiece.model")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = train_spiece(os.path.join(tmp, "tiny_spiece"))
        if args.write_spiece:
            shutil.copyfile(model, hft.TINY_SPIECE)
        (new, new_norm), (old, old_norm) = pieces_and_scores(model), pieces_and_scores(hft.TINY_SPIECE)
        print("retrained tiny_spiece.model: same pieces %s, same normalizer %s, max score difference %.3g" % (
            sorted(p[0] for p in new) == sorted(p[0] for p in old), new_norm == old_norm,
            max(abs(a[1] - b[1]) for a, b in zip(sorted(new), sorted(old)))))

        clip = hft.clip_tokenizer(os.path.join(tmp, "clip"))
        clip_bang = hft.clip_tokenizer(os.path.join(tmp, "clip"), pad_token="!")
    out = [{"text": s, "ids": hft.clip_ids(clip, s), "ids_pad_bang": hft.clip_ids(clip_bang, s)} for s in STRINGS]
    with open(os.path.join(OUT, "clip_tricky.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False)

    fast, slow = hft.t5_tokenizer_fast(), hft.t5_tokenizer_slow()
    sp = spm.SentencePieceProcessor(model_file=hft.TINY_SPIECE)
    t5 = []
    for s in STRINGS + T5_EXTRA:
        ids = fast(s)["input_ids"]
        assert ids == slow(s)["input_ids"], s
        assert ids[-1] == fast.eos_token_id
        if "<" not in s:  # transformers splits special-token strings out first; sentencepiece does not
            assert ids[:-1] == sp.encode(s), s
        t5.append({"text": s, "pieces": sp.encode(s, out_type=str), "ids": ids[:-1]})
    with open(os.path.join(OUT, "t5_tiny.json"), "w") as f:
        json.dump(t5, f, ensure_ascii=False)
    print("wrote clip_tricky.json (%d strings), t5_tiny.json (%d strings)" % (len(out), len(t5)))


if __name__ == "__main__":
    main()
