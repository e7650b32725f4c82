"""The segment cache: ``<show>/.cache/segments/<hash>.wav`` plus a ``.json`` sidecar.

The hash covers everything that changes the audio, so an edited bullet
re-synthesizes only its own segment. Writes go through a temp file and a
rename, so two runs sharing a cache never see half a WAV.
"""

from __future__ import annotations

import json
import wave
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..models import WordTiming
from ..util import atomic_open, sha256_text, write_text_atomic
from .engines import VoiceEngine
from .renders import prune_files, prune_renders
from .text import Lexicon, prepare

if TYPE_CHECKING:  # annotations only: the voice worker process does without pydantic
    from ..config import VoicePreset


def cache_dir(show_dir: Path) -> Path:
    return Path(show_dir) / ".cache" / "segments"


def segment_key(text: str, preset: VoicePreset, engine: VoiceEngine, lexicon: Lexicon) -> tuple[str, str]:
    """(what the engine is given to say, the cache hash) of a segment's written text under
    ``preset``: the one definition the voice stage and ``regenerate --dry-run`` share."""
    spoken = prepare(text, lexicon, engine.name)
    return spoken, segment_hash(spoken, engine.name, preset.voice, preset.rate, preset.pitch, preset.volume,
                                engine.version)


def segment_hash(text: str, engine: str, voice: str, rate: float, pitch: float, volume: float,
                 engine_version: str) -> str:
    return sha256_text(text, engine, voice, repr(float(rate)), repr(float(pitch)), repr(float(volume)),
                       engine_version)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> int:
    """Mono 16-bit PCM, atomically; returns the duration in ms."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_open(path, "wb") as fh, wave.open(fh, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return round(len(pcm) * 1000 / sample_rate)


def wav_duration_ms(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        return round(w.getnframes() * 1000 / w.getframerate())


def store(show_dir: Path, digest: str, audio: np.ndarray, sample_rate: int, engine: str,
          timings: list[WordTiming], renders: list[str] | None = None) -> tuple[Path, int]:
    """Cache a segment; ``renders`` are the clause renders it was built from (kept with it by prune)."""
    path = cache_dir(show_dir) / f"{digest}.wav"
    duration = write_wav(path, audio, sample_rate)
    meta = {"engine": engine, "duration_ms": duration, "timings": [asdict(t) for t in timings],
            "renders": sorted(set(renders or []))}
    write_text_atomic(path.with_suffix(".json"), json.dumps(meta, ensure_ascii=False))
    return path, duration


def lookup(show_dir: Path, digest: str) -> tuple[Path, int, list[WordTiming]] | None:
    """The cached WAV, its duration and timings, or None (a broken entry counts as missing)."""
    path = cache_dir(show_dir) / f"{digest}.wav"
    if not path.is_file():
        return None
    try:
        duration = wav_duration_ms(path)
    except (wave.Error, EOFError, OSError):
        return None
    timings: list[WordTiming] = []
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        timings = [WordTiming(**t) for t in meta.get("timings", [])]
    except (OSError, ValueError, TypeError):
        pass  # timings are a nicety; the audio is what matters
    return path, duration, timings


def renders_of(show_dir: Path, hashes: set[str]) -> set[str]:
    """The clause renders (see .renders) the cached segments ``hashes`` were built from."""
    keys: set[str] = set()
    for digest in hashes:
        try:
            meta = json.loads((cache_dir(show_dir) / f"{digest}.json").read_text(encoding="utf-8"))
            keys.update(k for k in meta.get("renders", []) if isinstance(k, str))
        except (OSError, ValueError, AttributeError):
            continue  # no sidecar: nothing of it to keep
    return keys


def prune_cache(show_dir: Path, keep: set[str]) -> tuple[int, int]:
    """Delete cached segments (WAV and sidecar) whose hash is not in ``keep``, and the
    clause renders only they were built from; returns (files removed, bytes freed).
    Temp files younger than an hour may belong to a run in progress and stay."""
    r_removed, r_freed = prune_renders(show_dir, renders_of(show_dir, keep))
    removed, freed = prune_files(cache_dir(show_dir), keep, (".wav", ".json"))
    return removed + r_removed, freed + r_freed
