"""Plain data passed between pipeline stages.

collect → list[Item] → write → Script (podcast.script) → voice →
list[VoicedSegment] → mix → MixResult → publish. Each stage also leaves its
output in the episode folder, which is the real hand-off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Item:
    """One news item, whatever it came from (feed entry, page, digest headline, file)."""

    id: str
    url: str
    title: str
    text: str
    source: str
    summary: str = ""
    published: dt.datetime | None = None
    language: str = "zh-TW"
    entities: list[str] = field(default_factory=list)
    importance: str = ""  # 高 / 中 / 低 from a digest, else ""
    section: str = ""
    links: list[str] = field(default_factory=list)


@dataclass
class WordTiming:
    """A word or sentence boundary inside one synthesized segment (ms from its start)."""

    start_ms: int
    end_ms: int
    text: str


@dataclass
class VoicedSegment:
    """A spoken segment with its audio on disk (a WAV in the segment cache)."""

    id: str
    chapter: str
    text: str
    pause_ms: int
    audio: Path
    duration_ms: int
    hash: str
    engine: str
    cached: bool = False
    fell_back: bool = False
    timings: list[WordTiming] = field(default_factory=list)
    retries: int = 0  # requests the engine had to retry (network engines)


@dataclass
class Chapter:
    title: str
    start_ms: int
    end_ms: int


@dataclass
class Cue:
    start_ms: int
    end_ms: int
    text: str


@dataclass
class MixResult:
    path: Path
    duration_ms: int
    bytes: int
    chapters: list[Chapter]
    cues: list[Cue]
    loudness_lufs: float | None = None
    true_peak_db: float | None = None
