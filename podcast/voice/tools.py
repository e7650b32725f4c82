"""Voice utilities behind ``podcast say`` and ``podcast cache``.

    say(text, preset, show_dir, out) -> Path        audition a voice or a lexicon entry
    prune(show_dir) -> (removed_files, freed_bytes) drop segments (and their clause renders) no episode uses
    cache_stats(show_dir) -> CacheStats              what the segment cache holds
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import VoicePreset, load_preset, load_show
from ..errors import PodcastError
from ..publish.episodes import EPISODE_JSON, load_episode
from . import load_lexicon
from .cache import cache_dir, prune_cache, renders_of, segment_key, write_wav
from .engines import SEGMENT_ID, VoiceEngine, get_engine
from .renders import RENDER_SUFFIX, render_dir
from .text import Lexicon

SAY_DIR = Path(".cache") / "say"


def _resolve(preset: VoicePreset | str | None, show_dir: Path) -> VoicePreset:
    if isinstance(preset, VoicePreset):
        return preset
    name = preset or load_show(show_dir).voice.preset
    return load_preset(show_dir, name)


def say(
    text: str,
    preset: VoicePreset | str | None,
    show_dir: Path,
    out: Path | None = None,
    *,
    engine_factory: Callable[[str], VoiceEngine] | None = None,
    lexicon: Lexicon | None = None,
) -> Path:
    """Speak ``text`` the way the voice stage would (markdown, lexicon, numbers) and write it.

    ``preset`` is a VoicePreset, a preset name in voices/, or None for show.toml's
    voice. ``out`` ending in .mp3 is encoded with ffmpeg, anything else is a WAV;
    by default ``<show>/.cache/say/<hash>.wav``. No fallback voice: an audition
    should fail loudly. Returns the path written.
    """
    show_dir = Path(show_dir)
    if not text.strip():
        raise PodcastError("podcast say: the text is empty; pass the words to speak in quotes")
    chosen = _resolve(preset, show_dir)
    engine = (engine_factory or get_engine)(chosen.engine)
    lex = lexicon if lexicon is not None else load_lexicon(show_dir)
    spoken, digest = segment_key(text, chosen, engine, lex)  # the voice stage's own key
    if not spoken.strip():
        raise PodcastError(f"podcast say: nothing left to say in {text[:40]!r} after removing markup and links")
    token = SEGMENT_ID.set("say")
    try:
        audio, sr, _ = engine.synthesize(spoken, chosen)
    except PodcastError:
        raise
    except Exception as exc:
        raise PodcastError(f"podcast say: voice engine {chosen.engine!r} failed on {text[:40]!r}: {exc}; "
                           f"try another voice with --voice") from exc
    finally:
        SEGMENT_ID.reset(token)
    audio = engine.finish(audio, chosen)
    if out is None:
        out = show_dir / SAY_DIR / f"{digest[:16]}.wav"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".mp3":
        _write_mp3(out, audio, sr)
    else:
        write_wav(out, audio, sr)
    return out


def _write_mp3(path: Path, audio: np.ndarray, sr: int) -> None:
    from ..mix.ffmpeg import run_ffmpeg

    with tempfile.TemporaryDirectory(prefix="podcast-say-") as tmp:
        wav = Path(tmp) / "say.wav"
        write_wav(wav, audio, sr)
        part = path.with_name(f".{path.name}.tmp")
        try:
            run_ffmpeg(["-loglevel", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-q:a", "2",
                        "-f", "mp3", str(part)], what=f"encoding {path.name} (write a .wav instead)")
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        part.replace(path)


# ---------------------------------------------------------------- cache


@dataclass
class CacheStats:
    segments: int  # cached WAVs
    bytes: int  # WAVs + sidecars + clause renders
    referenced: int  # WAVs some episode uses
    unreferenced_bytes: int  # what prune would free
    say_files: int
    say_bytes: int
    renders: int = 0  # clause renders (see .renders)


def referenced_hashes(show_dir: Path) -> set[str]:
    """Segment hashes any episode folder uses, hidden ones too (a staging build or the
    previous version kept during a regenerate): prune must never break a rebuild."""
    keep: set[str] = set()
    episodes = Path(show_dir) / "episodes"
    if not episodes.is_dir():
        return keep
    for folder in episodes.iterdir():
        if (folder / EPISODE_JSON).is_file():
            keep.update(load_episode(folder).segment_hashes)  # a broken file stops the prune, named
    return keep


def _files(folder: Path) -> list[Path]:
    return [f for f in folder.iterdir() if f.is_file()] if folder.is_dir() else []


def cache_stats(show_dir: Path) -> CacheStats:
    keep = referenced_hashes(show_dir)
    files = _files(cache_dir(show_dir))
    wavs = [f for f in files if f.suffix == ".wav" and not f.name.startswith(".")]
    total = sum(f.stat().st_size for f in files)
    unref = sum(f.stat().st_size for f in files
                if f.suffix in (".wav", ".json") and not f.name.startswith(".") and f.stem not in keep)
    said = _files(Path(show_dir) / SAY_DIR)
    renders = [f for f in _files(render_dir(show_dir)) if f.suffix == RENDER_SUFFIX and not f.name.startswith(".")]
    kept = renders_of(show_dir, keep)
    unref += sum(f.stat().st_size for f in renders if f.stem not in kept)
    return CacheStats(len(wavs), total + sum(f.stat().st_size for f in renders), sum(f.stem in keep for f in wavs),
                      unref, len(said), sum(f.stat().st_size for f in said), len(renders))


def prune(show_dir: Path, wait: float = 0.0) -> tuple[int, int]:
    """Delete cached segments no episode's episode.json lists (with the clause renders only they
    use), and every ``say`` audition.

    Holds the show lock, so it never races a run that is voicing segments it has
    not recorded yet. Returns (files removed, bytes freed).
    """
    from ..lock import show_lock

    show_dir = Path(show_dir)
    with show_lock(show_dir, wait):
        removed, freed = prune_cache(show_dir, referenced_hashes(show_dir))
        for f in _files(show_dir / SAY_DIR):
            freed += f.stat().st_size
            f.unlink(missing_ok=True)
            removed += 1
    return removed, freed
