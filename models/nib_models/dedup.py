"""Exact and near-duplicate detection (a small MinHash + LSH implementation)."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import numpy as np

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[^\sA-Za-z0-9_]")
_MERSENNE = (1 << 61) - 1


def exact_key(text: str) -> str:
    """Hash of the text with runs of whitespace collapsed (so CRLF/trailing-space copies match)."""
    return hashlib.sha256(_WS.sub(" ", text).strip().encode("utf-8")).hexdigest()


def shingles(text: str, k: int = 5) -> set:
    toks = _TOKEN.findall(text)
    if len(toks) < k:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i:i + k]) for i in range(len(toks) - k + 1)}


class MinHasher:
    """MinHash signatures with ``num_perm`` universal hash functions (a*x+b mod 2^61-1)."""

    def __init__(self, num_perm: int = 64, seed: int = 1, k: int = 5):
        rng = np.random.RandomState(seed)
        self.num_perm = num_perm
        self.k = k
        self.a = rng.randint(1, 2**31 - 1, size=num_perm, dtype=np.int64).astype(np.uint64)
        self.b = rng.randint(0, 2**31 - 1, size=num_perm, dtype=np.int64).astype(np.uint64)

    def signature(self, text: str) -> np.ndarray:
        sh = shingles(text, self.k)
        if not sh:
            return np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        # 32-bit base hashes keep a*x+b below 2^64 (a, b < 2^31)
        hv = np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little")
                       for s in sh], dtype=np.uint64)
        ph = (hv[:, None] * self.a[None, :] + self.b[None, :]) % np.uint64(_MERSENNE)
        return ph.min(axis=0)


def jaccard_estimate(s1: np.ndarray, s2: np.ndarray) -> float:
    return float(np.mean(s1 == s2))


def jaccard(a: str, b: str, k: int = 5) -> float:
    x, y = shingles(a, k), shingles(b, k)
    if not x and not y:
        return 1.0
    return len(x & y) / max(1, len(x | y))


def near_dup_filter(texts, threshold: float = 0.85, hasher: MinHasher | None = None,
                    bands: int = 16) -> list[bool]:
    """Return keep-flags: a text is dropped if an earlier kept text has estimated Jaccard >= threshold.

    Candidates come from LSH banding (``bands`` bands of num_perm/bands rows)."""
    hasher = hasher or MinHasher()
    rows = hasher.num_perm // bands
    buckets = [defaultdict(list) for _ in range(bands)]
    sigs = []
    keep = []
    for i, t in enumerate(texts):
        sig = hasher.signature(t)
        sigs.append(sig)
        cands = set()
        keys = []
        for b in range(bands):
            key = sig[b * rows:(b + 1) * rows].tobytes()
            keys.append(key)
            cands.update(buckets[b].get(key, ()))
        dup = any(jaccard_estimate(sig, sigs[j]) >= threshold for j in cands)
        keep.append(not dup)
        if not dup:
            for b, key in enumerate(keys):
                buckets[b][key].append(i)
    return keep
