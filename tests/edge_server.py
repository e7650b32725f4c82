"""A loopback stand-in for the Edge read-aloud websocket service.

It speaks the protocol as edge-tts 7.x parses it (see edge_tts/communicate.py):
the client sends a ``Path:speech.config`` and a ``Path:ssml`` text message;
the server answers ``Path:turn.start``, ``Path:response``, one
``Path:audio.metadata`` message per word (Offset/Duration in 100-ns ticks),
binary frames (2-byte big-endian header length, ``Path:audio`` headers with
``Content-Type:audio/mpeg``, then MP3 bytes of a real sine encoded by
ffmpeg, as long as the text), an empty untyped closing frame, ``Path:turn.end``.

It can fail the way the real service does: ``no_audio``, ``http_403``,
``reset`` (TCP dropped mid-stream), ``timeout`` (never answers), for every
connection or for the first ``fail_first_n``. It counts connections and the
most that were open at once, and keeps every SSML it received.

The server runs in a background thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import unescape

from aiohttp import WSMsgType, web

PATH = "/consumer/speech/synthesize/readaloud/edge/v1"
MODES = ("ok", "no_audio", "http_403", "reset", "timeout")
_WORD = re.compile(r"[\u3400-\u9fff]|[A-Za-z0-9]+")


def sine_mp3(ms: int) -> bytes:
    """A real 24 kHz / 48 kbit/s mono MP3 of a sine, ``ms`` long, without a Xing header (like the service)."""
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"sine=frequency=330:sample_rate=24000:duration={ms / 1000:.3f}",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "48k", "-write_xing", "0", "-f", "mp3", "pipe:1"],
        capture_output=True, check=True,
    )
    return proc.stdout


def text_frame(path: str, body: str, request_id: str) -> str:
    return (f"X-RequestId:{request_id}\r\nContent-Type:application/json; charset=utf-8\r\n"
            f"Path:{path}\r\n\r\n{body}")


def audio_frame(data: bytes, request_id: str, typed: bool = True) -> bytes:
    headers = f"X-RequestId:{request_id}\r\n" + ("Content-Type:audio/mpeg\r\n" if typed else "")
    headers += f"X-StreamId:{request_id[:8]}\r\nPath:audio\r\n"
    raw = headers.encode()
    return len(raw).to_bytes(2, "big") + raw + data


@dataclass
class Request:
    """What one connection sent: query, headers, and the two text messages."""

    query: dict[str, str]
    headers: dict[str, str]
    config: str = ""
    ssml: str = ""
    text: str = ""
    sent_ms: int = 0  # length of the MP3 sent back


@dataclass
class EdgeServer:
    ms_per_char: int = 80
    delay: float = 0.0  # seconds to wait before answering, so overlapping requests can be seen
    mode: str = "ok"
    fail_first_n: int | None = None  # None: every connection uses ``mode``; n: the first n do
    fail_text: str | None = None  # only requests whose text contains this use ``mode`` (not http_403)
    connections: int = 0
    max_concurrent: int = 0
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._active = 0
        self._lock = threading.Lock()
        self._mp3: dict[int, bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    # ---- control (called from the test's thread)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}?TrustedClientToken=test-token"

    def configure(self, mode: str = "ok", fail_first_n: int | None = None, delay: float = 0.0,
                  fail_text: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        with self._lock:
            self.mode, self.fail_first_n, self.delay, self.fail_text = mode, fail_first_n, delay, fail_text
            self.connections = self.max_concurrent = 0
            self.requests = []

    def start(self) -> EdgeServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="edge-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    # ---- inside the server's loop

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _sine(self, ms: int) -> bytes:
        if ms not in self._mp3:
            self._mp3[ms] = sine_mp3(ms)
        return self._mp3[ms]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.connections += 1
            n = self.connections
            fail = self.fail_first_n is None or n <= self.fail_first_n
            mode = self.mode if fail else "ok"
            record = Request(dict(request.query), dict(request.headers))
            self.requests.append(record)
        if mode == "http_403":
            return web.Response(status=403, text="Forbidden")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        with self._lock:
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
        try:
            await self._exchange(request, ws, record, mode)
        finally:
            with self._lock:
                self._active -= 1
            self._sockets.discard(ws)
        return ws

    async def _exchange(self, request: web.Request, ws: web.WebSocketResponse, record: Request, mode: str) -> None:
        for _ in range(2):
            msg = await ws.receive()
            if msg.type != WSMsgType.TEXT:
                return
            if "Path:speech.config" in msg.data:
                record.config = msg.data
            elif "Path:ssml" in msg.data:
                record.ssml = msg.data.split("\r\n\r\n", 1)[1]
        m = re.search(r"<prosody[^>]*>(.*)</prosody>", record.ssml, re.S)
        record.text = unescape(m.group(1)) if m else ""
        if self.fail_text is not None:  # fail only the requests carrying this text
            mode = self.mode if self.fail_text in record.text else "ok"
        if mode == "timeout":
            async for _ in ws:  # say nothing until the client gives up
                pass
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        rid = uuid.uuid4().hex
        await ws.send_str(text_frame("turn.start", '{"context":{"serviceTag":"loopback"}}', rid))
        await ws.send_str(text_frame("response", '{"context":{"serviceTag":"loopback"},"audio":{"type":"inline"}}',
                                     rid))
        if mode == "no_audio":
            await ws.send_str(text_frame("turn.end", "{}", rid))
            return
        words = _WORD.findall(record.text) or [record.text]
        ms = max(300, self.ms_per_char * len(record.text))
        record.sent_ms = ms
        mp3 = self._sine(ms)
        chunks = [mp3[i:i + 2048] for i in range(0, len(mp3), 2048)]
        tick = ms * 10_000 / len(words)  # 100-ns ticks per word
        for i in range(max(len(words), len(chunks))):
            if i < len(words):
                meta = {"Metadata": [{"Type": "WordBoundary", "Data": {
                    "Offset": round(i * tick), "Duration": round(tick * 0.8),
                    "text": {"Text": words[i], "Length": len(words[i]), "BoundaryType": "WordBoundary"}}}]}
                await ws.send_str(text_frame("audio.metadata", json.dumps(meta, ensure_ascii=False), rid))
            if i < len(chunks):
                await ws.send_bytes(audio_frame(chunks[i], rid))
                if mode == "reset":
                    await asyncio.sleep(0.05)  # let the first frame leave, then drop the TCP connection
                    assert request.transport is not None
                    request.transport.abort()
                    return
        await ws.send_bytes(audio_frame(b"", rid, typed=False))
        await ws.send_str(text_frame("turn.end", "{}", rid))
