"""The edge-tts engine against a real websocket server on loopback (tests/edge_server.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import edge_tts
import edge_tts.communicate
import numpy as np
import pytest
from edge_server import EdgeServer
from edge_tts.data_classes import TTSConfig
from hypothesis import given, settings
from hypothesis import strategies as st

from podcast.config import VoicePreset, load_preset
from podcast.errors import PodcastError
from podcast.voice.edge import (
    ENV_URL,
    KNOWN_VOICES,
    EdgeEngine,
    pitch_param,
    rate_param,
    split_requests,
    volume_param,
)

REPO = Path(__file__).resolve().parents[1]
HSIAOCHEN = VoicePreset(name="edge-hsiaochen", engine="edge", voice="zh-TW-HsiaoChenNeural",
                        rate=1.1, pitch=2.0, volume=-6.0, fallback="default")
TEXT = "今天的科技新聞很精彩。GPU 供應依然吃緊！"
LONG = TEXT + "下週還有三場發表會，我們會持續追蹤。"
MP3_SLACK_MS = 120  # decoder delay and frame padding of a Xing-less MP3


@pytest.fixture(scope="module")
def server() -> Iterator[EdgeServer]:
    srv = EdgeServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def edge(server: EdgeServer) -> EdgeServer:
    server.configure("ok")
    return server


def engine(server: EdgeServer, **kw: object) -> EdgeEngine:
    opts: dict = {"url": server.url, "base_delay": 0.01, "receive_timeout": 2.0, "connect_timeout": 2.0}
    opts.update(kw)
    return EdgeEngine(**opts)


def ms(audio: np.ndarray, sr: int) -> float:
    return len(audio) * 1000 / sr


def test_success_audio_timings_and_request(edge: EdgeServer) -> None:
    audio, sr, timings = engine(edge).synthesize(TEXT, HSIAOCHEN)
    assert sr == 24000 and audio.dtype == np.float32 and audio.ndim == 1
    assert edge.connections == 1
    req = edge.requests[0]
    assert 0 <= ms(audio, sr) - req.sent_ms < MP3_SLACK_MS
    assert np.abs(audio).max() > 0.1  # the sine came through, not silence
    # one boundary per word the server saw, ascending, inside the audio
    assert [t.text for t in timings] == re.findall(r"[\u3400-\u9fff]|[A-Za-z0-9]+", TEXT)
    starts = [t.start_ms for t in timings]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(t.start_ms < t.end_ms <= ms(audio, sr) for t in timings)
    # the SSML names the voice and carries the preset's prosody
    assert "Microsoft Server Speech Text to Speech Voice (zh-TW, HsiaoChenNeural)" in req.ssml
    assert "rate='+10%'" in req.ssml and "pitch='+27Hz'" in req.ssml and "volume='-50%'" in req.ssml
    assert req.text == TEXT
    assert '"wordBoundaryEnabled":"true"' in req.config
    assert "audio-24khz-48kbitrate-mono-mp3" in req.config
    # what the real service checks is still sent
    assert re.fullmatch(r"[0-9A-F]{16,}(-[0-9A-F]+)?", req.query["Sec-MS-GEC"])
    assert req.query["Sec-MS-GEC-Version"].startswith("2-")
    assert re.fullmatch(r"[0-9a-f]{32}", req.query["ConnectionId"])
    assert req.headers["Origin"].startswith("chrome-extension://")
    assert req.headers["Cookie"].startswith("muid=")


def test_ssml_is_escaped(edge: EdgeServer) -> None:
    engine(edge).synthesize("AT&T 與 <Meta> 的合作。", HSIAOCHEN)
    assert "AT&amp;T 與 &lt;Meta&gt; 的合作。" in edge.requests[0].ssml
    assert edge.requests[0].text == "AT&T 與 <Meta> 的合作。"


@pytest.mark.parametrize(("mode", "failure"), [
    ("no_audio", "no audio received"),
    ("http_403", "HTTP 403"),
    ("reset", "connection reset"),
    ("timeout", "timeout"),
])
def test_failures_are_retried_then_reported(edge: EdgeServer, mode: str, failure: str) -> None:
    edge.configure(mode)
    with pytest.raises(PodcastError) as err:
        engine(edge, tries=3, receive_timeout=0.3).synthesize(LONG, HSIAOCHEN)
    msg = str(err.value)
    assert edge.connections == 3
    assert failure in msg and "zh-TW-HsiaoChenNeural" in msg and "after 3 tries" in msg
    assert LONG[:30] in msg and LONG not in msg  # the text's head, not all of it
    assert "\n" not in msg


@pytest.mark.parametrize("mode", ["reset", "http_403", "no_audio", "timeout"])
def test_fail_first_two_then_succeed(edge: EdgeServer, mode: str) -> None:
    edge.configure(mode, fail_first_n=2)
    audio, sr, timings = engine(edge, tries=4, receive_timeout=0.3).synthesize(TEXT, HSIAOCHEN)
    assert edge.connections == 3
    assert 0 <= ms(audio, sr) - edge.requests[-1].sent_ms < MP3_SLACK_MS
    assert timings


def test_after_a_failure_later_texts_fail_fast_until_one_succeeds(edge: EdgeServer) -> None:
    eng = engine(edge, tries=3)
    edge.configure("no_audio")
    with pytest.raises(PodcastError, match="after 3 tries"):
        eng.synthesize("第一段。", HSIAOCHEN)
    with pytest.raises(PodcastError, match="after 1 try"):
        eng.synthesize("第二段。", HSIAOCHEN)
    assert edge.connections == 4
    edge.configure("ok")
    eng.synthesize("第三段。", HSIAOCHEN)  # the service is back
    edge.configure("no_audio")
    with pytest.raises(PodcastError, match="after 3 tries"):
        eng.synthesize("第四段。", HSIAOCHEN)


def test_backoff_grows(edge: EdgeServer) -> None:
    """Four tries with a 0.1 s base wait at least 0.1 + 0.2 + 0.4 s."""
    edge.configure("no_audio")
    start = time.monotonic()
    with pytest.raises(PodcastError):
        engine(edge, tries=4, base_delay=0.1).synthesize(TEXT, HSIAOCHEN)
    assert time.monotonic() - start >= 0.7
    assert edge.connections == 4


def test_concurrency_limit_is_honoured(edge: EdgeServer) -> None:
    edge.configure("ok", delay=0.2)
    texts = [f"第{i}則新聞的摘要內容。" + "很長" * i for i in range(6)]
    results = engine(edge).synthesize_many(texts, HSIAOCHEN, limit=2)
    assert edge.connections == 6
    assert edge.max_concurrent == 2  # never more than the limit, and it did run in parallel
    sent = {r.text: r.sent_ms for r in edge.requests}
    for text, (audio, sr, _) in zip(texts, results, strict=True):  # results in input order
        assert 0 <= ms(audio, sr) - sent[text] < MP3_SLACK_MS


def test_batch_can_return_failures_per_text(edge: EdgeServer) -> None:
    edge.configure("no_audio")
    out = engine(edge, tries=1).synthesize_many(["一。", "二。"], HSIAOCHEN, return_exceptions=True)
    assert all(isinstance(r, PodcastError) for r in out)
    with pytest.raises(PodcastError):
        engine(edge, tries=1).synthesize_many(["一。", "二。"], HSIAOCHEN)


def test_long_text_is_split_and_joined(edge: EdgeServer) -> None:
    sentences = [f"這是第{n}句，內容講的是晶片與雲端服務的最新發展。" for n in "一二三四五六"]
    text = "".join(sentences)
    audio, sr, timings = engine(edge, max_request_chars=60).synthesize(text, HSIAOCHEN)
    got = [r.text for r in edge.requests]
    assert len(got) == 3 and all(len(t) <= 60 for t in got)
    assert sorted(got, key=text.index) == ["".join(sentences[i:i + 2]) for i in (0, 2, 4)]
    total = sum(r.sent_ms for r in edge.requests)
    assert 0 <= ms(audio, sr) - total < 3 * MP3_SLACK_MS
    starts = [t.start_ms for t in timings]
    assert starts == sorted(starts)
    assert "".join(t.text for t in timings) == re.sub(r"[，。]", "", text)
    # the last request's words are placed after the first two requests' audio
    assert timings[-1].start_ms > total * 2 / 3 and timings[-1].end_ms <= ms(audio, sr)


def test_env_var_sets_endpoint(edge: EdgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_URL, edge.url)
    eng = EdgeEngine()
    assert eng.url == edge.url
    eng.synthesize("環境變數。", HSIAOCHEN)
    assert edge.connections == 1
    monkeypatch.delenv(ENV_URL)
    assert EdgeEngine().url == edge_tts.constants.WSS_URL


def test_synthesize_inside_running_loop(edge: EdgeServer) -> None:
    async def main() -> int:
        audio, _, _ = engine(edge).synthesize("在事件迴圈裡。", HSIAOCHEN)
        return len(audio)

    assert asyncio.run(main()) > 0


def test_reference_client_parses_the_fake_server(edge: EdgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """edge_tts.Communicate itself reads our loopback server: its framing is the real one."""
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", edge.url)

    async def run() -> tuple[int, list[str]]:
        com = edge_tts.Communicate(TEXT, "zh-TW-HsiaoChenNeural", rate="+10%", boundary="WordBoundary")
        size, words = 0, []
        async for chunk in com.stream():
            if chunk["type"] == "audio":
                size += len(chunk["data"])
            else:
                words.append(chunk["text"])
        return size, words

    size, words = asyncio.run(run())
    assert size > 1000 and words[:2] == ["今", "天"]


def test_prosody_parameters() -> None:
    assert rate_param(1.0) == "+0%" and rate_param(1.1) == "+10%" and rate_param(0.8) == "-20%"
    assert pitch_param(0) == "+0Hz" and pitch_param(12, "zh-TW-HsiaoChenNeural") == "+220Hz"
    assert pitch_param(-12, "zh-TW-YunJheNeural") == "-60Hz"
    assert volume_param(0) == "+0%" and volume_param(-6.0206) == "-50%" and volume_param(20) == "+100%"
    for r, p, v in [(0.3, -12, -20), (4.0, 12, 20), (1.0, 0.4, 0.1)]:  # the preset's whole range
        TTSConfig("zh-TW-HsiaoChenNeural", rate_param(r), volume_param(v), pitch_param(p), "WordBoundary")


def test_bad_voice_is_a_podcast_error(edge: EdgeServer) -> None:
    with pytest.raises(PodcastError, match="edge-tts rejects"):
        engine(edge).synthesize("測試。", VoicePreset(engine="edge", voice="not a voice"))
    assert edge.connections == 0


def test_split_requests_prefers_sentence_ends() -> None:
    assert split_requests("第一句。第二句！第三句？", 4) == ["第一句。", "第二句！", "第三句？"]
    assert split_requests("第一句。第二句！第三句？", 8) == ["第一句。第二句！", "第三句？"]
    assert split_requests("一二三四五，六七八九十，甲乙丙丁戊。", 12) == ["一二三四五，六七八九十，", "甲乙丙丁戊。"]
    assert split_requests("一" * 50, 20) == ["一" * 20, "一" * 20, "一" * 10]
    assert split_requests("  \n ", 20) == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="科技新聞GPU AI，。！？、\n ", max_size=300), st.integers(20, 80))
def test_split_requests_keeps_every_character(text: str, limit: int) -> None:
    pieces = split_requests(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_voices_offline_and_presets() -> None:
    assert EdgeEngine().voices() == KNOWN_VOICES
    assert {"zh-TW-HsiaoChenNeural", "zh-TW-YunJheNeural", "zh-TW-HsiaoYuNeural"} <= set(KNOWN_VOICES)
    for name, voice in [("edge-hsiaochen", "zh-TW-HsiaoChenNeural"), ("edge-yunjhe", "zh-TW-YunJheNeural")]:
        preset = load_preset(REPO, name)
        assert (preset.engine, preset.voice, preset.fallback) == ("edge", voice, "default")
        assert preset.voice in KNOWN_VOICES
        load_preset(REPO, preset.fallback)  # the fallback preset exists


# ---------------------------------------------------------------- the voice stage over edge


def test_voice_stage_batches_edge_segments_with_per_segment_fallback(
        edge: EdgeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import podcast.voice as pv
    from podcast.script import SpokenSegment
    from podcast.voice import FunctionEngine, voice
    from podcast.voice.text import Lexicon

    monkeypatch.setattr(pv, "DEFAULT_CONCURRENCY", 2)  # presets without a concurrency setting use this

    edge.configure("no_audio", delay=0.15, fail_text="第四")
    eng = engine(edge, tries=2)
    spare_calls: list[str] = []

    def spare(text: str, preset: VoicePreset) -> np.ndarray:
        spare_calls.append(text)
        return np.full(2400, 0.1, np.float32)

    engines = {"edge": eng, "spare": FunctionEngine("spare", spare)}
    preset = HSIAOCHEN.model_copy(update={"fallback": "backup"})
    backup = VoicePreset(name="backup", engine="spare")
    words = "一二三四五六"
    segs = [SpokenSegment(f"s{i}", "新聞", f"第{w}則新聞。", 200) for i, w in enumerate(words, 1)]
    seen: list[tuple[int, str]] = []
    out = voice(segs, preset, tmp_path, presets={"backup": backup}.__getitem__, engine_factory=engines.__getitem__,
                lexicon=Lexicon(), progress=lambda i, n, v: seen.append((i, v.id)))
    assert [v.id for v in out] == [s.id for s in segs] and seen == [(i, f"s{i}") for i in range(1, 7)]
    assert [v.fell_back for v in out] == [False, False, False, True, False, False]
    assert out[3].engine == "spare" and spare_calls == ["第四則新聞。"]
    assert all(v.engine == "edge" and v.audio.is_file() and v.duration_ms > 300 for i, v in enumerate(out) if i != 3)
    assert edge.max_concurrent == 2  # the segments overlapped, never more than the limit
    assert out[3].retries == 1 and sum(v.retries for v in out) == 1
    # a rerun is all cache, except the segment that fell back (its edge audio was never made)
    edge.configure("ok")
    again = voice(segs, preset, tmp_path, presets={"backup": backup}.__getitem__,
                  engine_factory=engines.__getitem__, lexicon=Lexicon())
    assert [v.cached for v in again] == [True, True, True, False, True, True]
    assert edge.connections == 1 and not any(v.fell_back for v in again)
