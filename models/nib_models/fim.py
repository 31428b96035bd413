"""Fill-in-the-middle transformation (Bavarian et al. 2022), StarCoder token names.

Token layout (ids; each segment tokenized separately, no BOS):
  PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <|endoftext|>
  SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle <|endoftext|>
A document not transformed is: ids <|endoftext|>.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

EOT = "<|endoftext|>"
FIM_PREFIX = "<fim_prefix>"
FIM_MIDDLE = "<fim_middle>"
FIM_SUFFIX = "<fim_suffix>"
FIM_PAD = "<fim_pad>"
FILE_SEP = "<file_sep>"
SPECIAL_TOKENS = [EOT, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD, FILE_SEP]


@dataclass
class FimIds:
    eot: int
    prefix: int
    middle: int
    suffix: int

    @classmethod
    def from_tokenizer(cls, tok):
        """``tok``: a ``tokenizers.Tokenizer`` or a transformers tokenizer."""
        get = tok.token_to_id if hasattr(tok, "token_to_id") else tok.convert_tokens_to_ids
        ids = cls(get(EOT), get(FIM_PREFIX), get(FIM_MIDDLE), get(FIM_SUFFIX))
        if None in (ids.eot, ids.prefix, ids.middle, ids.suffix):
            raise ValueError("tokenizer lacks the StarCoder FIM special tokens")
        return ids


def split_points(text: str, rng: random.Random, line_rate: float = 0.5) -> tuple[int, int]:
    """Pick (i, j), 0 <= i <= j <= len(text): prefix=text[:i], middle=text[i:j], suffix=text[j:].

    With probability ``line_rate`` the split is cursor-like: the cursor is at a
    random position inside a random line and the middle runs to the end of that
    line (sometimes a few lines further), as when an editor completes a partial
    line. Otherwise both points are uniform random character positions."""
    n = len(text)
    if n == 0:
        return 0, 0
    if rng.random() < line_rate:
        starts = [0] + [k + 1 for k, c in enumerate(text) if c == "\n" and k + 1 < n]
        s = rng.choice(starts)
        e = text.find("\n", s)
        e = n if e < 0 else e
        # cursor after the indentation or at a random point of the line
        indent = s + (len(text[s:e]) - len(text[s:e].lstrip(" \t")))
        i = indent if rng.random() < 0.25 else rng.randint(indent, e) if indent <= e else s
        j = e
        r = rng.random()
        if r < 0.2:  # multi-line middle: up to 3 more lines
            for _ in range(rng.randint(1, 3)):
                nxt = text.find("\n", j + 1)
                j = n if nxt < 0 else nxt
        return i, j
    a, b = sorted((rng.randint(0, n), rng.randint(0, n)))
    return a, b


def fim_ids(prefix_ids, middle_ids, suffix_ids, ids: FimIds, spm: bool) -> list[int]:
    if spm:
        return [ids.prefix, ids.suffix, *suffix_ids, ids.middle, *prefix_ids, *middle_ids, ids.eot]
    return [ids.prefix, *prefix_ids, ids.suffix, *suffix_ids, ids.middle, *middle_ids, ids.eot]


def encode_plain(encode, text) -> list[int]:
    return list(encode(text))


def transform_batch(texts, encode_batch, ids: FimIds, rng: random.Random, fim_rate: float = 0.5,
                    spm_rate: float = 0.5, line_rate: float = 0.5):
    """Turn documents into training id sequences, each ending with <|endoftext|>.

    ``encode_batch(list[str]) -> list[list[int]]`` must not add special tokens.
    Returns (sequences, kinds) with kinds in {"plain", "psm", "spm"}."""
    plan = []
    segs = []
    for t in texts:
        if rng.random() < fim_rate and len(t) > 2:
            i, j = split_points(t, rng, line_rate)
            spm = rng.random() < spm_rate
            plan.append(("spm" if spm else "psm", len(segs)))
            segs += [t[:i], t[i:j], t[j:]]
        else:
            plan.append(("plain", len(segs)))
            segs.append(t)
    enc = encode_batch(segs) if segs else []
    out = []
    kinds = []
    for kind, k in plan:
        if kind == "plain":
            out.append(list(enc[k]) + [ids.eot])
        else:
            out.append(fim_ids(enc[k], enc[k + 1], enc[k + 2], ids, spm=(kind == "spm")))
        kinds.append(kind)
    return out, kinds
