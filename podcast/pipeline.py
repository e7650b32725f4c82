"""The pipeline, visible in one place: collect → write → voice → mix → publish.

Each stage is one entry function with plain data in and out; the episode
folder is the hand-off. Every run that writes holds the show's lock
(:mod:`podcast.lock`); those that write episodes or the feed (make, regenerate,
publish) start with :func:`recover`, which cleans up after a run that was killed.

Crash safety: a new episode is built in a hidden staging folder
(``episodes/.epNNNN-slug.partial``) and renamed into place only when it is
complete; ``regenerate`` builds a staging copy and swaps it in with two
renames (old → ``.epNNNN-slug.old``, staging → final). A kill at any point
leaves every published file as it was, and the segment cache keeps the audio
already synthesized, so the next run resumes cheaply.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from .config import ShowConfig, VoicePreset, WriterConfig, load_preset, load_show
from .errors import PodcastError
from .lock import show_lock
from .models import Item, VoicedSegment
from .script import Script, SpokenSegment, read_script, render, spoken_segments
from .util import slugify, write_text_atomic

if TYPE_CHECKING:
    from .voice.engines import VoiceEngine

log = logging.getLogger("podcast")

EPISODES = "episodes"
STORE = "podcast.db"
SEGMENTS_FILE = "segments.json"  # per-segment text/voice/hash of the last build, for --dry-run reasons
FAKE_VOICE_ENV = "PODCAST_FAKE_VOICE"
_HIDDEN_RE = re.compile(r"^\.(ep\d{4}-.+)\.(partial|old)$")  # staging copies of an episode folder


@dataclass
class Hooks:
    """What the caller plugs in. Library code stays UI-free.

    ``stage`` reports progress; ``checkpoint`` is called at each crash-relevant
    point (``written``, ``voiced``, ``mixed``, ``staged``, ``swapped-out``,
    ``renamed``) so tests can inject a failure there (the voice stage runs beside
    the mix, so ``voiced`` comes once both are done, before the sidecar files are
    written); ``engine_factory`` replaces the voice engines (passed to
    :func:`podcast.voice.voice`). ``segment`` and ``stage("mix")`` are called from
    the voice stage's thread, while the main thread mixes and calls no hook.
    """

    stage: Callable[[str], None] = lambda name: None
    segment: Callable[[int, int, VoicedSegment], None] | None = None
    checkpoint: Callable[[str], None] = lambda name: None
    engine_factory: Callable[[str], VoiceEngine] | None = None


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
    retried: int = 0  # requests the voice engine had to retry
    warnings: list[str] = field(default_factory=list)
    revision: int = 1
    collected: list[str] = field(default_factory=list)  # the collect report (make only)


def episodes_dir(show_dir: Path) -> Path:
    return show_dir / EPISODES


def next_number(show_dir: Path) -> int:
    from .publish.episodes import episode_folders, folder_number

    return max(map(folder_number, episode_folders(episodes_dir(show_dir))), default=0) + 1


def resolve_sources(show_dir: Path, sources: list[str]) -> list[str]:
    """Relative file paths are taken from the show folder; URLs pass through. Raises
    PodcastError when there are none."""
    if not sources:
        raise PodcastError("no sources: add some to [sources] items in show.toml or pass --source")
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


def fake_engine_factory(name: str) -> VoiceEngine:
    """TEST ONLY (``PODCAST_FAKE_VOICE=1``): a fast deterministic tone instead of speech.

    Its version differs from every real engine's, so its audio never shares a
    cache entry with real speech. Used by subprocess tests that cannot inject
    an engine; never set this variable for a real show.
    """
    import numpy as np

    from .util import sha256_text
    from .voice.engines import FunctionEngine

    def tone(text: str, preset: VoicePreset) -> np.ndarray:
        n = 24000 * max(300, 60 * len(text)) // 1000
        freq = 200 + int(sha256_text(text)[:4], 16) % 400
        return (0.3 * np.sin(np.arange(n) * (2 * np.pi * freq / 24000))).astype(np.float32)

    return FunctionEngine(name, tone, version="fake-test-1")


def _engines(hooks: Hooks) -> Callable[[str], VoiceEngine] | None:
    if hooks.engine_factory is not None:
        return hooks.engine_factory
    return fake_engine_factory if os.environ.get(FAKE_VOICE_ENV) == "1" else None


# --------------------------------------------------------------------------- recovery


def recover(show_dir: Path) -> list[str]:
    """Clean up after a killed run (call with the show lock held); returns what was done.

    * ``.X.old`` with ``X`` missing: a regenerate died between its two renames.
      Its staging copy was complete (it is only swapped in once built), so the
      swap is finished; without a staging copy the old folder is restored.
    * ``.X.old`` with ``X`` present: the swap finished; the backup goes.
    * ``.X.partial``: an unfinished build; removed.
    * ``.*.tmp`` in episodes/ and its episode folders: half-written files; removed.
    """
    from .publish.episodes import episode_folders

    eps = episodes_dir(show_dir)
    done: list[str] = []
    if not eps.is_dir():
        return done
    for old in sorted(eps.glob(".*.old")):
        m = _HIDDEN_RE.match(old.name)
        if not m or not old.is_dir():
            continue
        final, staging = eps / m.group(1), eps / f".{m.group(1)}.partial"
        if not final.exists():
            if staging.is_dir():
                staging.rename(final)
                done.append(f"finished the interrupted regenerate of {final.name}")
            else:
                old.rename(final)
                done.append(f"restored {final.name} from an interrupted regenerate")
                continue
        shutil.rmtree(old, ignore_errors=True)
    for partial in sorted(eps.glob(".*.partial")):
        if _HIDDEN_RE.match(partial.name) and partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
            done.append(f"removed the unfinished build {partial.name}")
    for folder in [eps, *episode_folders(eps)]:
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    for line in done:
        log.warning("%s", line)
    return done


# --------------------------------------------------------------------------- make


def make(
    show_dir: Path,
    sources: list[str] | None = None,
    *,
    date: dt.date | None = None,
    since: str | None = None,
    minutes: float | None = None,
    hooks: Hooks | None = None,
    wait: float = 0.0,
) -> RunSummary:
    """collect → write → voice → mix → publish one new episode.

    ``since`` (e.g. ``"24h"``) and ``minutes`` override ``[sources] since`` and
    ``[writer] minutes`` of show.toml for this run."""
    with show_lock(show_dir, wait):
        recover(show_dir)
        return _make(show_dir, sources, date=date, since=since, minutes=minutes, hooks=hooks or Hooks())


def _make(show_dir: Path, sources: list[str] | None, *, date: dt.date | None, since: str | None,
          minutes: float | None, hooks: Hooks) -> RunSummary:
    from .collect import collect, fresh_items
    from .collect.store import Store
    from .write import write_script

    config = load_show(show_dir)
    preset = load_preset(show_dir, config.voice.preset)
    writer = config.writer
    if minutes is not None:
        try:  # validated by the same rule as [writer] minutes
            writer = WriterConfig.model_validate({**writer.model_dump(), "minutes": minutes})
        except ValidationError as exc:
            raise PodcastError(f"--minutes {minutes:g}: {exc.errors()[0]['msg']}") from None
    chosen = resolve_sources(show_dir, list(sources or config.sources.items))

    hooks.stage("collect")
    collected = collect(chosen, show_dir / STORE, since=since or config.sources.since)
    number = next_number(show_dir)
    with Store(show_dir / STORE) as store:
        items = fresh_items(collected.items, store, episode=number)
    if not items:
        raise PodcastError(
            f"all {len(collected.items)} collected stories were already told in earlier episodes: "
            "add sources or widen --since"
        )
    if len(items) < len(collected.items):
        log.info("%d items left out: earlier episodes told them", len(collected.items) - len(items))

    hooks.stage("write")
    date = date or dt.date.today()
    written = write_script(
        items, show=config.show, writer=writer, episode=number, date=date,
        llm=config.llm, show_dir=show_dir, chars_per_minute=_speaking_rate(preset),
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
        hooks.checkpoint("written")
        summary = _build_audio(
            show_dir, config, preset, script, staging, hooks,
            guid=str(uuid.uuid4()), pub_date=_pub_datetime(date), revision=1,
            writer=written.writer, write_warnings=written.warnings,
        )
        hooks.checkpoint("staged")
        # Recorded before the rename, so a published episode always has its record; a run
        # that dies here leaves a record under a number the next run reuses and replaces.
        _mark_used(show_dir, number, [s.get("item_id", "") for s in source_list])
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    hooks.checkpoint("renamed")
    summary.folder = final

    summary.collected = collected.report_lines()

    hooks.stage("publish")
    summary.warnings.extend(_publish(show_dir, config))
    return summary


def _speaking_rate(preset: VoicePreset) -> float:
    """Characters per minute this preset speaks: its measured value (at rate 1.0) times its rate."""
    from .write.offline import CHARS_PER_MINUTE

    return (preset.chars_per_minute or CHARS_PER_MINUTE) * preset.rate


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
    voicing: _VoiceThread | None = None,
) -> RunSummary:
    """voice → mix → episode.json, all inside ``folder``.

    The voice stage runs on a thread (``voicing``, if the caller started it already) and
    hands each segment over as it is ready, so the mix encodes the segments before the
    first uncached one while that one is synthesized (for a regenerate) and keeps pace
    with the voice (for a make), instead of starting only when the last segment is done.
    """
    from .mix import mix, write_sidecars
    from .mix.tags import EpisodeTags
    from .publish.cover import make_episode_cover
    from .publish.episodes import EpisodeMeta, save_episode

    if voicing is None:
        voicing = _VoiceThread(show_dir, preset, spoken_segments(script, config.audio.pauses()), hooks)
        voicing.start()
    try:
        cover = folder / "cover.png"
        make_episode_cover(cover, config.show.title, script.title, script.episode)
        tags = EpisodeTags(
            title=script.title,
            show=config.show.title,
            author=config.show.author,
            episode=script.episode,
            date=script.date,
            comment=config.show.description,
            cover=cover,
            transcript="\n".join(seg.text for seg in voicing.segments),
        )
        result = mix(voicing.futures, folder, config.audio, tags, tune_malloc=False,
                     chapters=[s.chapter for s in voicing.segments])
    finally:
        voicing.stop()  # the mix failed: no more synthesis; else the voice is done already
    voiced = voicing.result()
    hooks.checkpoint("voiced")
    write_sidecars(result, folder)
    hooks.checkpoint("mixed")
    rows = [{"id": s.id, "chapter": s.chapter, "text": s.text, "hash": s.hash,
             "voice": preset.name, "engine": s.engine} for s in voiced]
    write_text_atomic(folder / SEGMENTS_FILE, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")

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
        retried=sum(s.retries for s in voiced),
        warnings=list(meta.warnings),
        revision=revision,
    )


class _Stopped(Exception):
    """The run failed (in the mix, or in a regenerate's setup) while the voice stage was
    still at work: stop voicing."""


class _VoiceThread(threading.Thread):
    """Runs the voice stage, resolving one future per segment in script order."""

    def __init__(self, show_dir: Path, preset: VoicePreset, segments: list[SpokenSegment], hooks: Hooks) -> None:
        super().__init__(name="voice", daemon=True)
        self.show_dir, self.preset, self.segments, self.hooks = show_dir, preset, segments, hooks
        self.futures: list[Future[VoicedSegment]] = [Future() for _ in segments]
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> None:
        self.hooks.stage("voice")
        super().start()

    def _ready(self, done: int, total: int, seg: VoicedSegment) -> None:
        if self.stopping.is_set():
            raise _Stopped
        self.futures[done - 1].set_result(seg)
        if self.hooks.segment is not None:
            self.hooks.segment(done, total, seg)

    def run(self) -> None:
        from .voice import voice

        try:
            voice(self.segments, self.preset, self.show_dir, presets=_presets(self.show_dir),
                  progress=self._ready, engine_factory=_engines(self.hooks))
            self.hooks.stage("mix")  # what is left to wait for: the rest of the mix
        except BaseException as exc:  # noqa: BLE001 - handed to the mix (which stops) and to result()
            self.error = exc
        finally:  # a segment never handed over must not keep the mix waiting
            missing = self.error or RuntimeError("the voice stage ended without voicing every segment")
            for f in self.futures:
                if not f.done():
                    f.set_exception(missing)

    def stop(self) -> None:
        self.stopping.set()
        self.join()

    def result(self) -> list[VoicedSegment]:
        """The voiced segments once the thread is done, or the voice stage's own error."""
        if self.error is not None:
            raise self.error
        return [f.result() for f in self.futures]  # every one was resolved by _ready


def find_episode(show_dir: Path, which: str) -> Path:
    """An episode folder by number (``3``, ``ep0003``), folder name or slug."""
    from .publish.episodes import FOLDER_RE, episode_folders

    folders = episode_folders(episodes_dir(show_dir))
    key = which.strip().lower()
    for p in folders:
        m = FOLDER_RE.match(p.name)
        assert m is not None
        number, slug = int(m.group(1)), m.group(2).lower()
        if key in (p.name.lower(), slug, p.name[:6]) or (key.isdigit() and int(key) == number):
            return p
    known = ", ".join(p.name for p in folders) or "none yet"
    raise PodcastError(f"no episode {which!r} in {episodes_dir(show_dir)} (episodes: {known})")


# --------------------------------------------------------------------------- regenerate


def read_sources(folder: Path) -> list[dict]:
    path = folder / "sources.json"
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "n" in r for r in rows):
            raise ValueError("expected a list of {n, title, url, item_id} rows")
        return rows
    except (OSError, ValueError) as exc:
        raise PodcastError(f"{path}: not a usable sources list ({exc}); fix or delete it") from None


