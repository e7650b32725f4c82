"""Finding and running ffmpeg.

The library needs only the ``ffmpeg`` binary (never ffprobe, which the
imageio-ffmpeg wheel does not ship). The binary is looked up once: the system
one first, then the one bundled with imageio-ffmpeg; pydub is pointed at it.

The episode encode prefers an ffmpeg with loopback decoders (``-dec``, ffmpeg
7.1+): one process then both encodes the MP3 and decodes its own packets to
hand them back for measuring, instead of a second ffmpeg (≈50 MB more RSS for a
distro build). Whether a binary can is probed once and remembered in
``$XDG_CACHE_HOME/podcast/ffmpeg-loopback.json`` (default ``~/.cache``).
``loopback_ffmpeg`` finds one (the system binary, else the bundled one) or None.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

from podcast.errors import PodcastError
from podcast.util import write_text_atomic

_INSTALL_HINT = "install it with `apt-get install ffmpeg` or `pip install imageio-ffmpeg`"


@lru_cache(maxsize=1)
def find_ffmpeg() -> str:
    """Path of the ffmpeg binary to use; PodcastError if there is none."""
    exe = shutil.which("ffmpeg") or _bundled_ffmpeg()
    if not exe:
        raise PodcastError(f"ffmpeg not found: {_INSTALL_HINT}")
    return exe


def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        return None


def _packaged_ffmpeg() -> str | None:
    """The binary inside the imageio-ffmpeg wheel, found without running it.

    ``get_ffmpeg_exe()`` runs ``ffmpeg -version`` in every new process to validate it;
    the loopback probe (remembered on disk) runs the binary anyway.
    """
    try:
        from imageio_ffmpeg import _utils

        exe = os.path.join(_utils._get_bin_dir(), _utils.FNAME_PER_PLATFORM.get(_utils.get_platform(), ""))
        if os.path.isfile(exe):
            return exe
    except Exception:  # a private API: when it moves, ask the public one
        pass
    return _bundled_ffmpeg()


def _has_loopback(exe: str) -> bool:
    """Whether ``exe`` can decode its own encoder's output (``-dec``): tried on 50 ms of silence."""
    cmd = [exe, "-nostdin", "-hide_banner", "-v", "error", "-f", "lavfi", "-t", "0.05", "-i", "anullsrc=r=8000",
           "-c:a", "libmp3lame", "-f", "null", "-",
           "-dec", "0:0", "-filter_complex", "[dec:0]anull[m]", "-map", "[m]", "-f", "null", "-"]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _probe_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "podcast" / "ffmpeg-loopback.json"


def _has_loopback_cached(exe: str) -> bool:
    """``_has_loopback``, remembered per binary (path, size, mtime) across runs: probing a
    distro ffmpeg costs ≈0.1 s of dynamic linking, a noticeable part of a quick regenerate."""
    try:
        st = os.stat(exe)
    except OSError:
        return False
    key = f"{os.path.realpath(exe)}|{st.st_size}|{st.st_mtime_ns}"
    path = _probe_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), bool):
        return known[key]
    ok = _has_loopback(exe)
    known[key] = ok
    with contextlib.suppress(OSError):  # a read-only home only costs the probe next time
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(known, indent=1))
    return ok


@lru_cache(maxsize=1)
def loopback_ffmpeg() -> str | None:
    """An ffmpeg that supports loopback decoders and libmp3lame, or None."""
    candidates = [find_ffmpeg(), _packaged_ffmpeg()]
    for exe in dict.fromkeys(c for c in candidates if c):
        if _has_loopback_cached(exe):
            return exe
    return None


def configure_pydub() -> None:
    """Point pydub at our ffmpeg (it otherwise only searches PATH, and warns)."""
    from pydub import AudioSegment

    exe = find_ffmpeg()
    AudioSegment.converter = exe
    AudioSegment.ffmpeg = exe  # older pydub attribute name


# Trailer lines ffmpeg prints after the real error; they say nothing about the cause.
_GENERIC = ("Conversion failed", "Error while processing the decoded data", "Error reinitializing filters",
            "Failed to inject frame", "Error while filtering", "Error sending frames", "Exiting normally",
            "Error opening output file")  # ffmpeg 7+: the cause is on the line before


def _last_line(stderr: str) -> str:
    """ffmpeg's last stderr line that says what went wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if not line.startswith(_GENERIC):
            return line
    return lines[-1] if lines else "no error output"


def run_ffmpeg(args: Sequence[str], *, what: str = "running ffmpeg") -> str:
    """Run ``ffmpeg args...`` to completion; return its stderr.

    On failure raise PodcastError carrying ffmpeg's last stderr line.
    """
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    except OSError as exc:
        raise PodcastError(f"cannot run ffmpeg ({cmd[0]}): {exc}; {_INSTALL_HINT}") from exc
    if proc.returncode != 0:
        raise PodcastError(f"ffmpeg failed {what}: {_last_line(proc.stderr)}")
    return proc.stderr


@dataclass
class FFmpegJob:
    """An ffmpeg process running in the background (stderr spooled to a temp file)."""

    proc: subprocess.Popen
    stderr: IO[bytes]
    what: str

    def wait(self) -> str:
        """Wait for exit; return stderr, or raise PodcastError with its last line."""
        code = self.proc.wait()
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace")
        self.stderr.close()
        if code != 0:
            raise PodcastError(f"ffmpeg failed {self.what}: {_last_line(text)}")
        return text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()
        self.stderr.close()


def start_ffmpeg(
    args: Sequence[str], *, what: str, stdin: bool = False, stdout: bool = False, exe: str | None = None
) -> FFmpegJob:
    """Start ``ffmpeg args...`` (``exe``, default find_ffmpeg()) without waiting.

    ``stdin=True`` feeds it through a pipe; ``stdout=True`` gives its standard output as a pipe.
    """
    cmd = [exe or find_ffmpeg(), "-hide_banner", *args]
    if not stdin:
        cmd.insert(1, "-nostdin")
    err = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the FFmpegJob
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=err,
        )
    except OSError as exc:
        err.close()
        raise PodcastError(f"cannot run ffmpeg ({cmd[0]}): {exc}; {_INSTALL_HINT}") from exc
    return FFmpegJob(proc, err, what)
