"""Finding and running ffmpeg.

The library needs only the ``ffmpeg`` binary (never ffprobe, which the
imageio-ffmpeg wheel does not ship). The binary is looked up once: the system
one first, then the one bundled with imageio-ffmpeg; pydub is pointed at it.

The episode encode prefers an ffmpeg with loopback decoders (``-dec``, ffmpeg
7.1+): one process then both encodes the MP3 and decodes its own packets to
measure them, instead of a second ffmpeg (≈50 MB more RSS for a distro build).
``loopback_ffmpeg`` finds one (the system binary, else the bundled one) or None.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

from podcast.errors import PodcastError

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


def _has_loopback(exe: str) -> bool:
    """Whether ``exe`` can decode its own encoder's output (``-dec``): tried on 50 ms of silence."""
    cmd = [exe, "-nostdin", "-hide_banner", "-v", "error", "-f", "lavfi", "-t", "0.05", "-i", "anullsrc=r=8000",
           "-c:a", "libmp3lame", "-f", "null", "-",
           "-dec", "0:0", "-filter_complex", "[dec:0]anull[m]", "-map", "[m]", "-f", "null", "-"]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@lru_cache(maxsize=1)
def loopback_ffmpeg() -> str | None:
    """An ffmpeg that supports loopback decoders and libmp3lame, or None."""
    candidates = [find_ffmpeg(), _bundled_ffmpeg()]
    for exe in dict.fromkeys(c for c in candidates if c):
        if _has_loopback(exe):
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
        if self.proc.stdin and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.stderr.close()


def start_ffmpeg(args: Sequence[str], *, what: str, stdin: bool = False, exe: str | None = None) -> FFmpegJob:
    """Start ``ffmpeg args...`` (``exe``, default find_ffmpeg()) without waiting; ``stdin=True`` feeds a pipe."""
    cmd = [exe or find_ffmpeg(), "-hide_banner", *args]
    if not stdin:
        cmd.insert(1, "-nostdin")
    err = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the FFmpegJob
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    except OSError as exc:
        err.close()
        raise PodcastError(f"cannot run ffmpeg ({cmd[0]}): {exc}; {_INSTALL_HINT}") from exc
    return FFmpegJob(proc, err, what)


_SUMMARY = re.compile(r"Summary:(.*)", re.S)
_INTEGRATED = re.compile(r"I:\s*(-?[\d.]+|-inf|nan)\s*LUFS")
_TRUE_PEAK = re.compile(r"True peak:\s*Peak:\s*(-?[\d.]+|-inf|nan)\s*dBFS", re.S)


def parse_ebur128(stderr: str) -> tuple[float, float | None]:
    """(integrated LUFS, true peak dBFS or None) from the summary ebur128 prints."""
    m = _SUMMARY.search(stderr)
    body = m.group(1) if m else stderr
    i = _INTEGRATED.search(body)
    if not i:
        raise PodcastError(f"could not read ffmpeg's loudness measurement: {_last_line(stderr)}")
    tp = _TRUE_PEAK.search(body)
    return float(i.group(1)), (float(tp.group(1)) if tp else None)
