"""Small shared helpers: atomic writes, slugs, hashing."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temp file in the same folder, then rename over ``path``.

    A crash mid-write leaves the old file untouched (rename is atomic on POSIX).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        replace_atomic(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def replace_atomic(src: Path, dest: Path) -> None:
    """Move a finished temp file (made in dest's folder) into place.

    mkstemp makes 0600 files; published files must stay readable by a web
    server, so the temp file takes the old file's mode, or 0644.
    """
    try:
        mode = dest.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    os.chmod(src, mode)
    os.replace(src, dest)


_SLUG_MAX = 48


def slugify(title: str, fallback: str) -> str:
    """An ASCII, path-safe slug: Chinese becomes pinyin; never empty, ``.`` or ``..``.

    ``fallback`` (e.g. the episode date) is used when nothing usable remains.
    """
    # Imported here: pypinyin's dictionaries cost ~55 MB of RSS, and most importers of util
    # (the mix stage among them) never make a slug.
    from pypinyin import lazy_pinyin

    words: list[str] = []
    for chunk in lazy_pinyin(title, errors=lambda s: [s]):
        ascii_text = unicodedata.normalize("NFKD", chunk).encode("ascii", "ignore").decode()
        words.append(ascii_text.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", " ".join(words)).strip("-")
    if len(slug) > _SLUG_MAX:
        slug = slug[:_SLUG_MAX].rsplit("-", 1)[0] or slug[:_SLUG_MAX]
    slug = slug.strip("-")
    if not slug:
        slug = re.sub(r"[^a-z0-9]+", "-", fallback.lower()).strip("-") or "episode"
    return slug


def sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


_opencc_lock = threading.Lock()


def opencc_converter(config: str) -> Any:
    """One OpenCC converter per config ("s2twp", "t2s", …) per process: each loads dictionaries
    (≈60 ms). Locked: the voice stage's thread and the main thread may ask for one at once."""
    with _opencc_lock:
        return _opencc(config)


@functools.cache
def _opencc(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)
