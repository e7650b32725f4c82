"""Transcript cues (from word timings or proportional splitting) and the sidecar files.

Cues are built per segment from where that segment really sits in the
assembled timeline, then made ordered and non-overlapping across the episode.
Writers (WebVTT, SRT, Podcasting 2.0 chapters JSON) all write atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from podcast.models import Chapter, Cue, MixResult, WordTiming
from podcast.util import atomic_open

MAX_LINE = 65
_SENTENCE_END = "。！？!?.；;"
# Break after Chinese punctuation anywhere, after English punctuation only before a space
# (so "3.5" and "e.g" stay whole).
_CLAUSE_BREAK = re.compile(r"(?<=[，。！？；：、…」』）])|(?<=[,.!?;:)])(?=\s)")


def _join(a: str, b: str) -> str:
    """Concatenate text pieces, with a space only between two Latin/digit runs."""
    if not a:
        return b
    if not b:
        return a
    if a[-1].isascii() and a[-1].isalnum() and b[0].isascii() and b[0].isalnum():
        return f"{a} {b}"
    if a[-1] in ",.!?;:" and b[0].isascii() and b[0].isalnum():
        return f"{a} {b}"
    return a + b


def _hard_split(text: str, limit: int) -> list[str]:
    """Split an over-long clause at spaces, else every ``limit`` characters."""
    out: list[str] = []
    cur = ""
    for word in re.split(r"(\s+)", text):
        if not word.strip():
            if cur:
                cur += " "
            continue
        while len(word) > limit:
            if cur.strip():
                out.append(cur.strip())
                cur = ""
            out.append(word[:limit])
            word = word[limit:]
        if len(cur) + len(word) > limit and cur.strip():
            out.append(cur.strip())
            cur = ""
        cur += word
    if cur.strip():
        out.append(cur.strip())
    return out


def split_text(text: str, limit: int = MAX_LINE) -> list[str]:
    """Cue-sized pieces of ``text`` (each ≤ ``limit`` characters), broken at punctuation."""
    clauses: list[str] = []
    for part in _CLAUSE_BREAK.split(" ".join(text.split())):
        part = part.strip()
        if part:
            clauses.extend(_hard_split(part, limit) if len(part) > limit else [part])
    pieces: list[str] = []
    cur = ""
    for clause in clauses:
        joined = _join(cur, clause)
        if cur and len(joined) > limit:
            pieces.append(cur)
            cur = clause
        else:
            cur = joined
        # End a cue at a sentence end once it is a comfortable length to read.
        if cur and cur[-1] in _SENTENCE_END and len(cur) >= 12:
            pieces.append(cur)
            cur = ""
    if cur:
        pieces.append(cur)
    return pieces


_NOT_SPOKEN = re.compile(r"[\W_]+")


def speaks_as_written(timings: list[WordTiming], text: str) -> bool:
    """Do the engine's timing labels spell the written text (punctuation and spaces aside)?

    They do not when the voice stage rewrote it before speaking (a lexicon reading,
    "2026" said as "二〇二六") and could not put the written clauses on the engine's
    timings (see podcast.voice.engines.label_as_written): then the transcript must show
    the written words, timed proportionally, not what the engine was fed."""
    said = _NOT_SPOKEN.sub("", "".join(t.text for t in timings)).casefold()
    return bool(said) and said == _NOT_SPOKEN.sub("", text).casefold()


def cues_from_timings(timings: list[WordTiming], offset_ms: int, lo: int, hi: int) -> list[Cue]:
    """Group word timings into cues; times shift by ``offset_ms`` and clamp to [lo, hi]."""
    cues: list[Cue] = []
    text, start, end = "", 0, 0

    def flush() -> None:
        nonlocal text
        if text.strip():
            cues.append(Cue(start, end, text.strip()))
        text = ""

    for w in sorted(timings, key=lambda w: w.start_ms):
        word = " ".join(w.text.split())
        if not word:
            continue
        ws = min(max(w.start_ms + offset_ms, lo), hi)
        we = min(max(w.end_ms + offset_ms, ws), hi)
        gap = ws - end
        if text and (len(_join(text, word)) > MAX_LINE or gap > 800):
            flush()
        if not text:
            start = ws
        if len(word) > MAX_LINE:  # a sentence-level "word": split it across its own span
            flush()
            cues.extend(cues_proportional(word, ws, we))
            end = we
            continue
        text = _join(text, word)
        end = we
        if text[-1] in _SENTENCE_END and len(text) >= 12:
            flush()
    flush()
    return cues


def cues_proportional(text: str, start_ms: int, end_ms: int) -> list[Cue]:
    """Split ``text`` into pieces timed in proportion to their length within the span."""
    pieces = split_text(text)
    if not pieces:
        return []
    weights = [max(1, len(re.sub(r"\s", "", p))) for p in pieces]
    total = sum(weights)
    span = max(0, end_ms - start_ms)
    cues: list[Cue] = []
    acc = 0
    for piece, w in zip(pieces, weights, strict=True):
        s = start_ms + span * acc // total
        acc += w
        e = start_ms + span * acc // total
        cues.append(Cue(s, e, piece))
    return cues


def tidy_cues(cues: list[Cue], duration_ms: int) -> list[Cue]:
    """Order cues, remove overlaps, keep them inside the audio; merge any squeezed to nothing."""
    out: list[Cue] = []
    for cue in sorted(cues, key=lambda c: c.start_ms):
        start = max(cue.start_ms, out[-1].end_ms if out else 0)
        end = min(cue.end_ms, duration_ms)
        if end <= start:
            if out:
                out[-1].text = f"{out[-1].text}\n{cue.text}"
            continue
        out.append(Cue(start, end, cue.text))
    return out


def _stamp(ms: int, sep: str) -> str:
    h, rest = divmod(int(ms), 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{milli:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_vtt(cues: list[Cue], path: Path) -> None:
    with atomic_open(Path(path)) as fh:
        fh.write("WEBVTT\n\n")
        for i, c in enumerate(cues, 1):
            text = _vtt_escape(c.text).replace("-->", "->")
            fh.write(f"{i}\n{_stamp(c.start_ms, '.')} --> {_stamp(c.end_ms, '.')}\n{text}\n\n")


def write_srt(cues: list[Cue], path: Path) -> None:
    with atomic_open(Path(path)) as fh:
        for i, c in enumerate(cues, 1):
            text = c.text.replace("-->", "->")
            fh.write(f"{i}\n{_stamp(c.start_ms, ',')} --> {_stamp(c.end_ms, ',')}\n{text}\n\n")


def chapters_json(chapters: list[Chapter]) -> dict:
    """The Podcasting 2.0 JSON chapters document (ascending startTime)."""
    items = [
        {"startTime": c.start_ms / 1000, "endTime": c.end_ms / 1000, "title": c.title}
        for c in sorted(chapters, key=lambda c: c.start_ms)
    ]
    return {"version": "1.2.0", "chapters": items}


def write_chapters_json(chapters: list[Chapter], path: Path) -> None:
    with atomic_open(Path(path)) as fh:
        json.dump(chapters_json(chapters), fh, ensure_ascii=False, indent=2)
        fh.write("\n")


def write_sidecars(result: MixResult, out_dir: Path) -> dict[str, Path]:
    """Write transcript.vtt, transcript.srt and chapters.json next to the MP3."""
    out_dir = Path(out_dir)
    paths = {
        "vtt": out_dir / "transcript.vtt",
        "srt": out_dir / "transcript.srt",
        "chapters": out_dir / "chapters.json",
    }
    write_vtt(result.cues, paths["vtt"])
    write_srt(result.cues, paths["srt"])
    write_chapters_json(result.chapters, paths["chapters"])
    return paths
