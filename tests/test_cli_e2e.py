"""End to end through the real `podcast` command: init, make, and bad input.

The demo episode is built once per session with the real offline voice and
real ffmpeg, then checked with tools the project did not write.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest

from podcast.script import parse

PODCAST = [sys.executable, "-m", "podcast"]
EPISODE_FILES = [
    "script.md", "sources.json", "episode.json", "episode.mp3", "article.html", "article.md",
    "chapters.json", "transcript.vtt", "transcript.srt",
]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PODCAST_FAKE_VOICE"}  # the real voice
    env.update(NO_COLOR="1", COLUMNS="200")
    return subprocess.run([*PODCAST, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


def error_lines(stderr: str) -> list[str]:
    """stderr minus the progress lines ("collect …") that name each stage."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.endswith(" …")]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every entry under ``folder``, hidden ones too: a leftover staging folder counts."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="session")
def demo_show(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    r = run("init", "show", cwd=root)
    assert r.returncode == 0, r.stderr
    show = root / "show"
    r = run("make", "--date", "2026-11-20", cwd=show)
    assert r.returncode == 0, r.stdout + r.stderr
    return show


@pytest.mark.slow
def test_demo_episode_has_every_file(demo_show: Path) -> None:
    episodes = demo_show / "episodes"
    folders = [p for p in episodes.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 1
    folder = folders[0]
    assert re.fullmatch(r"ep0001-[a-z0-9-]+", folder.name)
    for name in EPISODE_FILES:
        assert (folder / name).is_file(), name
        assert (folder / name).stat().st_size > 0, name
    for name in ("feed.xml", "index.html", "cover.png"):
        assert (episodes / name).is_file(), name
    # No staging leftovers.
    assert not [p for p in episodes.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_demo_mp3_plays_over_a_minute(demo_show: Path) -> None:
    mp3 = next(demo_show.glob("episodes/ep0001-*/episode.mp3"))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(mp3)],
        capture_output=True, text=True, check=True,
    )
    duration = float(json.loads(probe.stdout)["format"]["duration"])
    assert duration > 60
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(mp3), "-f", "null", "-"], capture_output=True, text=True
    )
    assert decode.returncode == 0 and decode.stderr.strip() == ""


@pytest.mark.slow
def test_demo_feed_enclosure_matches_file(demo_show: Path) -> None:
    mp3 = next(demo_show.glob("episodes/ep0001-*/episode.mp3"))
    feed = feedparser.parse((demo_show / "episodes" / "feed.xml").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    assert len(feed.entries) == 1
    enclosure = feed.entries[0].enclosures[0]
    assert int(enclosure["length"]) == mp3.stat().st_size
    assert enclosure["type"] == "audio/mpeg"
    assert enclosure["href"].endswith(f"{mp3.parent.name}/episode.mp3")


@pytest.mark.slow
def test_demo_script_has_reference_shape(demo_show: Path) -> None:
    script_md = next(demo_show.glob("episodes/ep0001-*/script.md"))
    script = parse(script_md.read_text(encoding="utf-8"))
    assert len(script.summary) >= 2
    assert len(script.deep_dives) >= 2
    assert script.sources and script.disclaimer and script.intro and script.outro
    assert all(b.refs for b in script.bullets())
    meta = json.loads((script_md.parent / "episode.json").read_text(encoding="utf-8"))
    assert meta["number"] == 1 and meta["revision"] == 1 and meta["guid"]


def _fresh_show(tmp_path: Path) -> Path:
    r = run("init", "show", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return tmp_path / "show"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("explicit = false", 'explicit = "sometimes"'), r"show\.explicit is invalid"),
        (lambda t: re.sub(r'(?m)^title = .*\n', "", t, count=1), r"show\.title is missing"),
        (lambda t: t.replace("[writer]", "[writer]\ncolour = 3"), r"writer\.colour is not a known setting"),
        (lambda t: t.replace("[show]", "[show"), r"not valid TOML"),
    ],
    ids=["bad-type", "missing-title", "unknown-key", "broken-toml"],
)
def test_bad_show_toml_is_one_line_error(tmp_path: Path, edit, expected: str) -> None:  # noqa: ANN001
    show = _fresh_show(tmp_path)
    toml = show / "show.toml"
    toml.write_text(edit(toml.read_text(encoding="utf-8")), encoding="utf-8")
    before = snapshot(show / "episodes")
    r = run("make", cwd=show)
    assert r.returncode == 1
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "show.toml" in lines[0]
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in r.stderr
    assert snapshot(show / "episodes") == before


def test_digest_without_headlines_is_one_line_error(tmp_path: Path) -> None:
    show = _fresh_show(tmp_path)
    empty = show / "sources" / "empty.md"
    empty.write_text("---\ntitle: 空白摘要\n---\n\n## 今日焦點\n\n_本日暫無相關動態_\n", encoding="utf-8")
    before = snapshot(show / "episodes")
    r = run("make", "--source", str(empty), cwd=show)
    assert r.returncode == 1
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "empty.md" in lines[0]
    assert "Traceback" not in r.stderr
    assert snapshot(show / "episodes") == before


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    show = _fresh_show(tmp_path)
    r = run("init", str(show), cwd=tmp_path)
    assert r.returncode == 1 and "already exists" in r.stderr


def test_outside_a_show_folder(tmp_path: Path) -> None:
    r = run("make", cwd=tmp_path)
    assert r.returncode == 1 and "podcast init" in r.stderr


def test_init_copies_voices_and_sample(tmp_path: Path) -> None:
    show = _fresh_show(tmp_path)
    assert (show / "voices" / "default.toml").is_file()
    assert (show / "voices" / "lexicon.toml").is_file()
    assert (show / "sources" / "sample-digest.md").is_file()
