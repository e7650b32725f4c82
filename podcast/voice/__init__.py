"""The voice stage: spoken segments → WAVs in the segment cache.

    voice(segments, preset, show_dir) -> list[VoicedSegment]

Each segment's text is prepared (numbers, lexicon; :mod:`.text`), hashed with
the engine and its parameters, and synthesized only when the cache lacks
that hash. If the preset's engine fails on a segment, the segment is retried
with the preset named by ``preset.fallback``; segments already done stay in
the cache, so a rerun picks up where a failed one stopped.

Engines with ``synthesize_many`` (edge-tts) get the uncached segments of a
window of ``BATCH_WINDOW × limit`` segments at once, at most ``limit``
requests in flight (``preset.concurrency``, default 4); a segment that fails
in the batch falls back alone, and results and progress stay in script order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PodcastError
from ..models import VoicedSegment
from .cache import cache_dir, lookup, segment_key, store
from .engines import SEGMENT_ID, FunctionEngine, Synthesis, VoiceEngine, get_engine, label_as_written
from .renders import RENDERS, RenderCache, render_dir
from .text import Lexicon

if TYPE_CHECKING:  # annotations only: the voice worker process does without pydantic
    from ..config import VoicePreset
    from ..script import SpokenSegment

__all__ = ["FunctionEngine", "VoiceEngine", "get_engine", "load_lexicon", "voice"]

log = logging.getLogger("podcast.voice")

LEXICON_FILE = Path("voices") / "lexicon.toml"
DEFAULT_CONCURRENCY = 4
BATCH_WINDOW = 4  # batch this many × limit segments at a time, so progress moves during long runs

Ready = Synthesis | BaseException


def load_lexicon(show_dir: Path) -> Lexicon:
    """``<show>/voices/lexicon.toml`` if the show has one, else an empty lexicon."""
    path = Path(show_dir) / LEXICON_FILE
    return Lexicon.load(path) if path.is_file() else Lexicon()


class _Voicer:
    def __init__(self, show_dir: Path, lexicon: Lexicon,
                 engine_factory: Callable[[str], VoiceEngine]) -> None:
        self.show_dir = show_dir
        self.lexicon = lexicon
        self.factory = engine_factory
        self.engines: dict[str, VoiceEngine | PodcastError] = {}
        self.retried: dict[str, int] = {}  # segment id → requests retried for it
        self.keys: dict[tuple[str, int], tuple[VoiceEngine, str, str]] = {}

    def engine(self, name: str) -> VoiceEngine:
        if name not in self.engines:
            try:
                self.engines[name] = self.factory(name)
            except PodcastError as exc:
                self.engines[name] = exc  # don't rebuild a missing engine for every segment
        got = self.engines[name]
        if isinstance(got, PodcastError):
            raise got
        return got

    def key(self, seg: SpokenSegment, preset: VoicePreset) -> tuple[VoiceEngine, str, str]:
        """The engine, the spoken text and the cache hash of ``seg`` under ``preset``
        (memoized: batch() and one() both need it)."""
        k = (seg.text, id(preset))
        if k not in self.keys:
            engine = self.engine(preset.engine)
            self.keys[k] = (engine, *segment_key(seg.text, preset, engine, self.lexicon))
        return self.keys[k]

    def batch(self, segments: list[SpokenSegment], preset: VoicePreset, limit: int) -> dict[str, Ready]:
        """Synthesize the uncached segments together if the engine batches: hash → result or error."""
        try:
            engine = self.engine(preset.engine)
        except PodcastError:
            return {}  # one() reports it per segment (and falls back)
        many = getattr(engine, "synthesize_many", None)
        if many is None:
            return {}
        todo: dict[str, tuple[str, str]] = {}  # hash → (spoken text, first segment id); dedupes repeats
        for seg in segments:
            _, spoken, digest = self.key(seg, preset)
            # Existence only: one() reads the cached entry (header, timings) once, afterwards.
            if spoken.strip() and digest not in todo and not (cache_dir(self.show_dir) / f"{digest}.wav").is_file():
                todo[digest] = (spoken, seg.id)
        if not todo:
            return {}
        retries: list[int] = []
        texts = [spoken for spoken, _ in todo.values()]
        try:
            results = many(texts, preset, limit, return_exceptions=True, retries=retries)
        except Exception as exc:  # the whole batch broke (bad preset, no ffmpeg): each segment gets it
            results = [exc] * len(texts)
        retries += [0] * (len(texts) - len(retries))
        for (_, sid), n in zip(todo.values(), retries, strict=True):
            self.retried[sid] = n
        return dict(zip(todo, results, strict=True))

    def one(self, seg: SpokenSegment, preset: VoicePreset,
            ready: dict[str, Ready] | None = None) -> VoicedSegment:
        engine, spoken, digest = self.key(seg, preset)
        hit = lookup(self.show_dir, digest)
        if hit is not None:
            path, duration, timings = hit
            return VoicedSegment(seg.id, seg.chapter, seg.text, seg.pause_ms, path, duration, digest,
                                 engine.name, cached=True, timings=label_as_written(seg.text, timings))
        used: list[str] = []  # clause renders the synthesis drew on (see .renders)
        got = (ready or {}).get(digest)
        if isinstance(got, BaseException):
            raise got
        if got is not None:
            audio, sr, timings = got
        elif not spoken.strip():
            audio, sr, timings = np.zeros(0, np.float32), engine.sample_rate, []
        else:
            token = SEGMENT_ID.set(seg.id)
            renders = RenderCache(render_dir(self.show_dir))
            token_r = RENDERS.set(renders)
            try:
                audio, sr, timings = engine.synthesize(spoken, preset)
            finally:
                RENDERS.reset(token_r)
                SEGMENT_ID.reset(token)
            used = renders.used
        audio = engine.finish(audio, preset)
        path, duration = store(self.show_dir, digest, audio, sr, engine.name, timings, renders=used)
        return VoicedSegment(seg.id, seg.chapter, seg.text, seg.pause_ms, path, duration, digest,
                             engine.name, timings=label_as_written(seg.text, timings))


def voice(
    segments: list[SpokenSegment],
    preset: VoicePreset,
    show_dir: Path,
    *,
    presets: Callable[[str], VoicePreset] | None = None,
    progress: Callable[[int, int, VoicedSegment], None] | None = None,
    engine_factory: Callable[[str], VoiceEngine] | None = None,
    lexicon: Lexicon | None = None,
) -> list[VoicedSegment]:
    """Synthesize (or fetch from cache) every segment; see the module docstring."""
    show_dir = Path(show_dir)
    voicer = _Voicer(show_dir, lexicon if lexicon is not None else load_lexicon(show_dir),
                     engine_factory or get_engine)
    fallback: VoicePreset | None = None
    out: list[VoicedSegment] = []
    limit = preset.concurrency or DEFAULT_CONCURRENCY
    ready: dict[str, Ready] = {}
    window = limit * BATCH_WINDOW
    for i, seg in enumerate(segments, 1):
        if (i - 1) % window == 0:
            ready = voicer.batch(segments[i - 1:i - 1 + window], preset, limit)
        try:
            done = voicer.one(seg, preset, ready)
        except Exception as exc:  # any engine failure: try the fallback voice for this segment
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not preset.fallback or presets is None:
                raise PodcastError(
                    f"segment {seg.id} ({seg.text[:40]!r}): voice engine {preset.engine!r} failed: {reason}; "
                    f"fix the text in script.md or set a fallback voice in voices/{preset.name or preset.engine}.toml"
                ) from exc
            if fallback is None:
                fallback = presets(preset.fallback)
            log.warning("segment %s: engine %s failed (%s); using fallback voice %s",
                        seg.id, preset.engine, reason, preset.fallback)
            try:
                done = voicer.one(seg, fallback)
            except Exception as exc2:
                raise PodcastError(
                    f"segment {seg.id} ({seg.text[:40]!r}): voice engine {preset.engine!r} failed ({reason}) "
                    f"and fallback {preset.fallback!r} failed too: {exc2}"
                ) from exc2
            done.fell_back = True
        done.retries = voicer.retried.get(seg.id, 0)
        out.append(done)
        if progress is not None:
            progress(i, len(segments), done)
    return out
