"""publish: rebuild feed.xml, every article and the index from what is on disk.

Nothing here depends on how an episode was made: each ep####-* folder's
script.md, episode.json, chapters.json and episode.mp3 are the whole input.
Every file is written to a temp file and renamed into place, and feed.xml is
written last, after it has been fully serialized in memory, so a crash at any
point leaves the previous feed.xml intact. An episode with broken files is
left out with a warning; the rest still publish.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ShowConfig
from ..errors import PodcastError
from ..script import read_script
from ..util import write_bytes_atomic, write_text_atomic
from .episodes import (
    EpisodeMeta,
    episode_folder_name,
    list_episodes,
    load_episode,
    save_episode,
    scan_episodes,
)

if TYPE_CHECKING:
    from .pages import EpisodePage

# cover, feed and pages (PIL, feedgen with lxml, jinja2: ≈0.25 s) are imported where used, so
# the pipeline's recover() and a regenerate's voice stage do not wait for them.

__all__ = [
    "EpisodeMeta",
    "PublishResult",
    "episode_folder_name",
    "list_episodes",
    "load_episode",
    "publish",
    "save_episode",
]

log = logging.getLogger(__name__)


@dataclass
class PublishResult:
    feed: Path
    index: Path
    cover: Path
    episodes: list[EpisodeMeta] = field(default_factory=list)  # published, newest first
    articles: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _write_if_changed(path: Path, text: str) -> None:
    """Skip identical rewrites so reruns keep mtimes (and HTTP caches) stable."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    write_text_atomic(path, text)


def _show_cover(show_dir: Path, episodes_dir: Path, config: ShowConfig) -> Path:
    from . import cover
    from .pages import COVER_FILE

    dest = episodes_dir / COVER_FILE
    if config.show.artwork:
        src = Path(config.show.artwork).expanduser()
        cover.copy_artwork(src if src.is_absolute() else show_dir / src, dest)
    else:
        subtitle = config.show.description.split("\n", 1)[0]
        if len(subtitle) > 40:
            subtitle = subtitle[:39] + "…"
        cover.make_show_cover(dest, config.show.title, subtitle)
    return dest


def _load_page(folder: Path, meta: EpisodeMeta, config: ShowConfig) -> EpisodePage:
    from . import cover
    from .pages import COVER_FILE, EpisodePage, load_chapters

    script = read_script(folder)
    if script.title != meta.title:
        # script.md is the source of truth: a title edited there shows up without a regenerate.
        meta = meta.model_copy(update={"title": script.title})
    chapters = load_chapters(folder / "chapters.json")
    # Redrawn when the title changed; a user's own cover.png in the folder is kept.
    cover.make_episode_cover(folder / COVER_FILE, config.show.title, meta.title, meta.number)
    return EpisodePage(folder=folder, meta=meta, script=script, chapters=chapters)  # every episode has a cover.png


def publish(show_dir: Path, config: ShowConfig) -> PublishResult:
    """Rebuild every article, index.html, cover.png and feed.xml under ``show_dir/episodes``."""
    from .feed import build_feed
    from .pages import make_env, render_article_html, render_article_md, render_index

    show_dir = Path(show_dir)
    episodes_dir = show_dir / "episodes"
    episodes_dir.mkdir(parents=True, exist_ok=True)
    result = PublishResult(
        feed=episodes_dir / "feed.xml",
        index=episodes_dir / "index.html",
        cover=_show_cover(show_dir, episodes_dir, config),
    )
    env = make_env(show_dir)

    found, result.warnings = scan_episodes(episodes_dir)
    pages: list[EpisodePage] = []
    seen_guids: dict[str, str] = {}
    for folder, meta in found:
        if meta.guid in seen_guids:
            result.warnings.append(
                f"skipped {folder.name}: its guid is already used by {seen_guids[meta.guid]} "
                "(a copied folder?); give it a new guid in episode.json"
            )
            continue
        try:
            page = _load_page(folder, meta, config)
            _write_if_changed(folder / "article.html", render_article_html(env, page, config))
            _write_if_changed(folder / "article.md", render_article_md(env, page, config))
        except PodcastError as exc:
            result.warnings.append(f"skipped {folder.name}: {exc}")
            continue
        seen_guids[meta.guid] = folder.name
        pages.append(page)
        result.articles.append(folder / "article.html")

    pages.sort(key=lambda p: (p.meta.pub_date, p.meta.number), reverse=True)
    result.episodes = [p.meta for p in pages]
    _write_if_changed(result.index, render_index(env, pages, config))

    # The feed last: serialized fully in memory, then renamed into place in one step.
    data, feed_warnings = build_feed(pages, config, env)
    result.warnings += feed_warnings
    if not result.feed.is_file() or result.feed.read_bytes() != data:
        write_bytes_atomic(result.feed, data)
    for w in result.warnings:
        log.warning("%s", w)
    return result
