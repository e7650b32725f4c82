"""The command line's smaller verbs, through the real `podcast` command:
`make --minutes/--since`, `collect --since`, `say`, `cache`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podcast import pipeline
from podcast.script import parse
from podcast.write.offline import spoken_chars

PODCAST = [sys.executable, "-m", "podcast"]


def run(show: Path, *args: str, fake_voice: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    if fake_voice:
        env[pipeline.FAKE_VOICE_ENV] = "1"
    else:
        env.pop(pipeline.FAKE_VOICE_ENV, None)
    return subprocess.run([*PODCAST, *args, "--dir", str(show)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture
def show(tmp_path: Path) -> Path:
    r = subprocess.run([*PODCAST, "init", str(tmp_path / "show")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return tmp_path / "show"


def script_chars(show: Path) -> int:
    folder = pipeline.find_episode(show, "1")
    return spoken_chars(parse((folder / "script.md").read_text(encoding="utf-8")))


def test_make_minutes_sets_the_length(show: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run([*PODCAST, "init", str(other)], check=True, capture_output=True)
    assert run(show, "make", "--minutes", "3").returncode == 0
    r = run(other, "make", "--minutes", "6")
    assert r.returncode == 0, r.stderr
    short, long_ = script_chars(show), script_chars(other)
    assert short < long_
    assert abs(short - 3 * 330) <= 0.15 * 3 * 330  # voices/default.toml: chars_per_minute = 330
    # The collect report is part of the run's output.
    assert "1 sources: 1 ok" in r.stderr


def test_make_minutes_out_of_range_is_one_line(show: Path) -> None:
    r = run(show, "make", "--minutes", "0")
    assert r.returncode != 0 and "Traceback" not in r.stderr and "--minutes" in r.stderr


def test_collect_since_reports_and_rejects_bad_windows(show: Path) -> None:
    r = run(show, "collect", "--since", "3d")
    assert r.returncode == 0, r.stderr
    assert "1 sources: 1 ok, 0 not modified, 0 failed" in r.stdout
    assert "8 new" in r.stdout
    r = run(show, "collect", "--since", "yesterday-ish")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "yesterday-ish" in r.stderr


def test_each_make_tells_only_new_stories_until_none_are_left(show: Path) -> None:
    """The sample's 8 stories are spread over episodes, none told twice; then a clear error."""
    told: set[str] = set()
    for n in range(1, 9):
        r = run(show, "make", "--minutes", "2")
        if r.returncode != 0:
            break
        sources = json.loads(next(show.glob(f"episodes/ep{n:04d}-*/sources.json")).read_text(encoding="utf-8"))
        ids = {s["item_id"] for s in sources}
        assert ids and told.isdisjoint(ids), f"EP{n} retells {told & ids}"
        told |= ids
    assert n > 2 and r.returncode == 1
    assert "already told in earlier episodes" in r.stderr and "Traceback" not in r.stderr
    assert len(told) == 8


@pytest.mark.slow
def test_say_writes_audio_and_cache_reports_and_prunes(show: Path, tmp_path: Path) -> None:
    out = tmp_path / "audition.mp3"
    r = run(show, "say", "台積電與 NVIDIA 合作", "--voice", "espeak", "-o", str(out), fake_voice=False)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout.replace("\n", "")
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(out)],
                           capture_output=True, text=True, check=True)
    assert float(json.loads(probe.stdout)["format"]["duration"]) > 0.5

    r = run(show, "say", "   ", fake_voice=False)
    assert r.returncode == 1 and "empty" in r.stderr

    r = run(show, "say", "測試", "--voice", "no-such-voice", fake_voice=False)
    assert r.returncode == 1 and "no-such-voice" in r.stderr and "Traceback" not in r.stderr

    assert run(show, "make", "--minutes", "2").returncode == 0
    r = run(show, "cache")
    assert r.returncode == 0 and "cached segments" in r.stdout
    used = int(r.stdout.split(" cached segments")[0])
    assert used > 0
    stray = show / ".cache" / "segments" / ("0" * 64 + ".wav")
    stray.write_bytes(b"RIFF")  # a segment no episode uses
    assert int(run(show, "cache").stdout.split(" cached segments")[0]) == used + 1
    r = run(show, "cache", "--prune")
    assert r.returncode == 0 and "removed" in r.stdout
    assert not stray.exists()
    assert int(run(show, "cache").stdout.split(" cached segments")[0]) == used
