"""script.md: the editable source of truth of an episode.

The data model is plain dataclasses; :func:`render` and :func:`parse` convert
between it and Markdown, losslessly for any script the tool writes
(``render(parse(text)) == text``). The layout follows the reference post:

    ---
    episode: 1
    title: 標題
    date: 2026-06-13
    ---

    ## 開場

    段落……

    ## 快速重點摘要

    ### 1. 主題

    - 重點……[1][2]

    ## <deep-dive title>          (two or more)

    ### 1. 小節

    - 重點……[1]

    ## 資料來源

    1. [標題](https://example.com/a)

    ## 結尾

    段落……

    ## 聲明

    請注意，內容由 AI 產生……

:func:`spoken_segments` turns a script into the units that are voiced: one per
paragraph, heading and bullet, so editing one bullet re-voices one segment.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .errors import PodcastError

INTRO = "開場"
SUMMARY = "快速重點摘要"
SOURCES = "資料來源"
OUTRO = "結尾"
DISCLAIMER = "聲明"
FIXED_SECTIONS = (INTRO, SUMMARY, SOURCES, OUTRO, DISCLAIMER)

_REFS_RE = re.compile(r"((?:\[\d+\])+)$")
_NUM_HEADING_RE = re.compile(r"^(\d+)\.\s+(.*)$")
_SOURCE_RE = re.compile(r"^(\d+)\.\s+\[((?:[^\]\\]|\\.)*)\]\((\S*)\)$")
CHINESE_NUMERALS = "一二三四五六七八九十"


def _one_line(value: str, what: str) -> str:
    # splitlines() (used by parse) also breaks on \x0b \x0c \x1c-\x1e \x85 \u2028 \u2029.
    if len((value + "x").splitlines()) > 1:
        raise ValueError(f"{what} must be a single line: {value!r}")
    if value != value.strip():
        raise ValueError(f"{what} must not start or end with spaces: {value!r}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


@dataclass
class Bullet:
    """One claim, with the 1-based numbers of the sources it came from."""

    text: str
    refs: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        _one_line(self.text, "bullet text")
        if _REFS_RE.search(self.text):
            raise ValueError(f"bullet text must not end in a [n] reference: {self.text!r}")
        if self.text.startswith(("- ", "#")):
            raise ValueError(f"bullet text must not start with markup: {self.text!r}")


@dataclass
class Group:
    """A theme of 快速重點摘要, or a numbered subsection of a deep dive."""

    title: str
    bullets: list[Bullet] = field(default_factory=list)

    def __post_init__(self) -> None:
        _one_line(self.title, "heading")


@dataclass
class DeepDive:
    title: str
    subsections: list[Group] = field(default_factory=list)

    def __post_init__(self) -> None:
        _one_line(self.title, "deep-dive title")
        if self.title in FIXED_SECTIONS:
            raise ValueError(f"a deep dive cannot be called {self.title!r}")


def _escape_link_text(text: str) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def _unescape_link_text(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@dataclass
class SourceRef:
    """Entry ``n`` of 資料來源. The URL is kept Markdown-safe (no spaces or parens)."""

    n: int
    title: str
    url: str

    def __post_init__(self) -> None:
        _one_line(self.title, "source title")
        self.url = quote(self.url.strip(), safe=":/?#[]@!$&'*+,;=%~-._")


@dataclass
class Script:
    episode: int
    title: str
    date: dt.date
    intro: list[str]
    summary: list[Group]
    deep_dives: list[DeepDive]
    sources: list[SourceRef]
    outro: list[str]
    disclaimer: list[str]

    def __post_init__(self) -> None:
        _one_line(self.title, "title")
        for para in [*self.intro, *self.outro, *self.disclaimer]:
            _one_line(para, "paragraph")
            if para.startswith(("#", "- ", "---")) or _NUM_HEADING_RE.match(para):
                raise ValueError(f"paragraph must not start with markup: {para!r}")

    def bullets(self) -> list[Bullet]:
        out = [b for g in self.summary for b in g.bullets]
        out += [b for d in self.deep_dives for g in d.subsections for b in g.bullets]
        return out


# --------------------------------------------------------------------------- render


def render(script: Script) -> str:
    lines: list[str] = [
        "---",
        f"episode: {script.episode}",
        f"title: {script.title}",
        f"date: {script.date.isoformat()}",
        "---",
    ]

    def block(*new: str) -> None:
        lines.append("")
        lines.extend(new)

    def groups(gs: list[Group]) -> None:
        for i, g in enumerate(gs, 1):
            block(f"### {i}. {g.title}")
            if g.bullets:
                block(*(f"- {b.text}{''.join(f'[{r}]' for r in b.refs)}" for b in g.bullets))

    def paragraphs(heading: str, paras: list[str]) -> None:
        block(f"## {heading}")
        for p in paras:
            block(p)

    paragraphs(INTRO, script.intro)
    block(f"## {SUMMARY}")
    groups(script.summary)
    for dd in script.deep_dives:
        block(f"## {dd.title}")
        groups(dd.subsections)
    block(f"## {SOURCES}")
    if script.sources:
        block(*(f"{s.n}. [{_escape_link_text(s.title)}]({s.url})" for s in script.sources))
    paragraphs(OUTRO, script.outro)
    paragraphs(DISCLAIMER, script.disclaimer)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- parse


class ScriptParseError(PodcastError):
    def __init__(self, where: str, line: int, message: str) -> None:
        super().__init__(f"{where}:{line}: {message}")
        self.line = line


def parse(text: str, where: str = "script.md") -> Script:
    """Parse script.md. Errors name the file and line; nothing is guessed silently."""
    lines = text.splitlines()

    def fail(lineno: int, msg: str) -> ScriptParseError:
        return ScriptParseError(where, lineno, msg)

    if not lines or lines[0].strip() != "---":
        raise fail(1, "script must start with a '---' front-matter block")
    meta: dict[str, str] = {}
    i = 1
    while i < len(lines) and lines[i].strip() != "---":
        key, sep, value = lines[i].partition(":")
        if not sep:
            raise fail(i + 1, f"front matter line is not 'key: value': {lines[i]!r}")
        key = key.strip()
        if key not in ("episode", "title", "date"):
            raise fail(i + 1, f"unknown front-matter key {key!r} (expected episode, title, date)")
        meta[key] = value.strip()
        i += 1
    if i >= len(lines):
        raise fail(len(lines), "front matter is not closed with '---'")
    for key in ("episode", "title", "date"):
        if key not in meta or not meta[key]:
            raise fail(1, f"front matter is missing {key!r}")
    try:
        episode = int(meta["episode"])
        date = dt.date.fromisoformat(meta["date"])
    except ValueError as exc:
        raise fail(1, f"bad front matter: {exc}") from None

    # Split the body into (heading line number, heading, [(lineno, line), ...]).
    sections: list[tuple[int, str, list[tuple[int, str]]]] = []
    for j in range(i + 1, len(lines)):
        line = lines[j].rstrip()
        if line.startswith("## "):
            sections.append((j + 1, line[3:].strip(), []))
        elif line.strip():
            if not sections:
                raise fail(j + 1, "text before the first '## ' section")
            sections[-1][2].append((j + 1, line))

    def paras(body: list[tuple[int, str]]) -> list[str]:
        out = []
        for lineno, line in body:
            if line.startswith("#"):
                raise fail(lineno, f"unexpected heading here: {line!r}")
            out.append(line.strip())
        return out

    def groups(body: list[tuple[int, str]], kind: str) -> list[Group]:
        out: list[Group] = []
        for lineno, line in body:
            if line.startswith("### "):
                title = line[4:].strip()
                m = _NUM_HEADING_RE.match(title)
                out.append(Group(title=(m.group(2) if m else title).strip()))
            elif line.lstrip().startswith(("- ", "* ")):
                if not out:
                    raise fail(lineno, f"bullet before the first '### ' heading in {kind}")
                content = line.lstrip()[2:].strip()
                m = _REFS_RE.search(content)
                refs = [int(r) for r in re.findall(r"\[(\d+)\]", m.group(1))] if m else []
                body_text = content[: m.start()].rstrip() if m else content
                if not body_text:
                    raise fail(lineno, "empty bullet")
                out[-1].bullets.append(Bullet(text=body_text, refs=refs))
            else:
                raise fail(lineno, f"expected '### heading' or '- bullet' in {kind}: {line!r}")
        return out

    found: dict[str, list[tuple[int, str]]] = {}
    deep_dives: list[DeepDive] = []
    for lineno, heading, body in sections:
        if heading in FIXED_SECTIONS:
            if heading in found:
                raise fail(lineno, f"section '## {heading}' appears twice")
            found[heading] = body
        else:
            deep_dives.append(DeepDive(title=heading, subsections=groups(body, heading)))
    for name in FIXED_SECTIONS:
        if name not in found:
            raise fail(len(lines), f"missing section '## {name}'")

    sources: list[SourceRef] = []
    for lineno, line in found[SOURCES]:
        m = _SOURCE_RE.match(line.strip())
        if not m:
            raise fail(lineno, f"source must look like '1. [title](url)': {line!r}")
        sources.append(SourceRef(int(m.group(1)), _unescape_link_text(m.group(2)), m.group(3)))

    try:
        script = Script(
            episode=episode,
            title=meta["title"],
            date=date,
            intro=paras(found[INTRO]),
            summary=groups(found[SUMMARY], SUMMARY),
            deep_dives=deep_dives,
            sources=sources,
            outro=paras(found[OUTRO]),
            disclaimer=paras(found[DISCLAIMER]),
        )
    except ValueError as exc:
        raise fail(1, str(exc)) from None
    known = {s.n for s in sources}
    for b in script.bullets():
        missing = [r for r in b.refs if r not in known]
        if missing:
            line = next((n for n, ln in enumerate(lines, 1) if b.text in ln), 1)
            raise fail(line, f"bullet cites source {missing[0]}, which is not in 資料來源")
    return script


# --------------------------------------------------------------------------- spoken form


@dataclass(frozen=True)
class SpokenSegment:
    """One unit of narration: what is said, the chapter it belongs to, the pause after it."""

    id: str
    chapter: str
    text: str
    pause_ms: int


@dataclass(frozen=True)
class Pauses:
    """Silence after a segment, by what ends there (``[audio]`` in show.toml sets them)."""

    bullet_ms: int = 350  # after a bullet, or a paragraph of the intro or outro
    heading_ms: int = 600  # after a heading: the summary's, a group's, a deep dive's or its part's
    section_ms: int = 1200  # after the last segment of 開場, 快速重點摘要 and each deep dive


def chinese_ordinal(n: int) -> str:
    if 1 <= n <= 10:
        return CHINESE_NUMERALS[n - 1]
    if n < 20:
        return "十" + CHINESE_NUMERALS[n - 11]
    return str(n)


def _end(text: str) -> str:
    return text if text[-1:] in "。！？!?…" else text + "。"


def spoken_segments(script: Script, pauses: Pauses | None = None) -> list[SpokenSegment]:
    """The script as narrated, in order. Source numbers are not read out."""
    pauses = pauses or Pauses()
    segs: list[SpokenSegment] = []

    def add(seg_id: str, chapter: str, text: str, pause: int) -> None:
        segs.append(SpokenSegment(seg_id, chapter, text, pause))

    def close_chapter() -> None:
        last = segs[-1]
        segs[-1] = SpokenSegment(last.id, last.chapter, last.text, pauses.section_ms)

    for k, p in enumerate(script.intro, 1):
        add(f"intro-{k}", INTRO, p, pauses.bullet_ms)
    close_chapter()

    add("summary", SUMMARY, f"首先是今天的{SUMMARY}。", pauses.heading_ms)
    for gi, g in enumerate(script.summary, 1):
        add(f"summary-{gi}", SUMMARY, f"第{chinese_ordinal(gi)}，{_end(g.title)}", pauses.heading_ms)
        for bi, b in enumerate(g.bullets, 1):
            add(f"summary-{gi}-{bi}", SUMMARY, b.text, pauses.bullet_ms)
    close_chapter()

    for di, dd in enumerate(script.deep_dives, 1):
        add(f"deep{di}", dd.title, f"接下來深入解析：{_end(dd.title)}", pauses.heading_ms)
        for si, sub in enumerate(dd.subsections, 1):
            add(f"deep{di}-{si}", dd.title, f"{chinese_ordinal(si)}、{_end(sub.title)}", pauses.heading_ms)
            for bi, b in enumerate(sub.bullets, 1):
                add(f"deep{di}-{si}-{bi}", dd.title, b.text, pauses.bullet_ms)
        close_chapter()

    for k, p in enumerate([*script.outro, *script.disclaimer], 1):
        add(f"outro-{k}", OUTRO, p, pauses.bullet_ms)
    return segs


def chapter_titles(script: Script) -> list[str]:
    """Chapters in order: 開場, 快速重點摘要, each deep dive, 結尾."""
    return [INTRO, SUMMARY, *(d.title for d in script.deep_dives), OUTRO]


def read_script(folder: Path) -> Script:
    """``folder/script.md``, parsed; PodcastError naming the file if it cannot be read or parsed."""
    path = Path(folder) / "script.md"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PodcastError(f"{path}: cannot be read ({exc}); restore it from script.md.*.bak or git") from None
    return parse(text, where=str(path))
