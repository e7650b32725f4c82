"""Markdown news digests: front matter, '## ' sections, '### ' headlines.

A headline counts as news only when it has a **核心摘要** field; other
'### ' blocks (editor's notes, reading lists) are skipped. The same story
listed in two sections (same title or same first source URL) is one item.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import PodcastError
from ..models import Item
from .files import (
    _MD_LINK,
    _URL,
    detect_language,
    parse_date,
    plain_markdown,
    site_name,
    split_front_matter,
)
from .store import canonical_url, item_id

SUMMARY_FIELD = "核心摘要"
TEXT_FIELDS = (SUMMARY_FIELD, "技術細節", "應用場景")
_FIELD = re.compile(r"^\*\*([^*]+?)\*\*\s*[：:]?\s*(.*)$")
IMPORTANCE = {"高": 3.0, "中": 2.0, "低": 1.0}  # 重要性; the writer ranks by it too
# Sections that only collect the day's top stories: a story listed there and in
# a topical section belongs to the topical one.
_GENERIC_SECTION = re.compile(r"焦點|頭條|焦点|头条|top", re.I)


def no_headlines_error(path: Path | str) -> PodcastError:
    return PodcastError(f"{path}: no news headlines found (expected '### ' headlines with **核心摘要**)")


def looks_like_digest(text: str) -> bool:
    """Digest-shaped: headlines, or a front-matter document split into '## ' sections."""
    if SUMMARY_FIELD in text or re.search(r"^### ", text, re.M):
        return True
    meta, body = split_front_matter(text)
    return bool(meta) and bool(re.search(r"^## ", body, re.M))


def _clean_section(name: str) -> str:
    name = re.sub(r"[（(][^）)]*[）)]\s*$", "", name).strip()
    return plain_markdown(name)


def is_generic_section(name: str) -> bool:
    return bool(_GENERIC_SECTION.search(name))


def _split_list(value: str) -> list[str]:
    out = [v.strip() for v in re.split(r"[、，,；;]", plain_markdown(value))]
    return list(dict.fromkeys(v for v in out if v))


def _headline_blocks(body: str) -> list[tuple[str, str, list[str]]]:
    """(section, headline, body lines) for every '### ' block."""
    section = ""
    blocks: list[tuple[str, str, list[str]]] = []
    for raw in body.splitlines():
        line = raw.rstrip()
        if line.startswith("## "):
            section = _clean_section(line[3:])
            blocks.append(("", "", []))  # a new section ends the current headline
        elif line.startswith("### "):
            blocks.append((section, plain_markdown(line[4:].strip()), []))
        elif line.strip() == "---" or line.startswith("# "):
            blocks.append(("", "", []))
        elif blocks:
            blocks[-1][2].append(line)
    return [b for b in blocks if b[1]]


def _fields(lines: list[str]) -> dict[str, str]:
    fields: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        m = _FIELD.match(stripped)
        if m:
            current = m.group(1).strip().rstrip("：:")
            fields.setdefault(current, [])
            if m.group(2).strip():
                fields[current].append(m.group(2).strip())
        elif current and stripped and not re.fullmatch(r"_[^_]*_", stripped):
            fields[current].append(stripped)
    return {k: "\n".join(v).strip() for k, v in fields.items()}


def _links(value: str) -> list[str]:
    urls = [u for _, u in _MD_LINK.findall(value)] or _URL.findall(value)
    # Canonical form: the same page with and without utm_* is one source.
    return list(dict.fromkeys(canonical_url(u) for u in urls if u.startswith(("http://", "https://"))))


def _norm_title(title: str) -> str:
    return re.sub(r"[\W_]+", "", title).lower()


def parse_digest(text: str, path: Path | str) -> list[Item]:
    """All news headlines of a digest, deduplicated, in the order first listed."""
    meta, body = split_front_matter(text)
    published = parse_date(meta.get("date", ""))
    items: list[Item] = []
    by_key: dict[str, Item] = {}
    for section, title, lines in _headline_blocks(body):
        f = _fields(lines)
        summary = plain_markdown(f.get(SUMMARY_FIELD, "")).strip()
        if not summary:
            continue
        parts = [plain_markdown(f[k]).strip() for k in TEXT_FIELDS if f.get(k, "").strip()]
        item_text = "\n".join(parts)
        links = _links(f.get("來源", ""))
        url = links[0] if links else ""
        item = Item(
            id=item_id(url, title, item_text),
            url=url,
            title=title,
            text=item_text,
            source=site_name(url, Path(path).name),
            summary=summary,
            published=published,
            language=detect_language(title + "\n" + item_text),
            entities=_split_list(f.get("關鍵實體", "")),
            importance=f.get("重要性", "").strip()[:1] if f.get("重要性", "").strip()[:1] in IMPORTANCE else "",
            section=section,
            links=links,
        )
        keys = [f"t:{_norm_title(title)}"] + ([f"u:{canonical_url(url)}"] if url else [])
        known = next((by_key[k] for k in keys if k in by_key), None)
        if known is None:
            items.append(item)
            known = item
        else:
            _merge(known, item)
        for k in keys:
            by_key.setdefault(k, known)
    if not items:
        raise no_headlines_error(path)
    return items


def _merge(kept: Item, dup: Item) -> None:
    """Fold a second listing of a story into the first (text stays the first's)."""
    kept.links = list(dict.fromkeys([*kept.links, *dup.links]))
    kept.entities = list(dict.fromkeys([*kept.entities, *dup.entities]))
    if IMPORTANCE.get(dup.importance, 0) > IMPORTANCE.get(kept.importance, 0):
        kept.importance = dup.importance
    if is_generic_section(kept.section) and dup.section and not is_generic_section(dup.section):
        kept.section = dup.section
