"""edge-tts: Microsoft Edge's online neural voices (zh-TW), the production engine.

We speak the service's small websocket protocol ourselves with aiohttp and
reuse edge_tts for everything the service checks (the Sec-MS-GEC DRM token,
its clock-skew correction, the browser headers, SSML building). Doing the
exchange ourselves, instead of through ``edge_tts.Communicate``, buys three
things the pipeline needs: a configurable endpoint (``PODCAST_EDGE_WSS_URL``,
used by the loopback test server), a connection closed before ``turn.end``
counts as a failure (Communicate returns the truncated audio as if complete),
and exactly one connection per attempt so retries are predictable.

Each text is cut at sentence ends (。！？) into requests of at most
``max_request_chars``; all requests go out concurrently under one semaphore,
each retried with exponential backoff; their MP3s are decoded with ffmpeg and
joined, and the service's word boundaries become :class:`WordTiming` in ms
from the start of the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import subprocess
import threading
from collections.abc import Coroutine
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlencode
from xml.sax.saxutils import escape, unescape

import aiohttp
import numpy as np
from edge_tts import constants as edge_constants
from edge_tts.communicate import (
    connect_id,
    date_to_string,
    mkssml,
    remove_incompatible_characters,
    ssml_headers_plus_data,
)
from edge_tts.data_classes import TTSConfig
from edge_tts.drm import DRM
from edge_tts.exceptions import SkewAdjustmentError

from ..config import VoicePreset
from ..errors import PodcastError
from ..models import WordTiming
from .engines import ENGINES, Synthesis, VoiceEngine

log = logging.getLogger("podcast.voice")

ENV_URL = "PODCAST_EDGE_WSS_URL"
SAMPLE_RATE = 24000  # audio-24khz-48kbitrate-mono-mp3
TICKS_PER_MS = 10_000  # the service counts in 100-ns ticks
DEFAULT_VOICE = "zh-TW-HsiaoChenNeural"
KNOWN_VOICES = ["zh-TW-HsiaoChenNeural", "zh-TW-YunJheNeural", "zh-TW-HsiaoYuNeural"]
# Rough speaking pitch per voice, to turn semitones into the Hz offset the service takes.
_BASE_HZ = {"zh-TW-HsiaoChenNeural": 220.0, "zh-TW-HsiaoYuNeural": 230.0, "zh-TW-YunJheNeural": 120.0}

T = TypeVar("T")


# ---------------------------------------------------------------- parameters

def rate_param(rate: float) -> str:
    """Speed factor → the service's relative rate: 1.0 → "+0%", 1.1 → "+10%", 0.8 → "-20%"."""
    return f"{round((rate - 1.0) * 100):+d}%"


def pitch_param(semitones: float, voice: str = DEFAULT_VOICE) -> str:
    """Semitones → "+NHz" (edge-tts only accepts Hz), relative to the voice's typical pitch."""
    base = _BASE_HZ.get(voice, 180.0 if "Yun" not in voice else 120.0)
    return f"{round(base * (2 ** (semitones / 12) - 1)):+d}Hz"


def volume_param(db: float) -> str:
    """Gain in dB → relative volume "+N%" of amplitude (−6 dB → "-50%"), capped at ±100 %."""
    pct = round((10 ** (db / 20) - 1) * 100)
    return f"{max(-100, min(100, pct)):+d}%"


# ---------------------------------------------------------------- text splitting

_SENTENCE = re.compile(r".+?(?:[。！？!?]+[」』”’）)]*|[.;；](?=\s)|\n+|$)", re.S)
_CLAUSE_END = re.compile(r"[，、；：,;:]")


