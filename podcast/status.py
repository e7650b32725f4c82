"""`podcast list` and `podcast show`: what state each episode is in. Reads only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PodcastError
from .pipeline import episodes_dir, find_episode, read_sources
from .script import read_script

if TYPE_CHECKING:
    from .publish.episodes import EpisodeMeta


@dataclass
class EpisodeRow:
    folder: Path
    number: int
    date: str
    title: str
    duration_s: float | None
    revision: int | None
    state: str  # published / not in feed (run publish) / missing mp3 / broken: …


def _enclosure_length(feed_text: str, folder: str) -> int | None:
    m = re.search(rf'<enclosure url="[^"]*/{re.escape(folder)}/episode\.mp3" length="(\d+)"', feed_text)
    return int(m.group(1)) if m else None


def list_status(show_dir: Path) -> list[EpisodeRow]:
    """Every ep####-* folder with what state it is in; reads only."""
    from .publish.episodes import AUDIO_FILE, EPISODE_JSON, episode_folders, folder_number, load_episode

    eps = episodes_dir(show_dir)
    feed = eps / "feed.xml"
    feed_text = feed.read_text(encoding="utf-8", errors="replace") if feed.is_file() else ""
    rows = []
    for folder in episode_folders(eps):
        number, date, title, duration, revision = folder_number(folder), "", folder.name, None, None
        try:
            if not (folder / EPISODE_JSON).is_file():
                raise PodcastError("missing episode.json")
            meta = load_episode(folder)
            date, title = meta.pub_date.date().isoformat(), meta.title
            duration, revision = meta.duration_s, meta.revision
            title = read_script(folder).title
            if not (folder / AUDIO_FILE).is_file():
                state = "missing mp3"
            elif f">{meta.guid}<" not in feed_text:
                state = "not in feed (run publish)"
            elif _enclosure_length(feed_text, folder.name) != (folder / AUDIO_FILE).stat().st_size:
                # Rebuilt after the feed was written (a run stopped before publishing).
                state = "feed out of date (run publish)"
            else:
                state = "published"
        except PodcastError as exc:
            state = f"broken: {exc}"
        rows.append(EpisodeRow(folder, number, date, title, duration, revision, state))
    return rows


@dataclass
class EpisodeDetails:
    folder: Path
    meta: EpisodeMeta | None  # None when episode.json is broken
    files: list[tuple[str, int]]
    chapters: list[tuple[float, str]]
    sources: list[dict]
    warnings: list[str]


def show_details(show_dir: Path, which: str) -> EpisodeDetails:
    from .publish.episodes import load_episode
    from .publish.pages import load_chapters

    folder = find_episode(show_dir, which)
    problems: list[str] = []
    meta = None
    try:
        meta = load_episode(folder)
    except PodcastError as exc:
        problems.append(str(exc))
    try:
        chapters = [(c.start_s, c.title) for c in load_chapters(folder / "chapters.json")]
    except PodcastError as exc:
        chapters, problems = [], [*problems, str(exc)]
    try:
        sources = read_sources(folder)
    except PodcastError as exc:
        sources, problems = [], [*problems, str(exc)]
    files = [(p.name, p.stat().st_size) for p in sorted(folder.iterdir()) if p.is_file()]
    warnings = [*problems, *(meta.warnings if meta else [])]
    return EpisodeDetails(folder, meta, files, chapters, sources, warnings)
