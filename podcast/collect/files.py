"""Local files as sources: a plain .txt/.md article is one item.

Also the small helpers every collector shares: front matter, language
detection and the site name shown for an item.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import PodcastError
from ..models import Item
from ..util import opencc_converter
from .store import item_id

# Hosts whose display name is not just the host (what a listener would say).
_SITE_NAMES = {
    "techcrunch.com": "TechCrunch",
    "theverge.com": "The Verge",
    "arstechnica.com": "Ars Technica",
    "wired.com": "WIRED",
    "theguardian.com": "The Guardian",
    "reuters.com": "Reuters",
    "bloomberg.com": "Bloomberg",
    "nytimes.com": "The New York Times",
    "towardsdatascience.com": "Towards Data Science",
    "venturebeat.com": "VentureBeat",
    "engadget.com": "Engadget",
    "ithome.com.tw": "iThome",
    "technews.tw": "科技新報",
    "36kr.com": "36氪",
}


def site_name(url: str, fallback: str = "") -> str:
    host = urlsplit(url).hostname or ""
    host = host.removeprefix("www.")
    if not host:
        return fallback
    for known, name in _SITE_NAMES.items():
        if host == known or host.endswith("." + known):
            return name
    return host


_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str:
    """'en', 'zh-CN' or 'zh-TW', cheaply: Latin ratio, then which script's
    characters OpenCC would change (Traditional text changes under t2s only)."""
    sample = text[:4000]
    cjk = _CJK.findall(sample)
    latin = len(_LATIN.findall(sample))
    if not cjk or latin > 3 * len(cjk):
        return "en"
    chars = "".join(cjk)
    trad_only = sum(a != b for a, b in zip(chars, opencc_converter("t2s").convert(chars), strict=False))
    simp_only = sum(a != b for a, b in zip(chars, opencc_converter("s2t").convert(chars), strict=False))
    return "zh-CN" if simp_only > trad_only else "zh-TW"


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """A leading '---' block as flat ``key: value`` pairs (lists are skipped)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            break
    else:
        return {}, text
    meta: dict[str, str] = {}
    for line in lines[1:end]:
        if line[:1].isspace() or ":" not in line:
            continue  # nested YAML or list items: not needed here
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip().strip("\"'")
    return meta, "\n".join(lines[end + 1 :])


def parse_date(value: str) -> dt.datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PodcastError(f"{path}: file not found: check the path") from None
    except IsADirectoryError:
        raise PodcastError(f"{path}: is a folder, not a file: name a .md or .txt file") from None
    except OSError as exc:
        raise PodcastError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PodcastError(f"{path}: not UTF-8 text: save it as UTF-8") from None


_MD_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
_URL = re.compile(r"https?://[^\s)>\]]+")


def plain_markdown(text: str) -> str:
    """Drop the Markdown markup a listener should not hear."""
    text = _MD_LINK.sub(r"\1", text)
    text = re.sub(r"\*\*|__|`", "", text)
    return text


def read_plain(path: Path, text: str) -> Item:
    """One item per file: title from the first heading (or first line)."""
    meta, body = split_front_matter(text)
    lines = [ln.strip() for ln in body.splitlines()]
    title = meta.get("title", "")
    rest: list[str] = []
    for ln in lines:
        if not ln:
            rest.append("")
            continue
        if not title:
            title = ln.lstrip("#").strip()
            continue
        if ln.startswith("#"):
            ln = ln.lstrip("#").strip()
        rest.append(ln)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", "\n".join(rest)) if p.strip()]
    body_text = plain_markdown("\n".join(" ".join(p.split("\n")) for p in paragraphs))
    title = plain_markdown(title)
    if not title:
        raise PodcastError(f"{path}: empty file: nothing to collect")
    body_text = body_text or title
    url = meta.get("url", "") or meta.get("link", "")
    if not url:
        m = _URL.search(text)
        url = m.group(0) if m else ""
    published = parse_date(meta.get("date", ""))
    if published is None:
        published = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(microsecond=0)
    first_para = body_text.split("\n", 1)[0]
    return Item(
        id=item_id(url, title, body_text),
        url=url,
        title=title,
        text=body_text,
        source=site_name(url, path.name),
        summary=first_para,
        published=published,
        language=detect_language(title + "\n" + body_text),
        links=[url] if url else [],
    )
