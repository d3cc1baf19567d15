"""The real Hugging Face tokenizers (transformers 4.47.1, requirements/python-tools.txt) on the tokenizer files the
C++ tests use; shared by tokenizer_goldens.py and captioner_goldens.py.

CLIP: transformers' slow `CLIPTokenizer` (what the SD1.5 / SDXL / Flux pipelines load) on vocab.json + merges.txt
written in Hugging Face's layout from openai's merges file (../shared/data/clip/bpe_simple_vocab_16e6.txt.gz):
vocab = the 256 byte characters (`bytes_to_unicode` order), the same with `</w>`, one entry per merge of the first
48 894, `<|startoftext|>`, `<|endoftext|>` (49 408 ids, as openai/clip-vit-large-patch14's vocab.json).
ftfy is not installed, so CLIPTokenizer uses its BasicTokenizer fallback (`fix_text is None`, asserted).

T5: transformers' `T5TokenizerFast` (what FluxPipeline loads; converted from the SentencePiece model by transformers'
own converter) and the slow `T5Tokenizer` (PixArtSigmaPipeline), both on tests/text/golden/tiny_spiece.model.
"""
import gzip
import json
import os

from transformers import CLIPTokenizer, T5Tokenizer, T5TokenizerFast
from transformers.models.clip.tokenization_clip import bytes_to_unicode

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SHARED = os.environ.get("GB_SHARED_DIR") or os.path.normpath(os.path.join(REPO, "..", "shared"))  # as CMake's
CLIP_MERGES_GZ = os.path.join(SHARED, "data", "clip", "bpe_simple_vocab_16e6.txt.gz")
TINY_SPIECE = os.path.join(REPO, "tests", "text", "golden", "tiny_spiece.model")
CAPTIONS = os.path.join(SHARED, "data", "goca-captions")
N_MERGES = 49152 - 256 - 2  # what openai's SimpleTokenizer and HF's CLIPTokenizer keep


def write_clip_files(folder):
    """vocab.json + merges.txt (Hugging Face's CLIP tokenizer layout) derived from openai's merges file."""
    os.makedirs(folder, exist_ok=True)
    lines = gzip.open(CLIP_MERGES_GZ).read().decode("utf-8").split("\n")[1:N_MERGES + 1]
    merges = [tuple(line.split()) for line in lines]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return folder


def clip_tokenizer(folder, pad_token="<|endoftext|>"):
    """transformers.CLIPTokenizer (slow) on write_clip_files(folder); pad "!" is SDXL's tokenizer_2.
    model_max_length 77 as the checkpoints' tokenizer_config.json says."""
    if not os.path.exists(os.path.join(folder, "vocab.json")):
        write_clip_files(folder)
    tok = CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"), pad_token=pad_token,
                        model_max_length=77)
    assert tok.fix_text is None, "ftfy is installed: CLIPTokenizer would not use its BasicTokenizer fallback"
    assert len(tok) == 49408
    return tok


def clip_ids(tok, text, max_length=77):
    """The pipelines' call: padding="max_length", max_length=77, truncation=True."""
    return tok(text, padding="max_length", max_length=max_length, truncation=True)["input_ids"]


def t5_tokenizer_fast(model=TINY_SPIECE):
    return T5TokenizerFast(vocab_file=model)


def t5_tokenizer_slow(model=TINY_SPIECE):
    return T5Tokenizer(vocab_file=model, legacy=True)


def t5_ids(tok, text, max_length):
    return tok(text, padding="max_length", max_length=max_length, truncation=True,
               add_special_tokens=True)["input_ids"]


def strip_pad(ids, pad):
    ids = list(ids)
    while ids and ids[-1] == pad:
        ids.pop()
    return ids
