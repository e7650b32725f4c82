"""Library functions behind ``podcast say`` and ``podcast cache``: real files, real ffmpeg."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from podcast.config import VoicePreset
from podcast.errors import PodcastError
from podcast.publish.episodes import EpisodeMeta, save_episode
from podcast.script import SpokenSegment
from podcast.voice import FunctionEngine, VoiceEngine, voice
from podcast.voice.cache import cache_dir
from podcast.voice.text import Lexicon
from podcast.voice.tools import cache_stats, prune, referenced_hashes, say

REPO = Path(__file__).resolve().parents[1]


class Tone:
    def __init__(self) -> None:
        self.said: list[str] = []

    def __call__(self, text: str, preset: VoicePreset) -> np.ndarray:
        self.said.append(text)
        return (np.sin(np.linspace(0, 300 * 2 * np.pi, 12000)) * 0.3).astype(np.float32)


def make_show(root: Path) -> Path:
    (root / "voices").mkdir(parents=True)
    (root / "show.toml").write_text('[show]\ntitle = "測試"\n', encoding="utf-8")
    for name in ("default", "espeak"):
        shutil.copy(REPO / "voices" / f"{name}.toml", root / "voices" / f"{name}.toml")
    (root / "voices" / "lexicon.toml").write_text('[terms]\n"NVIDIA" = "輝達"\n', encoding="utf-8")
    return root


def factory(tone: Tone):
    eng = FunctionEngine("tone", tone, sample_rate=12000)

    def make(name: str) -> VoiceEngine:
        return eng

    return make


def test_say_applies_lexicon_and_numbers_and_writes_wav(tmp_path: Path) -> None:
    show = make_show(tmp_path / "show")
    tone = Tone()
    path = say("NVIDIA 營收成長 94%", VoicePreset(engine="tone"), show, engine_factory=factory(tone))
    assert tone.said == ["輝達營收成長百分之九十四"]
    assert path.parent == show / ".cache" / "say" and path.suffix == ".wav"
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, 12000, 12000)
    again = say("NVIDIA 營收成長 94%", VoicePreset(engine="tone"), show, engine_factory=factory(tone))
    assert again == path  # same text and voice → same file name
    other = say("NVIDIA 營收成長 95%", VoicePreset(engine="tone"), show, engine_factory=factory(tone))
    assert other != path


def test_say_writes_mp3_by_extension(tmp_path: Path) -> None:
    show = make_show(tmp_path / "show")
    out = tmp_path / "deep" / "try.mp3"
    got = say("今天聊 GPU。", VoicePreset(engine="tone"), show, out, engine_factory=factory(Tone()))
    assert got == out and out.stat().st_size > 1000
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate",
                            "-of", "json", str(out)], capture_output=True, text=True, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "mp3" and stream["sample_rate"] == "12000"
    assert not list(out.parent.glob(".*.tmp"))


def test_say_real_espeak_preset_by_name(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    show = make_show(tmp_path / "show")
    out = say("台積電 2026 年量產。", "espeak", show, tmp_path / "a.wav")
    with wave.open(str(out)) as w:
        assert w.getnframes() / w.getframerate() > 0.5


def test_say_errors_name_the_problem(tmp_path: Path) -> None:
    show = make_show(tmp_path / "show")
    with pytest.raises(PodcastError, match="empty"):
        say("  ", VoicePreset(engine="tone"), show, engine_factory=factory(Tone()))
    with pytest.raises(PodcastError, match="nosuch"):
        say("你好", "nosuch", show)

    def broken(text: str, preset: VoicePreset) -> np.ndarray:
        raise RuntimeError("model exploded")

    with pytest.raises(PodcastError, match="model exploded"):
        say("你好", VoicePreset(engine="x"), show, engine_factory=lambda n: FunctionEngine("x", broken))


def _episode(show: Path, folder: str, hashes: list[str]) -> None:
    d = show / "episodes" / folder
    d.mkdir(parents=True)
    now = dt.datetime(2026, 11, 20, 7, tzinfo=dt.UTC)
    save_episode(d, EpisodeMeta(guid="g", number=1, title="t", slug="a", folder="ep0001-a", pub_date=now,
                                duration_s=1.0, segment_hashes=hashes, generated_at=now))


def test_prune_keeps_only_segments_an_episode_uses(tmp_path: Path) -> None:
    show = make_show(tmp_path / "show")
    tone = Tone()
    segs = [SpokenSegment(f"s{i}", "開場", f"第 {i} 句。", 200) for i in range(1, 5)]
    out = voice(segs, VoicePreset(engine="tone"), show, engine_factory=factory(tone), lexicon=Lexicon())
    hashes = [v.hash for v in out]
    _episode(show, "ep0001-a", hashes[:2])
    _episode(show, ".ep0002-b.partial", hashes[2:3])  # a staging build keeps its segments too
    say("試音", VoicePreset(engine="tone"), show, engine_factory=factory(tone))
    folder = cache_dir(show)
    stale = folder / ".x.wav.abc.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = folder / ".y.wav.def.tmp"
    fresh.write_bytes(b"in progress")

    assert referenced_hashes(show) == set(hashes[:3])
    stats = cache_stats(show)
    assert (stats.segments, stats.referenced, stats.say_files) == (4, 3, 1)
    doomed = out[3].audio.stat().st_size + out[3].audio.with_suffix(".json").stat().st_size
    assert stats.unreferenced_bytes == doomed

    removed, freed = prune(show)
    say_bytes = stats.say_bytes
    assert removed == 2 + 1 + 1  # wav + sidecar, the audition, the stale temp file
    assert freed == doomed + say_bytes + 4
    assert sorted(p.stem for p in folder.glob("*.wav")) == sorted(hashes[:3])
    assert fresh.exists() and not stale.exists()
    assert not list((show / ".cache" / "say").iterdir())
    # the kept segments are still cache hits
    again = voice(segs[:3], VoicePreset(engine="tone"), show, engine_factory=factory(tone), lexicon=Lexicon())
    assert all(v.cached for v in again)
    assert prune(show) == (0, 0)


def test_prune_refuses_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    from podcast.lock import show_lock

    show = make_show(tmp_path / "show")
    with show_lock(show), pytest.raises(PodcastError):
        prune(show)


def test_prune_names_a_broken_episode_json(tmp_path: Path) -> None:
    show = make_show(tmp_path / "show")
    d = show / "episodes" / "ep0001-x"
    d.mkdir(parents=True)
    (d / "episode.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PodcastError, match="ep0001-x"):
        prune(show)


def test_stats_on_an_empty_show(tmp_path: Path) -> None:
    stats = cache_stats(make_show(tmp_path / "show"))
    assert stats.segments == stats.bytes == stats.say_files == 0
