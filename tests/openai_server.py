"""A fake OpenAI-compatible server on 127.0.0.1 for the LLM writer's tests.

It answers ``POST /v1/chat/completions`` the way the OpenAI API does, driven
by a queue of scripted behaviours (one per request; "good" when the queue is
empty), and records every request body. A "good" answer is built from the
request's own ``<source id="n">`` blocks, copying sentences from them, so it
is grounded by construction.

Behaviours: good, simplified (good, in Simplified Chinese), malformed,
missing (JSON without required fields), bad_ref (cites id 99), invented
(adds a number no source has), injected (obeys an instruction found in a
source), 429 (Retry-After: 1), timeout (sleeps past the client's timeout),
500, no_json_mode (400 when response_format is sent, else good).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import opencc

_SOURCE = re.compile(r'<source id="(\d+)">\s*(.*?)</source>', re.S)
_THEME = re.compile(r'<theme id="(\d+)">')
_T2S = opencc.OpenCC("t2s")


def _sentences(block: str) -> list[str]:
    body = block.split("內容：", 1)[-1]
    parts = re.split(r"(?<=[。！？])|(?<=[.!?])\s+", body)
    return [p.strip() for p in parts if len(p.strip()) >= 6]


def good_story(request: dict) -> dict:
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    blocks = [(int(i), body) for i, body in _SOURCE.findall(user)]
    first_id, first = blocks[0]
    sents = _sentences(first) or ["（無內容）"]
    subsections = []
    for k, (sid, body) in enumerate(blocks[:3]):
        ss = _sentences(body) or sents
        subsections.append(
            {"title": f"重點整理 {k + 1}", "bullets": [{"text": s, "refs": [sid]} for s in ss[:3]]}
        )
    if len(subsections) < 2:
        subsections.append({"title": "更多細節", "bullets": [{"text": s, "refs": [first_id]} for s in sents[-2:]]})
    return {
        "summary_bullet": {"text": sents[0], "refs": [first_id]},
        "deep_dive": {"title": "深入看這則新聞", "subsections": subsections},
    }


def good_episode(request: dict) -> dict:
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    n = len(_THEME.findall(user))
    return {"title": "本集科技新聞重點", "themes": [f"主題之{i}" for i in range(1, n + 1)]}


def is_story_request(request: dict) -> bool:
    return any("<source id=" in m["content"] for m in request["messages"] if m["role"] == "user")


def good_answer(request: dict) -> dict:
    return good_story(request) if is_story_request(request) else good_episode(request)


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as srv:``; ``srv.base_url`` ends in /v1."""

    def __init__(self, behaviours: list[str] | None = None, *, timeout_sleep: float = 3.0) -> None:
        self.queue: deque[str] = deque(behaviours or [])
        self.requests: list[dict[str, Any]] = []
        self.served: list[str] = []
        self.timeout_sleep = timeout_sleep
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def story_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if is_story_request(r)]

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # wake any "timeout" handler still sleeping
        self.server.shutdown()
        self.server.server_close()

    def _next(self, body: dict) -> str:
        with self._lock:
            self.requests.append(body)
            b = self.queue.popleft() if self.queue else "good"
            self.served.append(b)
            return b

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout behaviour)

            def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
                self._send(status, {"error": {"message": message, "type": "fake", "code": status}}, headers)

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._error(404, f"no route {self.path}")
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                behaviour = fake._next(body)
                content = self._content(behaviour, body)
                if content is None:
                    return
                self._send(200, {
                    "id": f"chatcmpl-fake{len(fake.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                })

            def _content(self, behaviour: str, body: dict) -> str | None:
                if behaviour == "429":
                    self._error(429, "rate limited", {"Retry-After": "1"})
                    return None
                if behaviour == "500":
                    self._error(500, "internal error")
                    return None
                if behaviour == "timeout":
                    fake._release.wait(fake.timeout_sleep)
                    self._error(504, "too late")
                    return None
                if behaviour == "no_json_mode":
                    if "response_format" in body:
                        self._error(400, "response_format is not supported by this server")
                        return None
                    behaviour = "good"
                if behaviour == "malformed":
                    return '{"summary_bullet": {"text": "半個答案'
                if behaviour == "missing":
                    return json.dumps({"summary_bullet": {"text": "只有文字沒有來源"}}, ensure_ascii=False)
                answer = good_answer(body)
                if behaviour == "bad_ref" and "summary_bullet" in answer:
                    answer["summary_bullet"]["refs"] = [99]
                elif behaviour == "invented" and "summary_bullet" in answer:
                    answer["summary_bullet"]["text"] = "這家公司今年營收高達 987 億美元，全球第一"
                elif behaviour == "injected" and "summary_bullet" in answer:
                    answer["summary_bullet"]["text"] = "Zorblax 公司宣布所有產品永久免費，股價上漲 300%"
                elif behaviour == "fenced":
                    return "```json\n" + json.dumps(answer, ensure_ascii=False) + "\n```"
                text = json.dumps(answer, ensure_ascii=False)
                if behaviour == "simplified":
                    text = _T2S.convert(text)
                return text

        return Handler
