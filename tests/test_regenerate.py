"""regenerate: an edited bullet re-voices one segment; number, GUID and date stay."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import feedparser
import numpy as np
import pytest

from podcast import pipeline, status
from podcast.cli import init
from podcast.config import VoicePreset
from podcast.errors import PodcastError
from podcast.publish.episodes import load_episode
from podcast.voice import FunctionEngine, VoiceEngine

DIGEST = """---
title: "測試摘要 — 2026/11/20"
date: 2026-11-20T07:30:00+08:00
---

## 今日焦點

### 青松科技推出新款邊緣運算晶片

**核心摘要**|
青松科技發表邊緣運算晶片 Pine-2，功耗比前代降低 30%。|
**關鍵實體**：青松科技、Pine-2|
**重要性**：高|
**來源**：[來源1](https://example.com/a)

### 海鷗網路完成 5 億元募資

**核心摘要**|
海鷗網路宣布完成 5 億元募資，將擴建機房。|
**關鍵實體**：海鷗網路|
**重要性**：中|
**來源**：[來源1](https://example.com/b)
""".replace("|\n", "  \n")  # trailing "  " is a Markdown line break
EDIT = ("將擴建機房", "資金將用來擴建機房")


def edit_one_bullet(folder: Path, old: str = EDIT[0], new: str = EDIT[1]) -> tuple[str, str]:
    """Change ``old`` to ``new`` in the one bullet that says it; returns (old line, new line)."""
    script = folder / "script.md"
    lines = script.read_text(encoding="utf-8").splitlines()
    hits = [i for i, ln in enumerate(lines) if ln.startswith("- ") and old in ln]
    assert len(hits) == 1, hits
    before = lines[hits[0]]
    lines[hits[0]] = before.replace(old, new)
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return before, lines[hits[0]]


def tiny_show(root: Path) -> Path:
    """A show whose one digest makes a short episode (two stories, no stings)."""
    show = root / "show"
    init(show, force=False)
    (show / "sources" / "sample-digest.md").write_text(DIGEST, encoding="utf-8")
    toml = (show / "show.toml").read_text(encoding="utf-8")
    for old, new in (("deep_dives = 4", "deep_dives = 2"), ("themes = 3", "themes = 2"),
                     ("stings = true", "stings = false")):
        assert old in toml
        toml = toml.replace(old, new)
    (show / "show.toml").write_text(toml, encoding="utf-8")
    return show


class CountingVoice:
    """A fake engine: a tone whose pitch depends on the text; records every synthesis."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str, preset: VoicePreset) -> np.ndarray:
        self.calls.append(text)
        freq = 200 + sum(map(ord, text)) % 300
        n = 24000 * max(300, 50 * len(text)) // 1000
        return (0.3 * np.sin(np.arange(n) * (2 * np.pi * freq / 24000))).astype(np.float32)

    def factory(self, name: str) -> VoiceEngine:
        return FunctionEngine(name, self)


def feed_items(show: Path) -> dict[str, str]:
    parsed = feedparser.parse((show / "episodes" / "feed.xml").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    return {e.id: e.published for e in parsed.entries}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    show = tiny_show(tmp_path_factory.mktemp("regenerate"))
    fake = CountingVoice()
    summary = pipeline.make(show, date=dt.date(2026, 11, 20), hooks=pipeline.Hooks(engine_factory=fake.factory))
    assert summary.segments >= 5 and len(fake.calls) == summary.synthesized
    return show


@pytest.fixture
def built(template: Path, tmp_path: Path) -> tuple[Path, CountingVoice]:
    """A published one-episode show (a copy of one built per module: building takes seconds)."""
    show = tmp_path / "show"
    shutil.copytree(template, show, symlinks=True)
    return show, CountingVoice()


def test_edit_one_bullet_resynthesizes_one_segment(built: tuple[Path, CountingVoice]) -> None:
    show, fake = built
    folder = pipeline.find_episode(show, "1")
    before = load_episode(folder)
    feed_before = feed_items(show)
    mp3_before = (folder / "episode.mp3").read_bytes()
    wavs_before = {h: (show / ".cache" / "segments" / f"{h}.wav").read_bytes() for h in before.segment_hashes}

    _, new_line = edit_one_bullet(folder)

    hooks = pipeline.Hooks(engine_factory=fake.factory)
    plan = pipeline.regenerate_plan(show, folder.name, hooks=hooks)
    todo = [p for p in plan if p.synthesize]
    assert [(p.reason, p.text) for p in todo] == [("new text", new_line[2:-3])]
    assert len(plan) == len(before.segment_hashes)

    fake.calls.clear()
    summary = pipeline.regenerate(show, "1", hooks=hooks)
    # Counted at the engine: exactly one synthesis, of the edited bullet (numbers are read out).
    assert len(fake.calls) == 1 and "五億元募資，資金將用來擴建機房" in fake.calls[0]
    assert summary.synthesized == 1 and summary.cached == len(plan) - 1 and summary.revision == 2

    after = load_episode(folder)
    assert (after.guid, after.pub_date, after.number) == (before.guid, before.pub_date, before.number)
    assert after.revision == 2 and after.generated_at >= before.generated_at
    assert (folder / "episode.mp3").read_bytes() != mp3_before
    changed = [i for i, (a, b) in enumerate(zip(before.segment_hashes, after.segment_hashes, strict=True)) if a != b]
    assert len(changed) == 1
    for h in after.segment_hashes:  # every other segment's audio is the cached WAV, unchanged
        if h in wavs_before:
            assert (show / ".cache" / "segments" / f"{h}.wav").read_bytes() == wavs_before[h]
    assert feed_items(show) == feed_before  # same GUIDs, same pubDate
    assert "資金將用來擴建機房" in (folder / "article.html").read_text(encoding="utf-8")
    assert not [p for p in (show / "episodes").iterdir() if p.name.startswith(".ep")]

    # Nothing changed since: a dry run now has nothing to do, and a rerun synthesizes nothing.
    assert not [p for p in pipeline.regenerate_plan(show, "1", hooks=hooks) if p.synthesize]
    row = status.list_status(show)[0]
    assert (row.number, row.revision, row.state) == (1, 2, "published")


def test_parse_error_names_line_and_keeps_outputs(built: tuple[Path, CountingVoice]) -> None:
    show, fake = built
    folder = pipeline.find_episode(show, "1")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    feed = (show / "episodes" / "feed.xml").read_bytes()
    script = folder / "script.md"
    text = script.read_text(encoding="utf-8")
    old_line, _ = edit_one_bullet(folder)
    line = text.splitlines().index(old_line) + 1
    broken = text.replace(old_line, old_line[2:])  # the bullet lost its "- "
    script.write_text(broken, encoding="utf-8")
    with pytest.raises(PodcastError, match=rf"script\.md:{line}: "):
        pipeline.regenerate(show, "1", hooks=pipeline.Hooks(engine_factory=fake.factory))
    files["script.md"] = broken.encode()
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    assert (show / "episodes" / "feed.xml").read_bytes() == feed
    assert status.list_status(show)[0].state.startswith("broken: ")


def test_voice_date_and_from_sources(built: tuple[Path, CountingVoice]) -> None:
    show, fake = built
    hooks = pipeline.Hooks(engine_factory=fake.factory)
    folder = pipeline.find_episode(show, "1")
    before = load_episode(folder)
    default = (show / "voices" / "default.toml").read_text(encoding="utf-8")
    (show / "voices" / "slow.toml").write_text(default.replace("rate = 1.0", "rate = 0.9"), encoding="utf-8")
    assert "rate = 0.9" in (show / "voices" / "slow.toml").read_text(encoding="utf-8")

    plan = pipeline.regenerate_plan(show, "1", voice_preset="slow", hooks=hooks)
    assert {p.reason for p in plan} == {"changed voice"}
    fake.calls.clear()
    summary = pipeline.regenerate(show, "1", voice_preset="slow", republish_date=True, hooks=hooks)
    after = load_episode(folder)
    # every distinct text is voiced again (repeated texts hit the cache within the run)
    assert summary.synthesized == len(fake.calls) == len({p.text for p in plan})
    assert after.voice == "slow" and after.guid == before.guid
    assert after.pub_date > before.pub_date
    (entry,) = feedparser.parse((show / "episodes" / "feed.xml").read_bytes()).entries
    assert entry.id == before.guid
    assert dt.datetime(*entry.published_parsed[:6], tzinfo=dt.UTC) == after.pub_date  # the new date is published

    # Hand edit, then rewrite from sources: the edit survives in a backup.
    script = folder / "script.md"
    old_line, new_line = edit_one_bullet(folder)
    pipeline.regenerate(show, "1", from_sources=True, hooks=hooks)
    backups = list(folder.glob("script.md.*.bak"))
    assert len(backups) == 1 and new_line in backups[0].read_text(encoding="utf-8")
    assert old_line in script.read_text(encoding="utf-8")
    assert load_episode(folder).revision == 3
    rows = json.loads((folder / "sources.json").read_text(encoding="utf-8"))
    assert [r["url"] for r in rows] == ["https://example.com/a", "https://example.com/b"]


def test_grounding_rechecked_after_edit(built: tuple[Path, CountingVoice]) -> None:
    show, fake = built
    folder = pipeline.find_episode(show, "1")
    edit_one_bullet(folder, "5 億元", "9 億元")  # a number its source does not say
    summary = pipeline.regenerate(show, "1", hooks=pipeline.Hooks(engine_factory=fake.factory))
    warnings = load_episode(folder).warnings
    assert any("grounding" in w and "9 億" in w for w in warnings), warnings
    assert summary.warnings[: len(warnings)] == warnings
    details = status.show_details(show, "ep0001")
    assert details.warnings == warnings and details.chapters and len(details.sources) == 2
    assert "episode.mp3" in dict(details.files)


def test_unknown_episode(built: tuple[Path, CountingVoice]) -> None:
    show, _ = built
    with pytest.raises(PodcastError, match=r"no episode '7'.*ep0001-"):
        pipeline.regenerate(show, "7")
