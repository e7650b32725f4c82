"""What the voice stage *would* do, without synthesizing anything.

    plan(segments, preset, show_dir) -> list[PlannedSegment]

Each segment gets the exact cache hash :func:`podcast.voice.voice` would use
(same text preparation, same engine name/version, same preset parameters), and
whether that hash is already in the segment cache. ``regenerate --dry-run``
uses it to list what would be re-synthesized.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import VoicePreset
from ..script import SpokenSegment
from . import load_lexicon
from .cache import lookup, segment_key
from .engines import VoiceEngine, get_engine
from .text import Lexicon


@dataclass(frozen=True)
class PlannedSegment:
    segment: SpokenSegment
    hash: str
    cached: bool


def plan(
    segments: list[SpokenSegment],
    preset: VoicePreset,
    show_dir: Path,
    *,
    engine_factory: Callable[[str], VoiceEngine] | None = None,
    lexicon: Lexicon | None = None,
) -> list[PlannedSegment]:
    """The voice stage's cache hash of every segment under ``preset``, and whether it is cached.

    Building the engine object is cheap (models load on the first synthesis), so
    this never loads a model; it raises PodcastError if the engine is unknown.
    """
    show_dir = Path(show_dir)
    engine = (engine_factory or get_engine)(preset.engine)
    lex = lexicon if lexicon is not None else load_lexicon(show_dir)
    out = []
    for seg in segments:
        _, digest = segment_key(seg.text, preset, engine, lex)
        out.append(PlannedSegment(seg, digest, lookup(show_dir, digest) is not None))
    return out