def _stored_items(show_dir: Path, rows: list[dict]) -> tuple[list[Item], list[dict]]:
    """The store's items behind sources.json rows, and the rows whose item is not there."""
    from .collect.store import Store

    if not (show_dir / STORE).is_file():
        return [], list(rows)
    found, missing = [], []
    with Store(show_dir / STORE) as store:
        for r in rows:
            item = store.get(r.get("item_id", "")) if r.get("item_id") else None
            (found.append(item) if item is not None else missing.append(r))
    return found, missing


def regenerate(
    show_dir: Path,
    which: str,
    *,
    voice_preset: str | None = None,
    from_sources: bool = False,
    republish_date: bool = False,
    hooks: Hooks | None = None,
    wait: float = 0.0,
) -> RunSummary:
    """Rebuild an episode after its script.md was edited: only changed segments are re-voiced.

    Number and GUID never change; the publication date only with ``republish_date``.
    """
    with show_lock(show_dir, wait):
        recover(show_dir)
        return _regenerate(show_dir, which, voice_preset=voice_preset, from_sources=from_sources,
                           republish_date=republish_date, hooks=hooks or Hooks())


def _regenerate(show_dir: Path, which: str, *, voice_preset: str | None, from_sources: bool,
                republish_date: bool, hooks: Hooks) -> RunSummary:
    from .publish.episodes import AUDIO_FILE, load_episode
    from .write import write_script
    from .write.grounding import check_grounding

    config = load_show(show_dir)
    folder = find_episode(show_dir, which)
    old = load_episode(folder)
    rows = read_sources(folder)
    script = None if from_sources else read_script(folder)  # a parse error stops here: nothing touched
    preset = load_preset(show_dir, voice_preset or old.voice or config.voice.preset)
    items, missing = _stored_items(show_dir, rows)

    writer, warnings = old.writer, []
    if from_sources:
        if not rows or missing:
            which_rows = ", ".join(str(r.get("n", "?")) for r in missing) or "(none listed)"
            raise PodcastError(
                f"{folder / 'sources.json'}: sources {which_rows} are not in {show_dir / STORE}; "
                "run 'podcast collect' for them, or edit script.md by hand and regenerate without --from-sources"
            )
        date = old.pub_date.date()  # not from script.md: --from-sources must work when it no longer parses
        hooks.stage("write")
        written = write_script(items, show=config.show, writer=config.writer, episode=old.number, date=date,
                               llm=config.llm, show_dir=show_dir, chars_per_minute=_speaking_rate(preset))
        script, rows, writer, warnings = written.script, written.sources, written.writer, written.warnings
    assert script is not None
    if script.episode != old.number:
        script = dataclasses.replace(script, episode=old.number)  # the number is fixed once published

    # Voicing (into the segment cache: nothing published) starts now; the grounding check, the
    # staging copy and the mix of the segments before the first changed one are done meanwhile.
    voicing = _VoiceThread(show_dir, preset, spoken_segments(script, config.audio.pauses()), hooks)
    voicing.start()
    # Build into a sibling staging copy; swap it in only when complete.
    staging = folder.with_name(f".{folder.name}.partial")
    backup = folder.with_name(f".{folder.name}.old")  # recover() has removed any stale ones
    try:
        if not from_sources:
            if items:
                warnings = check_grounding(script, rows, items)
            if missing and rows:
                warnings.append(f"grounding: sources {', '.join(str(r.get('n', '?')) for r in missing)} "
                                f"are not in {STORE}; their bullets were not re-checked")
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns(AUDIO_FILE))  # the mix writes a new one
        if from_sources:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            if (staging / "script.md").is_file():
                shutil.copy2(staging / "script.md", staging / f"script.md.{stamp}.bak")
            write_text_atomic(staging / "script.md", render(script))
            write_text_atomic(staging / "sources.json", json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        hooks.checkpoint("written")
        pub_date = dt.datetime.now().astimezone().replace(microsecond=0) if republish_date else old.pub_date
        summary = _build_audio(
            show_dir, config, preset, script, staging, hooks,
            guid=old.guid, pub_date=pub_date, revision=old.revision + 1, writer=writer,
            write_warnings=warnings, voicing=voicing,
        )
        hooks.checkpoint("staged")
        if from_sources:  # the rewrite may tell a different set of the stored items
            _mark_used(show_dir, old.number, [r.get("item_id", "") for r in rows])
        folder.rename(backup)
        # A kill right here leaves .old + a complete .partial: recover() finishes the swap.
        hooks.checkpoint("swapped-out")
        staging.rename(folder)
    except BaseException:
        voicing.stop()  # before anything is cleaned up (stopped already if the mix ran)
        if backup.exists() and not folder.exists():
            backup.rename(folder)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    hooks.checkpoint("renamed")
    summary.folder = folder
    hooks.stage("publish")
    summary.warnings.extend(_publish(show_dir, config))
    return summary


@dataclass
class SegmentPlan:
    id: str
    chapter: str
    text: str
    reason: str  # "cached" | "new text" | "changed voice" | "missing from cache"

    @property
    def synthesize(self) -> bool:
        return self.reason != "cached"


def regenerate_plan(show_dir: Path, which: str, *, voice_preset: str | None = None,
                    hooks: Hooks | None = None) -> list[SegmentPlan]:
    """What ``regenerate`` would re-synthesize, and why; touches nothing."""
    from .publish.episodes import load_episode
    from .voice.plan import plan

    hooks = hooks or Hooks()
    config = load_show(show_dir)
    folder = find_episode(show_dir, which)
    old = load_episode(folder)
    script = read_script(folder)
    preset = load_preset(show_dir, voice_preset or old.voice or config.voice.preset)
    planned = plan(spoken_segments(script), preset, show_dir, engine_factory=_engines(hooks))
    try:  # the texts the episode was last voiced from
        before = {r["text"] for r in json.loads((folder / SEGMENTS_FILE).read_text(encoding="utf-8"))}
    except (OSError, ValueError, KeyError, TypeError):
        before = set()  # older episodes: fall back to episode.json's hash list
    old_hashes = set(old.segment_hashes)
    out = []
    for p in planned:
        seg: SpokenSegment = p.segment
        if p.cached:
            reason = "cached"
        elif p.hash in old_hashes:
            reason = "missing from cache"
        elif before:
            reason = "changed voice" if seg.text in before else "new text"
        else:
            reason = "changed voice" if preset.name != old.voice else "new text"
        out.append(SegmentPlan(seg.id, seg.chapter, seg.text, reason))
    return out


# --------------------------------------------------------------------------- publish, collect


def _publish(show_dir: Path, config: ShowConfig) -> list[str]:
    from .publish import publish

    result = publish(show_dir, config)
    return list(getattr(result, "warnings", []))


def publish_all(show_dir: Path, *, wait: float = 0.0) -> list[str]:
    with show_lock(show_dir, wait):
        recover(show_dir)  # logs what it did
        return _publish(show_dir, load_show(show_dir))


def collect_only(  # noqa: ANN201 - CollectResult
    show_dir: Path, sources: list[str] | None = None, *, since: str | None = None, wait: float = 0.0
):
    from .collect import collect

    config = load_show(show_dir)
    chosen = resolve_sources(show_dir, list(sources or config.sources.items))
    with show_lock(show_dir, wait):
        return collect(chosen, show_dir / STORE, since=since or config.sources.since)


def _mark_used(show_dir: Path, number: int, item_ids: list[str]) -> None:
    from .collect.store import Store

    ids = [i for i in item_ids if i]
    if ids:
        with Store(show_dir / STORE) as store:
            store.mark_used(number, ids)
