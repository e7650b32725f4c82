"""One run per show at a time: an flock on ``<show>/.podcast.lock``.

The kernel drops an flock when its holder dies (even on SIGKILL), so a stale
lock file never blocks anyone; the PID written into it is only for the message.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import PodcastError

LOCK_FILE = ".podcast.lock"
_POLL_S = 0.1


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


@contextmanager
def show_lock(show_dir: Path, wait: float = 0.0) -> Iterator[Path]:
    """Hold the show's lock for the ``with`` body; wait up to ``wait`` seconds for another run.

    Raises PodcastError naming the PID of the run holding it when the wait runs out.
    """
    path = Path(show_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise PodcastError(f"{path}: cannot open the lock file ({exc.strerror}); check the show folder") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = _holder(fd)
                    who = f"PID {pid}" if pid else "another process"
                    raise PodcastError(
                        f"{Path(show_dir)} is busy: another podcast run ({who}) holds {path}; "
                        "wait for it to finish or pass --wait SECONDS"
                    ) from None
                time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            # Leave the file (removing it would race with a waiter that already opened it).
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
