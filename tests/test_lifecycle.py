"""Crash safety and locking: a run stopped at any point leaves published files as they were."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import feedparser
import numpy as np
import pytest
from test_regenerate import CountingVoice, edit_one_bullet, tiny_show

from podcast import pipeline, status
from podcast.collect.store import Store
from podcast.config import VoicePreset
from podcast.errors import PodcastError
from podcast.lock import show_lock
from podcast.publish.episodes import load_episode
from podcast.script import read_script

DAY = dt.date(2026, 11, 20)
NEXT_DIGEST = """---
title: "隔日摘要"
date: 2026-11-21T07:30:00+08:00
---

## 今日焦點

### 白鷺電池公布固態電池試產線

**核心摘要**|
白鷺電池在桃園啟用固態電池試產線，年產能 2 萬顆。|
**重要性**：高|
**來源**：[來源1](https://example.com/c)

### 雲豹軟體推出程式碼審查工具

**核心摘要**|
雲豹軟體推出程式碼審查工具 Lynx，首批支援 4 種語言。|
**重要性**：中|
**來源**：[來源1](https://example.com/d)
""".replace("|\n", "  \n")


class Boom(Exception):
    pass


def published(show: Path) -> dict[str, bytes]:
    """Every visible file under episodes/ (hidden staging leftovers are not published)."""
    eps = show / "episodes"
    return {
        str(p.relative_to(eps)): p.read_bytes()
        for p in sorted(eps.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(eps).parts)
    }


def hidden(show: Path) -> list[str]:
    return sorted(p.name for p in (show / "episodes").iterdir() if p.name.startswith("."))


def fail_at(point: str, fake: CountingVoice, exc: type[BaseException] = Boom) -> pipeline.Hooks:
    def check(name: str) -> None:
        if name == point:
            raise exc(point)

    return pipeline.Hooks(stage=check, checkpoint=check, engine_factory=fake.factory)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    show = tiny_show(tmp_path_factory.mktemp("lifecycle"))
    pipeline.make(show, date=DAY, hooks=pipeline.Hooks(engine_factory=CountingVoice().factory))
    return show


@pytest.fixture
def one_episode(template: Path, tmp_path: Path) -> tuple[Path, CountingVoice]:
    """A published one-episode show (a copy of one built per module: building takes seconds)."""
    show = tmp_path / "show"
    shutil.copytree(template, show, symlinks=True)
    # Tomorrow's news: episode 1's stories are not told again, so the next make needs new ones.
    (show / "sources" / "sample-digest.md").write_text(NEXT_DIGEST, encoding="utf-8")
    return show, CountingVoice()


@pytest.mark.parametrize("point", ["write", "voiced", "staged"])
def test_make_interrupted_changes_nothing(one_episode: tuple[Path, CountingVoice], point: str) -> None:
    show, fake = one_episode
    before = published(show)
    with pytest.raises(Boom):
        pipeline.make(show, date=DAY + dt.timedelta(days=1), hooks=fail_at(point, fake))
    assert published(show) == before and hidden(show) == []
    summary = pipeline.make(show, date=DAY + dt.timedelta(days=1), hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert summary.number == 2
    assert len(feedparser.parse((show / "episodes" / "feed.xml").read_bytes()).entries) == 2


class FailingVoice(CountingVoice):
    """Fails on any text containing ``marker`` (the fallback voice too: the same fake)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def __call__(self, text: str, preset: VoicePreset) -> np.ndarray:
        if self.marker in text:
            raise RuntimeError("the voice service went away")
        return super().__call__(text, preset)


def test_voice_failing_mid_episode_stops_the_mix_and_keeps_the_voiced(
        one_episode: tuple[Path, CountingVoice]) -> None:
    show, _ = one_episode
    before = published(show)
    failing = FailingVoice("接下來深入解析")  # segment 7 of 12: the mix is under way by then
    with pytest.raises(PodcastError, match=r"segment \S+ .*failed"):
        pipeline.make(show, date=DAY + dt.timedelta(days=1), hooks=pipeline.Hooks(engine_factory=failing.factory))
    assert published(show) == before and hidden(show) == []
    assert "voice" not in [t.name for t in threading.enumerate()]  # stopped, not left running
    assert len(failing.calls) >= 3  # the new ones among segments 1-6 were voiced before it failed

    fake = CountingVoice()
    summary = pipeline.make(show, date=DAY + dt.timedelta(days=1), hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert summary.number == 2
    assert not set(failing.calls) & set(fake.calls)  # what was voiced came from the cache


def test_make_interrupted_after_rename_publishes_next_time(one_episode: tuple[Path, CountingVoice]) -> None:
    show, fake = one_episode
    feed = (show / "episodes" / "feed.xml").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        pipeline.make(show, date=DAY, hooks=fail_at("renamed", fake, KeyboardInterrupt))
    assert (show / "episodes" / "feed.xml").read_bytes() == feed
    assert status.list_status(show)[1].state == "not in feed (run publish)"
    pipeline.publish_all(show)
    assert [r.state for r in status.list_status(show)] == ["published", "published"]
    # Its stories were recorded as told before the rename: the next make does not retell them.
    with pytest.raises(PodcastError, match="already told in earlier episodes"):
        pipeline.make(show, date=DAY, hooks=pipeline.Hooks(engine_factory=fake.factory))


def test_make_on_yesterdays_news_fails_and_changes_nothing(template: Path, tmp_path: Path) -> None:
    show = tmp_path / "show"
    shutil.copytree(template, show, symlinks=True)
    before = published(show)
    fake = CountingVoice()
    with pytest.raises(PodcastError, match="all 2 collected stories were already told"):
        pipeline.make(show, date=DAY, hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert fake.calls == [] and published(show) == before and hidden(show) == []


@pytest.mark.parametrize("point", ["written", "mixed", "swapped-out"])
def test_regenerate_interrupted_changes_nothing(one_episode: tuple[Path, CountingVoice], point: str) -> None:
    show, fake = one_episode
    folder = pipeline.find_episode(show, "1")
    edit_one_bullet(folder)
    before = published(show)
    with pytest.raises(Boom):
        pipeline.regenerate(show, "1", hooks=fail_at(point, fake))
    assert published(show) == before and hidden(show) == []
    pipeline.regenerate(show, "1", hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert load_episode(folder).revision == 2


def test_regenerate_stopped_before_publishing_shows_and_heals(one_episode: tuple[Path, CountingVoice]) -> None:
    show, fake = one_episode
    folder = pipeline.find_episode(show, "1")
    edit_one_bullet(folder)
    feed = (show / "episodes" / "feed.xml").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        pipeline.regenerate(show, "1", hooks=fail_at("renamed", fake, KeyboardInterrupt))
    assert (show / "episodes" / "feed.xml").read_bytes() == feed  # the old feed still stands
    assert status.list_status(show)[0].state == "feed out of date (run publish)"
    pipeline.publish_all(show)
    assert status.list_status(show)[0].state == "published"
    entry = feedparser.parse((show / "episodes" / "feed.xml").read_bytes()).entries[0]
    assert int(entry.enclosures[0].length) == (folder / "episode.mp3").stat().st_size


def test_a_renamed_folder_is_still_the_same_episode(one_episode: tuple[Path, CountingVoice]) -> None:
    show, _ = one_episode
    folder = pipeline.find_episode(show, "1")
    renamed = folder.with_name("ep0001-My_Renamed")
    folder.rename(renamed)
    pipeline.publish_all(show)
    assert pipeline.find_episode(show, "my_renamed") == renamed == pipeline.find_episode(show, "1")
    assert [(r.number, r.state) for r in status.list_status(show)] == [(1, "published")]
    assert pipeline.next_number(show) == 2
    feed = feedparser.parse((show / "episodes" / "feed.xml").read_bytes())
    assert feed.entries[0].enclosures[0].href.endswith("/ep0001-My_Renamed/episode.mp3")


def test_regenerate_keeps_a_users_cover_and_redraws_ours(one_episode: tuple[Path, CountingVoice]) -> None:
    from PIL import Image

    show, fake = one_episode
    folder = pipeline.find_episode(show, "1")
    ours = (folder / "cover.png").read_bytes()
    script = folder / "script.md"
    script.write_text(script.read_text(encoding="utf-8").replace("title: ", "title: 新標題 ", 1), encoding="utf-8")
    pipeline.regenerate(show, "1", hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert (folder / "cover.png").read_bytes() != ours  # the title changed: our cover is redrawn
    Image.new("RGB", (1400, 1400), (20, 120, 40)).save(folder / "cover.png", "PNG")
    mine = (folder / "cover.png").read_bytes()
    edit_one_bullet(folder)
    pipeline.regenerate(show, "1", hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert (folder / "cover.png").read_bytes() == mine


def test_from_sources_rescues_a_script_that_no_longer_parses(one_episode: tuple[Path, CountingVoice]) -> None:
    show, fake = one_episode
    folder = pipeline.find_episode(show, "1")
    date = load_episode(folder).pub_date
    (folder / "script.md").write_text("this is not a script\n", encoding="utf-8")
    with pytest.raises(PodcastError):
        pipeline.regenerate(show, "1", hooks=pipeline.Hooks(engine_factory=fake.factory))
    with Store(show / pipeline.STORE) as store:
        store.mark_used(1, ["a stale record"])
    pipeline.regenerate(show, "1", from_sources=True, hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert read_script(folder).date == date.date() and load_episode(folder).pub_date == date
    told = {r["item_id"] for r in pipeline.read_sources(folder)}
    with Store(show / pipeline.STORE) as store:
        assert told and store.used_ids(1) == told  # the rewrite's items are what episode 1 tells


def test_recover_finishes_or_undoes_a_killed_swap(one_episode: tuple[Path, CountingVoice]) -> None:
    show, fake = one_episode
    folder = pipeline.find_episode(show, "1")
    eps = show / "episodes"
    staging, backup = eps / f".{folder.name}.partial", eps / f".{folder.name}.old"
    before = published(show)

    # Killed between the two renames: the complete staging copy is swapped in.
    shutil.copytree(folder, staging)
    (staging / "marker.txt").write_text("new build", encoding="utf-8")
    folder.rename(backup)
    pipeline.publish_all(show)
    assert (folder / "marker.txt").is_file() and hidden(show) == []

    # Only the backup is left: it is put back.
    (folder / "marker.txt").unlink()
    folder.rename(backup)
    assert "restored" in pipeline.recover(show)[0]
    assert published(show) == before and hidden(show) == []

    # Swap done but the backup not yet deleted, plus an unfinished build and temp files.
    shutil.copytree(folder, backup)
    (eps / ".ep0002-next.partial").mkdir()
    (eps / ".feed.xml.abc.tmp").write_bytes(b"half")
    (folder / ".episode.x.mp3.tmp").write_bytes(b"half")
    pipeline.recover(show)
    assert hidden(show) == [] and published(show) == before
    assert not list(folder.glob(".*.tmp"))


def test_lock_blocks_a_second_run(one_episode: tuple[Path, CountingVoice]) -> None:
    show, fake = one_episode
    before = published(show)
    with show_lock(show):
        with pytest.raises(PodcastError, match=rf"PID {os.getpid()}\).*--wait"):
            pipeline.make(show, date=DAY, hooks=pipeline.Hooks(engine_factory=fake.factory))
        t0 = time.monotonic()
        with pytest.raises(PodcastError, match="busy"):
            pipeline.regenerate(show, "1", wait=0.5)
        assert time.monotonic() - t0 >= 0.5
        r = _cli(show, "publish")
        assert r.returncode == 1 and f"PID {os.getpid()}" in r.stderr and "Traceback" not in r.stderr
    assert published(show) == before
    assert _cli(show, "publish", "--wait", "2").returncode == 0


def _cli(show: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", pipeline.FAKE_VOICE_ENV: "1"}
    return subprocess.run([sys.executable, "-m", "podcast", *args, "--dir", str(show)],
                          capture_output=True, text=True, env=env, timeout=300)


def _kill_during_mix(show: Path, args: list[str], staging_glob: str) -> None:
    """Start the CLI, SIGKILL its whole process group once the MP3 is being encoded."""
    env = {**os.environ, "NO_COLOR": "1", pipeline.FAKE_VOICE_ENV: "1"}
    proc = subprocess.Popen([sys.executable, "-m", "podcast", *args, "--dir", str(show)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while not list((show / "episodes").glob(f"{staging_glob}/.episode.*.mp3.tmp")):
            assert proc.poll() is None, f"finished before the mix could be interrupted: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_during_mix(one_episode: tuple[Path, CountingVoice]) -> None:
    show, _ = one_episode
    pipeline.publish_all(show)
    before = published(show)

    _kill_during_mix(show, ["make", "--date", "2026-11-21"], ".ep0002-*.partial")
    assert published(show) == before and hidden(show)  # the staging folder is left behind…
    r = _cli(show, "make", "--date", "2026-11-21")
    assert r.returncode == 0, r.stderr  # …and the next run cleans it up and completes
    assert hidden(show) == []
    assert [row.state for row in status.list_status(show)] == ["published", "published"]

    folder = pipeline.find_episode(show, "1")
    edit_one_bullet(folder)
    before = published(show)
    _kill_during_mix(show, ["regenerate", "1"], f".{folder.name}.partial")
    assert published(show) == before
    r = _cli(show, "regenerate", "1")
    assert r.returncode == 0, r.stderr
    assert load_episode(folder).revision == 2 and hidden(show) == []
    r = _cli(show, "list")
    assert r.returncode == 0 and r.stdout.count("published") == 2
    r = _cli(show, "show", "1")
    assert r.returncode == 0 and "episode.mp3" in r.stdout and "chapters" in r.stdout
    r = _cli(show, "regenerate", "1", "--dry-run")
    assert r.returncode == 0 and r.stdout.startswith("0 of "), r.stdout
