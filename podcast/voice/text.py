"""Text preparation: what the narrator should *say* for a line of script text.

Runs before any engine and its output is part of the segment hash, so a
change to these rules re-synthesizes exactly the segments it affects. The
rules read numbers the way a Taiwanese tech host does (二〇二四年, 百分之三十,
十二億美元, H 一百), strip Markdown leftovers and apply the lexicon.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PodcastError

# ---------------------------------------------------------------- numbers

_DIGITS = "零一二三四五六七八九"
_YEAR_DIGITS = "〇一二三四五六七八九"
_SMALL_UNITS = ["", "十", "百", "千"]
_BIG_UNITS = ["", "萬", "億", "兆"]


def _four(n: int) -> str:
    """0 < n < 10000 → Chinese, with inner zeros collapsed (1005 → 一千零五)."""
    out = ""
    zero = False
    for pos in range(3, -1, -1):
        d = (n // 10**pos) % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[d] + _SMALL_UNITS[pos]
    return out


def int_to_chinese(n: int) -> str:
    """Read an integer: 7520 → 七千五百二十, 14800000000 → 一百四十八億, 2000 → 兩千."""
    if n < 0:
        return "負" + int_to_chinese(-n)
    if n == 0:
        return "零"
    if n >= 10**16:
        return digits_to_chinese(str(n))
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    need_zero = False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or g < 1000):
            out += "零"
        out += _four(g) + _BIG_UNITS[i]
        need_zero = False
    if out.startswith("一十"):  # 十五, not 一十五
        out = out[1:]
    # Taiwanese speech says 兩 before 百/千/萬/億 at the start: 兩千, 兩百億.
    if len(out) > 1 and out[0] == "二" and out[1] in "百千萬億兆":
        out = "兩" + out[1:]
    return out


def digits_to_chinese(s: str, zero: str = "零") -> str:
    table = zero + _DIGITS[1:]
    return "".join(table[int(c)] if c.isdigit() else c for c in s)


def number_to_chinese(s: str) -> str:
    """A decimal string (commas allowed): '7,520' → 七千五百二十, '4.5' → 四點五."""
    s = s.replace(",", "")
    neg = s.startswith("-")
    s = s.lstrip("-+")
    whole, _, frac = s.partition(".")
    out = int_to_chinese(int(whole or "0"))
    if frac:
        out += "點" + digits_to_chinese(frac)
    return ("負" if neg else "") + out


def year_to_chinese(s: str) -> str:
    return digits_to_chinese(s, zero="〇")


# ---------------------------------------------------------------- lexicon


@dataclass
class Lexicon:
    """Term → reading, e.g. NVIDIA → 輝達. Per-engine tables override ``terms``."""

    terms: dict[str, str] = field(default_factory=dict)
    engines: dict[str, dict[str, str]] = field(default_factory=dict)
    _patterns: dict[str, tuple[re.Pattern[str], dict[str, str]] | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PodcastError(f"{path}: lexicon not found; create it or remove the reference") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PodcastError(f"{path}: not valid TOML: {exc}") from None
        terms = data.get("terms", {})
        engines = data.get("engine", {})
        ok = isinstance(terms, dict) and isinstance(engines, dict)
        ok = ok and all(isinstance(v, str) for v in terms.values())
        ok = ok and all(
            isinstance(t, dict) and all(isinstance(v, str) for v in t.values()) for t in engines.values()
        )
        if not ok:
            raise PodcastError(
                f'{path}: expected [terms] and [engine.<name>] tables of "term" = "reading" strings'
            )
        return cls(terms=dict(terms), engines={k: dict(v) for k, v in engines.items()})

    def table(self, engine: str) -> dict[str, str]:
        return {**self.terms, **self.engines.get(engine, {})}

    def apply(self, text: str, engine: str) -> str:
        """Replace terms, longest first. All-caps terms (AI, GPU) match case-sensitively,
        others (OpenAI, iPhone) in any case; Latin terms never match inside a longer word."""
        if engine not in self._patterns:
            self._patterns[engine] = self._compile(self.table(engine))
        compiled = self._patterns[engine]
        if compiled is None:
            return text
        pattern, lookup = compiled

        def sub(m: re.Match[str]) -> str:
            word = m.group(0)
            return lookup.get(word) or lookup[word.casefold()]

        return pattern.sub(sub, text)

    @staticmethod
    def _compile(table: dict[str, str]) -> tuple[re.Pattern[str], dict[str, str]] | None:
        if not table:
            return None
        lookup: dict[str, str] = {}
        alts: list[str] = []
        for term in sorted(table, key=len, reverse=True):
            exact = term.upper() == term  # acronyms and CJK terms
            if exact:
                lookup[term] = table[term]
                body = re.escape(term)
            else:
                lookup.setdefault(term.casefold(), table[term])
                body = "(?i:" + re.escape(term) + ")"
            if re.match(r"[A-Za-z0-9]", term):
                body = r"(?<![A-Za-z])" + body
            if re.search(r"[A-Za-z0-9]$", term):
                body = body + r"(?![A-Za-z])"
            alts.append(body)
        return re.compile("|".join(alts)), lookup


# ---------------------------------------------------------------- markdown

_MD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"<[^>\n]+>"), ""),  # HTML tags
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images → alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links → text
    (re.compile(r"https?://\S+"), ""),  # bare URLs are not read aloud
    (re.compile(r"\[\d+(?:[,，\s]*\d+)*\]"), ""),  # citation markers [1][2]
    (re.compile(r"`+([^`]*)`+"), r"\1"),
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?!\w)"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+\.\s+)", re.M), ""),
    (re.compile(r"[*_#]{2,}"), ""),
]


def strip_markdown(text: str) -> str:
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return text


# ---------------------------------------------------------------- rules

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALE = {"K": 10**3, "k": 10**3, "M": 10**6, "B": 10**9, "bn": 10**9, "T": 10**12}
_CURRENCY_PREFIX = {"US$": "美元", "NT$": "新台幣", "HK$": "港幣", "$": "美元", "€": "歐元", "£": "英鎊", "¥": "日圓"}
# Units read in Chinese after a number; byte sizes stay as letters (a host says "十六 G B").
_UNITS = {
    "nm": "奈米", "mm": "毫米", "cm": "公分", "km": "公里", "m": "公尺",
    "kg": "公斤", "mg": "毫克", "g": "公克",
    "GHz": "吉赫", "MHz": "百萬赫", "kHz": "千赫", "Hz": "赫茲",
    "kWh": "度", "MWh": "百萬度", "GWh": "吉瓦時", "TWh": "兆瓦時",
    "kW": "千瓦", "MW": "百萬瓦", "GW": "吉瓦", "W": "瓦",
    "ms": "毫秒", "fps": "幀", "mAh": "毫安時",
    "TB": "TB", "GB": "GB", "MB": "MB", "KB": "KB", "Gbps": "Gbps", "Mbps": "Mbps",
}
_UNIT_RE = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))


def _scaled(num: str, scale: str) -> str:
    """'1.2', 'B' → 十二億 (1.2 billion read with Chinese big units)."""
    value = round(float(num.replace(",", "")) * _SCALE[scale])
    return int_to_chinese(value)


def _currency(m: re.Match[str]) -> str:
    prefix, num, scale = m.group("cur"), m.group("num"), m.group("scale")
    amount = _scaled(num, scale) if scale else number_to_chinese(num)
    name = _CURRENCY_PREFIX[prefix]
    if prefix == "NT$":
        return "新台幣" + amount + "元"
    return amount + name


def _model_number(m: re.Match[str]) -> str:
    """H100 → H 一百, GPT-5 → GPT 五, RTX 4090 → RTX 四零九零, GPT-4.5 → GPT 四點五."""
    letters, num, tail = m.group("name"), m.group("ver"), m.group("tail") or ""
    if "." in num or len(num) <= 3:
        spoken = number_to_chinese(num) if not num.startswith("0") else digits_to_chinese(num)
    else:
        spoken = digits_to_chinese(num)
    return f"{letters} {spoken}{(' ' + tail) if tail else ''} "


_RULES: list[tuple[re.Pattern[str], object]] = [
    # 2026/11/23, 2026-11-23, 2026.11.23
    (
        re.compile(r"(?<!\d)((?:19|20)\d\d)[/\-.](1[0-2]|0?[1-9])[/\-.](3[01]|[12]\d|0?[1-9])(?!\d)"),
        lambda m: f"{year_to_chinese(m[1])}年{int_to_chinese(int(m[2]))}月{int_to_chinese(int(m[3]))}日",
    ),
    # 2024 年 / 2024年 / 2024-2025年 (years read digit by digit)
    (
        re.compile(r"(?<![\d.,])((?:19|20)\d\d)(?:\s*[-–~至到]\s*((?:19|20)\d\d))?\s*年"),
        lambda m: year_to_chinese(m[1]) + ("到" + year_to_chinese(m[2]) if m[2] else "") + "年",
    ),
    # 11 月 23 日 → drop the spaces; numbers are read by the plain-number rule
    (re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*(日|號)"), lambda m: f"{int_to_chinese(int(m[1]))}月{int_to_chinese(int(m[2]))}{m[3]}"),
    (re.compile(r"(\d{1,2})\s*月(?!份?\s*\d)"), lambda m: f"{int_to_chinese(int(m[1]))}月"),
    # US$5, $1.2B, NT$300
    (
        re.compile(r"(?P<cur>US\$|NT\$|HK\$|\$|€|£|¥)\s?(?P<num>" + _NUM + r")(?:\s?(?P<scale>bn|[KkMBT])(?![A-Za-z]))?"),
        _currency,
    ),
    # 1.2B / 3M without a currency sign (e.g. "1.2B 參數")
    (
        re.compile(r"(?<![\w.])(?P<num>" + _NUM + r")\s?(?P<scale>bn|[KMB])(?![A-Za-z])"),
        lambda m: _scaled(m["num"], m["scale"]),
    ),
    # 30%, 4.5％, -2%
    (
        re.compile(r"(-?)(" + _NUM + r")\s*[%％]"),
        lambda m: ("負" if m[1] else "") + "百分之" + number_to_chinese(m[2]),
    ),
    # v2.1.3 and other dotted versions: read digit groups joined by 點
    (
        re.compile(r"(?<![\d.])(\d+(?:\.\d+){2,})"),
        lambda m: "點".join(number_to_chinese(p) for p in m[1].split(".")),
    ),
    # model names: H100, M4, GPT-5, GPT-4o, RTX 4090, Claude 3.5 (Latin word + version number)
    (
        re.compile(
            r"(?<![A-Za-z0-9])(?P<name>[A-Za-z]+)(?:-| )?(?P<ver>\d+(?:\.\d+)?)(?P<tail>[a-z](?![A-Za-z]))?"
            r"(?![\d%％]|,\d|\s*[萬億兆千百])(?!\s*(?:" + _UNIT_RE + r")(?![A-Za-z]))"
        ),
        _model_number,
    ),
    # 5 nm, 3GHz, 80 kWh
    (
        re.compile(r"(" + _NUM + r")\s*(" + _UNIT_RE + r")(?![A-Za-z])"),
        lambda m: number_to_chinese(m[1]) + _UNITS[m[2]],
    ),
    # plain numbers: 7,520 / 148 / 4.5 ; a space before 億/萬 is dropped
    (
        re.compile(r"(?<![\d.])(" + _NUM + r")\s*(?=[萬億兆])"),
        lambda m: number_to_chinese(m[1]),
    ),
    (re.compile(r"(?<![\d.])(" + _NUM + r")(?![\d])"), lambda m: number_to_chinese(m[1])),
]

_SPACES = re.compile(r"[ \t\u3000]+")
# Spaces between two CJK characters carry nothing for a narrator.
_CJK_SPACE = re.compile(r"(?<=[\u3400-\u9fff，。、！？：；「」（）])\s+(?=[\u3400-\u9fff，。、！？：；「」（）])")


def prepare(text: str, lexicon: Lexicon | None, engine: str) -> str:
    """The spoken form of ``text`` for ``engine`` (deterministic; part of the cache hash)."""
    text = strip_markdown(text)
    if lexicon is not None:
        text = lexicon.apply(text, engine)
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)  # type: ignore[arg-type]
    text = _SPACES.sub(" ", text)
    text = _CJK_SPACE.sub("", text)
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
