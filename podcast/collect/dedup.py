"""Deduplication: canonical URLs and near-duplicate texts (SimHash).

The same story often reaches us twice: through two feeds with the same link
(caught by the canonical URL, hence the same item id) or as a syndicated copy
on another site (caught by SimHash: a 64-bit fingerprint over character
3-grams, which works for Chinese without word segmentation; copies differ in
a few bits, unrelated texts in about 32).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np

from ..models import Item

_BANDS = 4  # 64 bits in 4 bands of 16: two hashes within 3 bits share at least one band


_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w]+")


def _normalize(text: str) -> str:
    # Punctuation and spacing differ between copies (full- vs half-width); words do not.
    return _WS.sub("", _PUNCT.sub("", text.lower()))


@lru_cache(maxsize=1024)  # dedup and the store both fingerprint each new item
def simhash(text: str, n: int = 3) -> int:
    """64-bit SimHash over character ``n``-grams of the normalized text."""
    norm = _normalize(text)
    if not norm:
        return 0
    counts: dict[str, int] = {}
    for i in range(max(1, len(norm) - n + 1)):
        gram = norm[i : i + n]
        counts[gram] = counts.get(gram, 0) + 1
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(), "big") for g in counts),
        dtype=np.uint64,
        count=len(counts),
    )
    # Each bit votes +count when set in a gram's hash, -count when clear.
    bits = ((hashes[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)
    weights = np.fromiter(counts.values(), dtype=np.int64, count=len(counts)) @ (2 * bits - 1)
    out = 0
    for bit in np.flatnonzero(weights > 0):
        out |= 1 << int(bit)
    return out


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def is_near_duplicate(a: str, b: str, max_distance: int = 3) -> bool:
    """True when two texts are the same article (copies, light edits)."""
    if not _normalize(a) or not _normalize(b):
        return False
    return hamming(simhash(a), simhash(b)) <= max_distance


class NearDupIndex:
    """SimHashes of texts seen so far, banded so a lookup is not a scan of all."""

    def __init__(self, max_distance: int = 3) -> None:
        if max_distance >= _BANDS:
            raise ValueError(f"max_distance must be below {_BANDS} for the banded index")
        self.max_distance = max_distance
        self.bands: list[dict[int, list[tuple[int, str]]]] = [{} for _ in range(_BANDS)]

    def find(self, fingerprint: int) -> str | None:
        """The key of an earlier text within ``max_distance`` bits, else None."""
        for i, band in enumerate(self.bands):
            for other, key in band.get((fingerprint >> (16 * i)) & 0xFFFF, ()):
                if hamming(fingerprint, other) <= self.max_distance:
                    return key
        return None

    def add(self, fingerprint: int, key: str) -> None:
        for i, band in enumerate(self.bands):
            band.setdefault((fingerprint >> (16 * i)) & 0xFFFF, []).append((fingerprint, key))


MIN_DUP_CHARS = 80  # shorter texts (headlines, one-line summaries) collide too easily


def dedup_items(
    items: list[Item], index: NearDupIndex | None = None
) -> tuple[list[Item], list[tuple[str, str]]]:
    """Drop repeats by id, then near-duplicate texts; the first one seen is kept.

    Returns (kept items, [(dropped id, kept id), ...]). Pass an ``index``
    seeded from the store to also catch copies of items collected earlier.
    """
    index = index if index is not None else NearDupIndex()
    kept: list[Item] = []
    dropped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            continue
        seen.add(it.id)
        if len(_normalize(it.text)) >= MIN_DUP_CHARS:
            fp = simhash(it.text)
            twin = index.find(fp)
            if twin is not None and twin != it.id:
                dropped.append((it.id, twin))
                continue
            index.add(fp, it.id)
        kept.append(it)
    return kept, dropped
