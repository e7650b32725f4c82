"""The pipeline, visible in one place: collect → write → voice → mix → publish.

Each stage is one entry function with plain data in and out; the episode
folder is the hand-off. A new episode is built in a hidden staging folder
and renamed into ``episodes/`` only when it is complete, so a failure at any
stage leaves ``episodes/`` exactly as it was (the segment cache keeps the
audio already synthesized, so the next run resumes cheaply).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import ShowConfig, VoicePreset, load_preset, load_show
from .errors import PodcastError
from .models import VoicedSegment
from .script import Script, parse, render, spoken_segments
from .util import slugify, write_text_atomic

log = logging.getLogger("podcast")

EPISODES = "episodes"
STORE = "podcast.db"
_FOLDER_RE = re.compile(r"^ep(\d{4})-[a-z0-9-]+$")


@dataclass
class Hooks:
    """What the CLI plugs in: progress reporting. Library code stays UI-free."""

    stage: Callable[[str], None] = lambda name: None
    segment: Callable[[int, int, VoicedSegment], None] | None = None


@dataclass
class RunSummary:
    folder: Path
    number: int
    title: str
    duration_s: float
    segments: int
    synthesized: int
    cached: int
    fell_back: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def episodes_dir(show_dir: Path) -> Path:
    return show_dir / EPISODES


def next_number(show_dir: Path) -> int:
    numbers = [
        int(m.group(1))
        for p in episodes_dir(show_dir).glob("ep*")
        if p.is_dir() and (m := _FOLDER_RE.match(p.name))
    ]
    return max(numbers, default=0) + 1


def resolve_sources(show_dir: Path, sources: list[str]) -> list[str]:
    """Relative file paths are taken from the show folder; URLs pass through."""
    out = []
    for s in sources:
        if "://" in s:
            out.append(s)
        else:
            p = Path(s).expanduser()
            out.append(str(p if p.is_absolute() else (show_dir / p)))
    return out


def _presets(show_dir: Path) -> Callable[[str], VoicePreset]:
    return lambda name: load_preset(show_dir, name)


def make(
    show_dir: Path,
    sources: list[str] | None = None,
    *,
    date: dt.date | None = None,
    hooks: Hooks | None = None,
) -> RunSummary:
    """collect → write → voice → mix → publish one new episode."""
    from .collect import collect
    from .write import write_script

    hooks = hooks or Hooks()
    config = load_show(show_dir)
    preset = load_preset(show_dir, config.voice.preset)
    chosen = resolve_sources(show_dir, list(sources or config.sources.items))
    if not chosen:
        raise PodcastError("no sources: add some to [sources] items in show.toml or pass --source")

    hooks.stage("collect")
    collected = collect(chosen, show_dir / STORE)
    items = collected.items

    hooks.stage("write")
    number = next_number(show_dir)
    date = date or dt.date.today()
    written = write_script(
        items, show=config.show, writer=config.writer, episode=number, date=date,
        llm=config.llm, show_dir=show_dir,
    )
    script, source_list = written.script, written.sources
    folder_name = f"ep{number:04d}-{slugify(script.title, date.isoformat())}"
    final = episodes_dir(show_dir) / folder_name
    staging = episodes_dir(show_dir) / f".{folder_name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        write_text_atomic(staging / "script.md", render(script))
        write_text_atomic(
            staging / "sources.json", json.dumps(source_list, ensure_ascii=False, indent=2) + "\n"
        )
        summary = _build_audio(
            show_dir, config, preset, script, staging, hooks,
            guid=str(uuid.uuid4()), pub_date=_pub_datetime(date), revision=1,
            writer=written.writer, write_warnings=written.warnings,
        )
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.folder = final
    _mark_used(show_dir, number, [s.get("item_id", "") for s in source_list])

    hooks.stage("publish")
    result = _publish(show_dir, config)
    summary.warnings.extend(result)
    return summary


def _pub_datetime(date: dt.date) -> dt.datetime:
    now = dt.datetime.now().astimezone()
    if date == now.date():
        return now.replace(microsecond=0)
    return dt.datetime.combine(date, dt.time(6, 0), tzinfo=now.tzinfo)


def _build_audio(
    show_dir: Path,
    config: ShowConfig,
    preset: VoicePreset,
    script: Script,
    folder: Path,
    hooks: Hooks,
    *,
    guid: str,
    pub_date: dt.datetime,
    revision: int,
    writer: str,
    write_warnings: list[str] | None = None,
) -> RunSummary:
    """voice → mix → episode.json, all inside ``folder``."""
    from .mix import mix, write_sidecars
    from .mix.tags import EpisodeTags
    from .publish.cover import make_episode_cover
    from .publish.episodes import EpisodeMeta, save_episode
    from .voice import voice

    hooks.stage("voice")
    voiced = voice(
        spoken_segments(script), preset, show_dir, presets=_presets(show_dir), progress=hooks.segment
    )

    hooks.stage("mix")
    cover = folder / "cover.png"
    make_episode_cover(cover, config.show.title, script.title, script.episode)
    transcript = "\n".join(seg.text for seg in voiced)
    tags = EpisodeTags(
        title=script.title,
        show=config.show.title,
        author=config.show.author,
        episode=script.episode,
        date=script.date,
        comment=config.show.description,
        cover=cover,
        transcript=transcript,
    )
    result = mix(voiced, folder, config.audio, tags)
    write_sidecars(result, folder)

    summary_text = "；".join(b.text for g in script.summary for b in g.bullets[:1])
    meta = EpisodeMeta(
        guid=guid,
        number=script.episode,
        title=script.title,
        slug=folder.name.split("-", 1)[1].removesuffix(".partial"),
        folder=folder.name.lstrip(".").removesuffix(".partial"),
        pub_date=pub_date,
        duration_s=result.duration_ms / 1000,
        bytes=result.bytes,
        segment_hashes=[s.hash for s in voiced],
        revision=revision,
        generated_at=dt.datetime.now().astimezone().replace(microsecond=0),
        voice=preset.name,
        writer=writer,
        warnings=[
            *(write_warnings or []),
            *(f"segment {s.id} used the fallback voice ({s.engine})" for s in voiced if s.fell_back),
        ],
        summary=summary_text[:600],
    )
    save_episode(folder, meta)
    return RunSummary(
        folder=folder,
        number=script.episode,
        title=script.title,
        duration_s=result.duration_ms / 1000,
        segments=len(voiced),
        synthesized=sum(not s.cached for s in voiced),
        cached=sum(s.cached for s in voiced),
        fell_back=[s.id for s in voiced if s.fell_back],
        warnings=list(meta.warnings),
    )


def find_episode(show_dir: Path, which: str) -> Path:
    """An episode folder by number (``3``, ``ep0003``), folder name or slug."""
    folders = sorted(p for p in episodes_dir(show_dir).glob("ep*") if p.is_dir() and _FOLDER_RE.match(p.name))
    key = which.strip().lower()
    for p in folders:
        number = int(p.name[2:6])
        slug = p.name[7:]
        if key in (p.name, slug, p.name[:6]) or (key.isdigit() and int(key) == number):
            return p
    known = ", ".join(p.name for p in folders) or "none yet"
    raise PodcastError(f"no episode {which!r} in {episodes_dir(show_dir)} (episodes: {known})")


def regenerate(show_dir: Path, which: str, *, voice_preset: str | None = None, hooks: Hooks | None = None) -> RunSummary:
    """Rebuild an episode after its script.md was edited: only changed segments are re-voiced."""
    from .publish.episodes import load_episode

    hooks = hooks or Hooks()
    config = load_show(show_dir)
    folder = find_episode(show_dir, which)
    script = parse((folder / "script.md").read_text(encoding="utf-8"), where=str(folder / "script.md"))
    old = load_episode(folder)
    preset = load_preset(show_dir, voice_preset or old.voice or config.voice.preset)

    # Build into a sibling staging copy; swap it in only when complete.
    staging = folder.with_name(f".{folder.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(folder, staging)
    try:
        summary = _build_audio(
            show_dir, config, preset, script, staging, hooks,
            guid=old.guid, pub_date=old.pub_date, revision=old.revision + 1, writer=old.writer,
        )
        backup = folder.with_name(f".{folder.name}.old")
        if backup.exists():
            shutil.rmtree(backup)
        folder.rename(backup)
        staging.rename(folder)
        shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.folder = folder
    hooks.stage("publish")
    summary.warnings.extend(_publish(show_dir, config))
    return summary


def _publish(show_dir: Path, config: ShowConfig) -> list[str]:
    from .publish import publish

    result = publish(show_dir, config)
    return list(getattr(result, "warnings", []))


def publish_all(show_dir: Path) -> list[str]:
    return _publish(show_dir, load_show(show_dir))


def collect_only(show_dir: Path, sources: list[str] | None = None):  # noqa: ANN201 - CollectResult
    from .collect import collect

    config = load_show(show_dir)
    chosen = resolve_sources(show_dir, list(sources or config.sources.items))
    if not chosen:
        raise PodcastError("no sources: add some to [sources] items in show.toml or pass --source")
    return collect(chosen, show_dir / STORE)


def _mark_used(show_dir: Path, number: int, item_ids: list[str]) -> None:
    from .collect.store import Store

    ids = [i for i in item_ids if i]
    if ids:
        with Store(show_dir / STORE) as store:
            store.mark_used(number, ids)
