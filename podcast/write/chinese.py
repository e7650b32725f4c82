"""Chinese text helpers for the writer: Taiwan script, sentences, bigrams.

OpenCC ``s2twp`` also rewrites *phrases* (Taiwan vocabulary), which is right
for Simplified input but damages text that is already Traditional (it turns
參數 into 引數, 導入 into 匯入). So Simplified text gets ``s2twp``; Traditional
text with a few stray Simplified characters gets character-level ``s2tw``;
clean Traditional and English text is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Set
from functools import lru_cache

from ..util import opencc_converter

# Characters that s2tw changes but Taiwan text uses as they are (台灣, 公布, 群組…).
TAIWAN_VARIANTS = frozenset("台布群里后干面准游于卷表系周志范冲尽")


def simplified_chars(text: str) -> set[str]:
    """Simplified-only characters in ``text`` (those s2tw would change)."""
    out: set[str] = set()
    converted = opencc_converter("s2tw").convert(text)
    if len(converted) != len(text):  # s2tw is character-level; be safe anyway
        converted = "".join(opencc_converter("s2tw").convert(c) for c in text)
    for a, b in zip(text, converted, strict=True):
        if a != b and a not in TAIWAN_VARIANTS:
            out.add(a)
    return out


def is_simplified(text: str) -> bool:
    cjk = re.findall(r"[\u4e00-\u9fff]", text)
    if not cjk:
        return False
    simp = simplified_chars(text)
    trad = sum(a != b for a, b in zip(cjk, opencc_converter("t2s").convert("".join(cjk)), strict=False))
    return sum(c in simp for c in cjk) > trad


def to_taiwan(text: str, *, simplified: bool | None = None) -> str:
    """Traditional Chinese (Taiwan) for any input; see the module docstring."""
    if simplified is None:
        simplified = is_simplified(text)
    if simplified:
        return opencc_converter("s2twp").convert(text)
    if simplified_chars(text):
        return "".join(c if c in TAIWAN_VARIANTS else opencc_converter("s2tw").convert(c) for c in text)
    return text


_SENT_END = re.compile(r"[^。！？!?；;\n]*(?:[。！？!?；;]+[」』）)\"”’]*|$)")
_EN_SPLIT = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[A-Z0-9\"“(])")


def sentences(text: str) -> list[str]:
    """Sentences (or ；-clauses) of a text, each stripped, none empty."""
    out: list[str] = []
    for para in text.splitlines():
        for chunk in _SENT_END.findall(para):
            for sent in _EN_SPLIT.split(chunk):
                sent = sent.strip()
                if sent.endswith(("；", ";")):
                    sent = sent[:-1].rstrip()  # a clause stands alone without its semicolon
                if len(re.sub(r"\W", "", sent)) >= 4:
                    out.append(sent)
    return out


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*|\d+(?:[.,]\d+)*|[\u4e00-\u9fff]")


@lru_cache(maxsize=4096)
def bigrams(text: str) -> frozenset[str]:
    """Character bigrams of the CJK runs plus lower-cased Latin words and numbers.

    Cached: clustering compares every pair of items and sentence scoring every pair
    of sentences, so the same texts come back many times in one run."""
    toks = _WORD.findall(text)
    out: set[str] = set()
    for a, b in zip(toks, toks[1:], strict=False):
        if len(a) == 1 and len(b) == 1 and "\u4e00" <= a <= "\u9fff" and "\u4e00" <= b <= "\u9fff":
            out.add(a + b)
    out.update(t.lower() for t in toks if len(t) > 1)
    return frozenset(out)


def jaccard(a: Set[str], b: Set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def is_latin(text: str) -> bool:
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return latin > 3 * cjk
