"""episode.json: what publish needs to know about an episode besides its script.

The GUID is assigned once when the episode is first made and never changes:
podcast apps use it to tell a re-published episode from a new one.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import PodcastError
from ..util import write_text_atomic

log = logging.getLogger(__name__)

EPISODE_JSON = "episode.json"
AUDIO_FILE = "episode.mp3"
FOLDER_RE = re.compile(r"^ep(\d{4})-(.+)$")  # number, slug; a renamed folder still counts


class EpisodeMeta(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    guid: Annotated[str, Field(min_length=1)]
    number: Annotated[int, Field(ge=0)]
    title: Annotated[str, Field(min_length=1)]
    slug: str
    folder: str
    pub_date: dt.datetime
    duration_s: Annotated[float, Field(ge=0)]
    bytes: Annotated[int, Field(ge=0)] = 0
    segment_hashes: list[str] = []
    revision: Annotated[int, Field(ge=1)] = 1
    generated_at: dt.datetime
    voice: str = ""
    writer: str = ""
    warnings: list[str] = []
    summary: str = ""

    @field_validator("pub_date", "generated_at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("must carry a timezone offset, e.g. 2026-06-13T07:00:00+08:00")
        return v

    @field_validator("folder")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        # The folder name ends up in URLs and paths: never let it climb out of episodes/.
        if not v or "/" in v or "\\" in v or v in (".", "..") or v.startswith("."):
            raise ValueError(f"must be a plain folder name, got {v!r}")
        return v


def episode_folder_name(number: int, slug: str) -> str:
    return f"ep{number:04d}-{slug}"


def episode_folders(episodes_dir: Path) -> list[Path]:
    """Every ``ep####-*`` folder in ``episodes_dir`` by name (hidden staging copies are not)."""
    d = Path(episodes_dir)
    return sorted(p for p in d.iterdir() if p.is_dir() and FOLDER_RE.match(p.name)) if d.is_dir() else []


def folder_number(folder: Path) -> int:
    m = FOLDER_RE.match(Path(folder).name)
    if m is None:
        raise ValueError(f"{folder} is not an episode folder")
    return int(m.group(1))


def load_episode(folder: Path) -> EpisodeMeta:
    path = Path(folder) / EPISODE_JSON
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PodcastError(f"{path}: not found; rerun 'podcast regenerate' for this episode") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PodcastError(f"{path}: cannot be read ({exc})") from None
    try:
        return EpisodeMeta.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(file)"
        raise PodcastError(f"{path}: {loc}: {err['msg']}; fix or restore this file") from None


def save_episode(folder: Path, meta: EpisodeMeta) -> None:
    write_text_atomic(Path(folder) / EPISODE_JSON, meta.model_dump_json(indent=2) + "\n")


def scan_episodes(episodes_dir: Path) -> tuple[list[tuple[Path, EpisodeMeta]], list[str]]:
    """Like :func:`list_episodes`, also returning one warning per folder that was skipped."""
    found: list[tuple[Path, EpisodeMeta]] = []
    warnings: list[str] = []
    for folder in episode_folders(episodes_dir):
        if not (folder / EPISODE_JSON).is_file() or not (folder / AUDIO_FILE).is_file():
            continue  # still being made, or abandoned: not an episode yet
        try:
            meta = load_episode(folder)
        except PodcastError as exc:
            warnings.append(f"skipped {folder.name}: {exc}")
            continue
        if meta.folder != folder.name:
            # A renamed folder keeps its GUID; the URLs follow the folder actually on disk.
            meta = meta.model_copy(update={"folder": folder.name})
        found.append((folder, meta))
    found.sort(key=lambda pair: (pair[1].number, pair[0].name))
    return found, warnings


def list_episodes(episodes_dir: Path) -> list[tuple[Path, EpisodeMeta]]:
    """Finished episodes (ep####-* folders with episode.json and episode.mp3), by number."""
    found, warnings = scan_episodes(episodes_dir)
    for w in warnings:
        log.warning("%s", w)
    return found
