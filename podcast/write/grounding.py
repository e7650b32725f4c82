"""Grounding: every fact a bullet states must be found in the sources it cites.

A "fact" here is something a reader could check and a writer could invent:
a number (amounts, percentages, dates, counts) or a proper name (a Latin-script
capitalised word or acronym, or a CJK name from the items' 關鍵實體). Text on
both sides is normalised before comparing, so formatting never counts as a
difference:

* full-width forms (５０％, ＡＩ) via NFKC;
* Simplified vs Traditional vs Taiwan wording via OpenCC (t2s then s2twp, so
  英伟达, 英偉達 and 輝達 compare equal);
* thousands separators (7,520 = 7520) and multipliers: 148 億 = 148億 =
  14,800,000,000 = 14.8 billion;
* percentages (50% = ５０％ = 百分之50), kept apart from plain numbers.

Numbers written as Chinese numerals (三倍) are not checked.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from ..models import Item
from ..script import SUMMARY, Bullet, Script
from ..util import opencc_converter

# Multipliers after a number. Longest first so 百萬 wins over 萬.
_MULTIPLIERS: dict[str, int] = {
    "千萬": 10**7, "千万": 10**7, "百萬": 10**6, "百万": 10**6,
    "億": 10**8, "亿": 10**8, "萬": 10**4, "万": 10**4, "兆": 10**12, "千": 10**3,
    "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12,
    "bn": 10**9, "k": 10**3, "m": 10**6, "b": 10**9,
}
_MULT_RE = "|".join(sorted((re.escape(k) for k in _MULTIPLIERS), key=len, reverse=True))
# A number not glued to a Latin word or another number; then a multiplier and/or a percent.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9.])(?P<pct_pre>百分之\s*)?(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?"
    rf"\s*(?P<mult>(?:{_MULT_RE})(?![A-Za-z]))?\s*(?P<pct>%|percent\b|個百分點|个百分点)?",
    re.I,
)
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")
_MONTHS = {name[:3]: i for i, name in enumerate(_MONTH_NAMES, 1)}
# English dates ("Nov. 20") support the month a Chinese bullet writes as 11 月.
_MONTH_RE = re.compile(
    r"\b(" + "|".join(_MONTH_NAMES) + r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\b\.?", re.I
)
# Latin tokens: words, acronyms, model names (GPT-4o, Lumen-3, H100, v2.5).
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-.'’&][A-Za-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u9fff]")
# Generic tech acronyms that are vocabulary, not names: a writer may use them
# for 人工智慧 etc. without the source spelling them out.
GENERIC_TERMS = frozenset(
    s.casefold()
    for s in (
        "AI", "API", "APIs", "GPU", "GPUs", "CPU", "CPUs", "CEO", "CTO", "CFO", "COO", "IPO",
        "AGI", "LLM", "LLMs", "App", "Apps", "PC", "IT", "TV", "OS", "USB", "PDF", "URL", "OK",
        "SaaS", "AR", "VR", "IoT", "5G", "Wi-Fi", "ID",
    )
)


@lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """Canonical form for comparing: NFKC, then one Taiwan-Traditional spelling."""
    text = unicodedata.normalize("NFKC", text)
    return opencc_converter("s2twp").convert(opencc_converter("t2s").convert(text))


def _decimal(m: re.Match[str]) -> Decimal:
    try:
        return Decimal(m.group("int").replace(",", "") + (m.group("frac") or ""))
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        return Decimal(0)


def numbers(text: str) -> list[tuple[str, str, Decimal]]:
    """(as written, kind, value) for each number in normalised ``text``.

    kind is "%" for percentages, "x" for a number with a multiplier (value is
    the scaled amount), "n" for a bare number.
    """
    out = []
    for m in _NUMBER.finditer(text):
        raw = _decimal(m)
        if m.group("pct") or m.group("pct_pre"):
            out.append((m.group(0).strip(), "%", raw))
        elif m.group("mult"):
            out.append((m.group(0).strip(), "x", raw * _MULTIPLIERS[m.group("mult").lower()]))
        else:
            out.append((m.group(0).strip(), "n", raw))
    return out


def _source_values(text: str) -> set[tuple[str, Decimal]]:
    """Every value a source supports. Generous: a bare number also counts as itself."""
    vals: set[tuple[str, Decimal]] = set()
    for m in _NUMBER.finditer(text):
        raw = _decimal(m)
        vals.add(("n", raw))
        if m.group("pct") or m.group("pct_pre"):
            vals.add(("%", raw))
        if m.group("mult"):
            vals.add(("n", raw * _MULTIPLIERS[m.group("mult").lower()]))
    for m in _MONTH_RE.finditer(text):
        vals.add(("n", Decimal(_MONTHS[m.group(1).lower()[:3]])))
    return vals


def latin_names(text: str) -> list[str]:
    """Capitalised words and acronyms (anything with an upper-case letter), 2+ chars."""
    out = []
    for tok in _LATIN.findall(text):
        tok = tok.rstrip(".'’")
        if len(tok) >= 2 and any(c.isupper() for c in tok) and tok.casefold() not in GENERIC_TERMS:
            out.append(tok)
    return list(dict.fromkeys(out))


def _has_name(name: str, source: str) -> bool:
    pattern = rf"(?<![A-Za-z]){re.escape(name)}(?:s|es)?(?![A-Za-z])"
    return re.search(pattern, source, re.I) is not None


def unsupported(text: str, source_text: str, cjk_names: list[str]) -> list[str]:
    """The facts of ``text`` that ``source_text`` does not contain, as written in ``text``."""
    text_n, src_n = normalise(text), normalise(source_text)
    missing: list[str] = []
    names = latin_names(text_n)
    missing += [n for n in names if not _has_name(n, src_n)]
    # Numbers inside Latin tokens (Lumen-3, H100, GPT-4o) belong to the name, not the count.
    bare = _LATIN.sub(" ", text_n)
    values = _source_values(src_n)
    for written, kind, value in numbers(bare):
        ok = (("%", value) in values) if kind == "%" else (("n", value) in values)
        if not ok:
            missing.append(written)
    for name in cjk_names:
        n = normalise(name)
        if n and n in text_n and n not in src_n:
            missing.append(name)
    return list(dict.fromkeys(missing))


def item_text(item: Item) -> str:
    return "\n".join([item.title, item.summary, item.text, "、".join(item.entities)])


def _located_bullets(script: Script) -> list[tuple[str, Bullet]]:
    out = []
    for g in script.summary:
        out += [(f"{SUMMARY} › {g.title}", b) for b in g.bullets]
    for d in script.deep_dives:
        for g in d.subsections:
            out += [(f"{d.title} › {g.title}", b) for b in g.bullets]
    return out


def check_grounding(script: Script, sources: list[dict], items: list[Item]) -> list[str]:
    """One warning per bullet that states something its cited sources do not say,
    or cites a source number that does not exist. Empty when all is grounded."""
    by_id = {it.id: it for it in items}
    texts: dict[int, str] = {}
    for s in sources:
        it = by_id.get(s.get("item_id", ""))
        texts[int(s["n"])] = "\n".join([s.get("title", ""), item_text(it) if it else ""])
    cjk_names = list(dict.fromkeys(
        e for it in items for e in it.entities if _CJK.search(e)
    ))
    warnings: list[str] = []
    for where, b in _located_bullets(script):
        quote = b.text if len(b.text) <= 40 else b.text[:40] + "…"
        dangling = [r for r in b.refs if r not in texts]
        if dangling:
            refs = ", ".join(f"[{r}]" for r in dangling)
            warnings.append(f"grounding: {where}: 「{quote}」 cites {refs}, which is not in 資料來源")
        if not b.refs:
            warnings.append(f"grounding: {where}: 「{quote}」 cites no source")
        cited = "\n".join(texts[r] for r in b.refs if r in texts)
        missing = unsupported(b.text, cited, cjk_names)
        if missing:
            refs = "".join(f"[{r}]" for r in b.refs) or "(none)"
            warnings.append(
                f"grounding: {where}: 「{quote}」 states {', '.join(missing)}, "
                f"not found in its cited sources {refs}"
            )
    return warnings
