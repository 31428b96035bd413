"""Train nib's byte-level BPE tokenizer (HF tokenizers) with StarCoder special tokens.

Special tokens get ids 0-5 in this order: <|endoftext|> (EOS and document
separator; no BOS is ever added), <fim_prefix>, <fim_middle>, <fim_suffix>,
<fim_pad>, <file_sep>.

Usage: nib-tokenizer --corpus /work/nibdata/corpus/train.jsonl --out DIR --vocab-size 8192
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from .fim import EOT, SPECIAL_TOKENS


def iter_texts(jsonl_paths, max_bytes=None, seed=0, sample=1.0):
    rng = random.Random(seed)
    total = 0
    for p in jsonl_paths:
        with open(p) as f:
            for line in f:
                if sample < 1.0 and rng.random() > sample:
                    continue
                t = json.loads(line)["text"]
                total += len(t)
                yield t
                if max_bytes and total >= max_bytes:
                    return


def train_tokenizer(texts, vocab_size=8192, min_frequency=2):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def wrap_fast(tok, model_max_length=512):
    """A transformers PreTrainedTokenizerFast around ``tok`` (no BOS added)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        clean_up_tokenization_spaces=False,
        model_max_length=model_max_length,
    )


def save(tok, out_dir, model_max_length=512):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast = wrap_fast(tok, model_max_length)
    fast.save_pretrained(out)
    return fast


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train nib's byte-level BPE tokenizer")
    ap.add_argument("--corpus", nargs="+", required=True, help="train.jsonl file(s)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--max-bytes", type=int, default=40_000_000, help="train on at most this many characters")
    ap.add_argument("--model-max-length", type=int, default=512)
    a = ap.parse_args(argv)
    total = sum(Path(p).stat().st_size for p in a.corpus)
    sample = min(1.0, 1.15 * a.max_bytes / max(1, total))  # jsonl is sorted by language: sample evenly
    tok = train_tokenizer(iter_texts(a.corpus, a.max_bytes, sample=sample), a.vocab_size)
    save(tok, a.out, a.model_max_length)
    print(f"tokenizer: {tok.get_vocab_size()} tokens -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