def split_requests(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into pieces of ≤ max_chars, at sentence ends, then clause marks, then anywhere.

    Small requests come back faster, fail alone, and stay far below the
    service's 4 KB-per-SSML limit (the cut edge-tts would otherwise make on bytes).
    """
    pieces: list[str] = []
    for m in _SENTENCE.finditer(text):
        s = m.group(0).strip()
        while len(s) > max_chars:  # one overlong sentence: cut after the last clause mark that fits
            cut = max((c.end() for c in _CLAUSE_END.finditer(s, 0, max_chars)), default=max_chars)
            pieces.append(s[:cut].strip())
            s = s[cut:].strip()
        if s:
            pieces.append(s)
    out: list[str] = []
    for p in pieces:  # pack whole sentences back together up to the limit
        if out and len(out[-1]) + len(p) <= max_chars:
            out[-1] += p
        else:
            out.append(p)
    return [p for p in out if p]


# ---------------------------------------------------------------- audio

def decode_mp3(data: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """MP3 bytes → mono float32 at ``sample_rate`` through ffmpeg."""
    from ..mix.ffmpeg import find_ffmpeg  # the system one, or imageio-ffmpeg's; says how to install

    exe = find_ffmpeg()
    proc = subprocess.run(
        [exe, "-hide_banner", "-loglevel", "error", "-f", "mp3", "-i", "pipe:0",
         "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "pipe:1"],
        input=data, capture_output=True, check=False,
    )
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _Failure("undecodable audio", msg[-1] if msg else f"ffmpeg exit {proc.returncode}", retry=True)
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


# ---------------------------------------------------------------- protocol

class _Failure(Exception):
    """One failed request; ``kind`` is what the user is told, ``retry`` whether trying again may help."""

    def __init__(self, kind: str, detail: str = "", retry: bool = False) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.retry = retry


def _headers_and_body(raw: bytes, header_end: int, body_start: int) -> tuple[dict[str, str], bytes]:
    headers: dict[str, str] = {}
    for line in raw[:header_end].decode("utf-8", "replace").split("\r\n"):
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip()] = value.strip()
    return headers, raw[body_start:]


def _speech_config(boundary: str) -> str:
    word = boundary == "WordBoundary"
    return (
        f"X-Timestamp:{date_to_string()}\r\n"
        "Content-Type:application/json; charset=utf-8\r\n"
        "Path:speech.config\r\n\r\n"
        + json.dumps({"context": {"synthesis": {"audio": {
            "metadataoptions": {"sentenceBoundaryEnabled": str(not word).lower(),
                                "wordBoundaryEnabled": str(word).lower()},
            "outputFormat": "audio-24khz-48kbitrate-mono-mp3"}}}}, separators=(",", ":"))
        + "\r\n"
    )


class EdgeEngine(VoiceEngine):
    """zh-TW neural voices from the Edge read-aloud service (needs network)."""

    name: ClassVar[str] = "edge"
    version = "1"
    sample_rate = SAMPLE_RATE
    #: The SSML already carries preset.volume; the voice stage should not apply it again.
    applies_volume: ClassVar[bool] = True

    def __init__(
        self,
        *,
        url: str | None = None,
        limit: int = 4,
        tries: int = 4,
        base_delay: float = 0.5,
        connect_timeout: float = 10.0,
        receive_timeout: float = 30.0,
        max_request_chars: int = 300,
        boundary: Literal["WordBoundary", "SentenceBoundary"] = "WordBoundary",
        proxy: str | None = None,
    ) -> None:
        self.url = url or os.environ.get(ENV_URL) or edge_constants.WSS_URL
        self.limit = max(1, limit)
        self.tries = max(1, tries)
        self.base_delay = base_delay
        self.connect_timeout = connect_timeout
        self.receive_timeout = receive_timeout
        self.max_request_chars = max(20, max_request_chars)
        self.boundary = boundary
        self.proxy = proxy
        # Set when a request used up its retries; later requests then try once until one
        # succeeds, so an offline run falls back segment after segment without the full backoff.
        self.failing = False

    # ---- public, synchronous (the voice stage is synchronous)

    def synthesize(self, text: str, preset: VoicePreset) -> Synthesis:
        return self.synthesize_many([text], preset, limit=self.limit)[0]  # type: ignore[return-value]

    def synthesize_many(
        self, texts: list[str], preset: VoicePreset, limit: int | None = None, *,
        return_exceptions: bool = False, retries: list[int] | None = None,
    ) -> list[Synthesis | PodcastError]:
        """Synthesize several texts with at most ``limit`` requests in flight.

        With ``return_exceptions`` a text that failed after all retries gets its
        PodcastError in place of a result, so the caller can fall back per text.
        ``retries``, if given, is filled with how many requests were retried per text.
        """
        return _run(self.asynthesize_many(texts, preset, limit, return_exceptions=return_exceptions,
                                          retries=retries))

    def voices(self, live: bool = False) -> list[str]:
        """The zh-TW voices; ``live`` asks the service (network) and falls back to the known list."""
        if live:
            try:
                import edge_tts

                got = _run(edge_tts.list_voices(proxy=self.proxy))
                names = sorted(v["ShortName"] for v in got if v.get("Locale") == "zh-TW")
                if names:
                    return names
            except Exception as exc:  # offline or the list moved: the known voices still work
                log.warning("edge-tts voice list unavailable (%s); showing the known zh-TW voices", exc)
        return list(KNOWN_VOICES)

    # ---- async core

    async def asynthesize_many(
        self, texts: list[str], preset: VoicePreset, limit: int | None = None, *,
        return_exceptions: bool = False, retries: list[int] | None = None,
    ) -> list[Synthesis | PodcastError]:
        sem = asyncio.Semaphore(max(1, limit or self.limit))
        config = self._config(preset)
        counts = [[0] for _ in texts]
        results = await asyncio.gather(
            *(self._one_text(t, config, sem, n) for t, n in zip(texts, counts, strict=True)),
            return_exceptions=True)
        if retries is not None:
            retries[:] = [n[0] for n in counts]
        for r in results:
            if isinstance(r, BaseException) and not (return_exceptions and isinstance(r, PodcastError)):
                raise r
        return list(results)  # type: ignore[arg-type]

    def _config(self, preset: VoicePreset) -> TTSConfig:
        voice = preset.voice or DEFAULT_VOICE
        try:
            return TTSConfig(voice, rate_param(preset.rate), volume_param(preset.volume),
                             pitch_param(preset.pitch, voice), self.boundary)
        except ValueError as exc:
            raise PodcastError(
                f"voice preset {preset.name or voice!r}: edge-tts rejects its settings ({exc}); "
                f"use a voice like {DEFAULT_VOICE} and rate/pitch/volume within range") from None

    async def _one_text(self, text: str, config: TTSConfig, sem: asyncio.Semaphore,
                        retried: list[int] | None = None) -> Synthesis:
        parts = split_requests(text, self.max_request_chars)
        if not parts:
            return np.zeros(0, np.float32), SAMPLE_RATE, []
        done = await asyncio.gather(*(self._with_retries(p, config, sem, retried) for p in parts))
        audio: list[np.ndarray] = []
        timings: list[WordTiming] = []
        at = 0  # samples so far: each request's boundaries are relative to its own audio
        for samples, words in done:
            start_ms = at * 1000 // SAMPLE_RATE
            timings += [WordTiming(start_ms + s, start_ms + e, w) for s, e, w in words]
            audio.append(samples)
            at += len(samples)
        return np.concatenate(audio), SAMPLE_RATE, timings

    async def _with_retries(
        self, text: str, config: TTSConfig, sem: asyncio.Semaphore, retried: list[int] | None = None,
    ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        last: _Failure | None = None
        tries = 1 if self.failing else self.tries
        for attempt in range(tries):
            if attempt:
                if retried is not None:
                    retried[0] += 1
                delay = self.base_delay * 2 ** (attempt - 1)
                await asyncio.sleep(delay + random.uniform(0, delay / 2))  # jitter: don't retry in lockstep
            try:
                async with sem:
                    mp3, words = await self._request(text, config)
                samples = await asyncio.to_thread(decode_mp3, mp3)
                self.failing = False
                return samples, words
            except _Failure as exc:
                last = exc
                log.info("edge-tts %s: try %d/%d failed: %s", config.voice, attempt + 1, tries, exc)
                if not exc.retry:
                    break
        assert last is not None
        self.failing = True
        voice = _short_voice(config.voice)
        tried = f"after {attempt + 1} tr{'ies' if attempt else 'y'}"
        raise PodcastError(
            f"edge-tts voice {voice}: {last} ({tried}) for text {_head(text)!r}; "
            "check the network connection, or rely on the preset's fallback voice")

    async def _request(self, text: str, config: TTSConfig) -> tuple[bytes, list[tuple[int, int, str]]]:
        """One websocket exchange: speech.config + ssml out; metadata, audio, turn.end back."""
        url = self._connect_url()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        audio = bytearray()
        words: list[tuple[int, int, str]] = []
        try:
            async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:
                async with asyncio.timeout(self.connect_timeout):
                    ws = await session.ws_connect(
                        url, compress=15, proxy=self.proxy, autoping=True,
                        headers=DRM.headers_with_muid(edge_constants.WSS_HEADERS),
                    )
                async with ws:
                    await ws.send_str(_speech_config(config.boundary))
                    body = escape(remove_incompatible_characters(text))
                    await ws.send_str(ssml_headers_plus_data(connect_id(), date_to_string(), mkssml(config, body)))
                    while True:
                        async with asyncio.timeout(self.receive_timeout):
                            msg = await ws.receive()
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            raw = msg.data.encode("utf-8")
                            end = raw.find(b"\r\n\r\n")
                            headers, data = _headers_and_body(raw, end, end + 4)
                            path = headers.get("Path")
                            if path == "audio.metadata":
                                words += _boundaries(data)
                            elif path == "turn.end":
                                break
                            elif path not in ("turn.start", "response"):
                                raise _Failure("unexpected response", f"unknown path {path!r}")
                        elif msg.type == aiohttp.WSMsgType.BINARY:
                            audio += _audio_frame(msg.data)
                        elif msg.type == aiohttp.WSMsgType.ERROR:
                            raise _Failure("connection reset", str(msg.data), retry=True)
                        else:  # CLOSE / CLOSING / CLOSED before turn.end
                            raise _Failure("connection reset", "closed before the end of the audio", retry=True)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 403:
                _adjust_clock(exc)  # a 403 is often our clock being off: the token embeds the time
            raise _Failure(f"HTTP {exc.status} on the websocket handshake", exc.message or "", retry=True) from None
        except TimeoutError:
            raise _Failure("timeout", "no answer from the service", retry=True) from None
        except (aiohttp.ClientConnectionError, ConnectionError, OSError) as exc:
            raise _Failure("connection reset", str(exc) or type(exc).__name__, retry=True) from None
        except aiohttp.ClientError as exc:
            raise _Failure("connection error", str(exc) or type(exc).__name__, retry=True) from None
        if not audio:
            raise _Failure("no audio received", retry=True)
        return bytes(audio), words

    def _connect_url(self) -> str:
        query = urlencode({
            "ConnectionId": connect_id(),
            "Sec-MS-GEC": DRM.generate_sec_ms_gec(),
            "Sec-MS-GEC-Version": edge_constants.SEC_MS_GEC_VERSION,
        })
        return f"{self.url}{'&' if '?' in self.url else '?'}{query}"


def _audio_frame(data: bytes) -> bytes:
    """Binary frame: 2-byte big-endian header length, headers, then MP3 bytes."""
    if len(data) < 2:
        raise _Failure("unexpected response", "binary frame without a header length")
    n = int.from_bytes(data[:2], "big")
    if n + 2 > len(data):
        raise _Failure("unexpected response", "binary frame header longer than the frame")
    headers, body = _headers_and_body(data[2:], n, n)
    if headers.get("Path") != "audio":
        raise _Failure("unexpected response", f"binary frame for path {headers.get('Path')!r}")
    ctype = headers.get("Content-Type")
    if ctype is None and not body:
        return b""  # the service ends a stream with an empty, untyped frame
    if ctype != "audio/mpeg":
        raise _Failure("unexpected response", f"audio frame of type {ctype!r}")
    return body


def _boundaries(data: bytes) -> list[tuple[int, int, str]]:
    out = []
    try:
        for meta in json.loads(data)["Metadata"]:
            if meta.get("Type") in ("WordBoundary", "SentenceBoundary"):
                d = meta["Data"]
                start = round(d["Offset"] / TICKS_PER_MS)
                out.append((start, start + round(d["Duration"] / TICKS_PER_MS), unescape(d["text"]["Text"])))
    except (ValueError, KeyError, TypeError) as exc:
        raise _Failure("unexpected response", f"bad audio.metadata ({exc})") from None
    return out


def _adjust_clock(exc: aiohttp.ClientResponseError) -> None:
    with contextlib.suppress(SkewAdjustmentError):  # no usable Date header: retry as is
        DRM.handle_client_response_error(exc)


def _short_voice(voice: str) -> str:
    """"Microsoft Server Speech Text to Speech Voice (zh-TW, HsiaoChenNeural)" → zh-TW-HsiaoChenNeural."""
    m = re.search(r"\((.+?),\s*(.+)\)$", voice)
    return f"{m.group(1)}-{m.group(2)}" if m else voice


def _head(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:30] + ("…" if len(flat) > 30 else "")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, even when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="edge-tts")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# Importing this module (get_engine("edge") does) replaces the registry's lazy entry with the class.
ENGINES[EdgeEngine.name] = EdgeEngine
