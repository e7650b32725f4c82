"""Benchmark the mix stage against a floor measured in the same run.

For a 15- and a 60-minute episode built from ~10 s speech-like segments
(24 kHz mono WAVs, as the voice stage leaves them), this times the whole
``mix()`` (assemble + master + encode + verify + tag) in a child process and
compares it with a bare ``ffmpeg`` MP3 encode of the same 44.1 kHz PCM.
Memory is the child's own peak RSS (ru_maxrss) plus the peak RSS (VmHWM,
sampled from /proc every 20 ms) of the ffmpeg processes it runs at the same
time (encoder + verifier), as a ratio to the raw 16-bit PCM of the episode.
(ru_maxrss of the children is useless here: a forked child inherits the
parent's high-water mark until exec.)

    python scripts/bench_mix.py            # 15 and 60 minutes
    python scripts/bench_mix.py 5          # just a 5-minute episode

Targets: time <= 2x floor, memory <= 1.5x raw PCM.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEG_SECONDS = 10.0
SEG_RATE = 24000
POOL = 24  # distinct segment recordings; longer episodes reuse them


def speechlike(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Modulated harmonics + a little noise, with syllable rhythm and short gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 50 * np.sin(2 * np.pi * 0.35 * t + seed) + 15 * np.sin(2 * np.pi * 2.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = np.zeros_like(t)
    for k in range(1, 24):
        x += np.sin(k * phase + rng.uniform(0, 6)) / k
    x += 0.05 * np.convolve(rng.standard_normal(len(t)), np.ones(6) / 6, mode="same")
    syll = np.clip(np.sin(2 * np.pi * (3.2 + 0.3 * (seed % 5)) * t), 0, None) ** 0.6
    phrase = (np.sin(2 * np.pi * 0.23 * t + seed) > -0.6).astype(float)
    level = 0.08 + 0.04 * (seed % 4)
    pad = np.zeros(int(0.25 * sr))
    return np.concatenate([pad, x * syll * phrase * level, pad])


def make_pool(folder: Path) -> list[Path]:
    paths = []
    for i in range(POOL):
        p = folder / f"pool{i:02d}.wav"
        x = speechlike(SEG_SECONDS, SEG_RATE, i)
        with wave.open(str(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SEG_RATE)
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        paths.append(p)
    return paths


def child(spec_path: str) -> None:
    """Run mix() once (in its own process, so its peak RSS is its own) and print JSON."""
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from podcast.config import AudioConfig
    from podcast.mix import EpisodeTags, mix
    from podcast.models import VoicedSegment

    spec = json.loads(Path(spec_path).read_text())
    segs = [
        VoicedSegment(id=f"s{i:04d}", chapter=f"第 {i // 30 + 1} 段", text="這是一段測試用的文字，內容不重要。" * 3,
                      pause_ms=350, audio=Path(p), duration_ms=int(SEG_SECONDS * 1000), hash=str(i), engine="bench")
        for i, p in enumerate(spec["segments"])
    ]
    tags = EpisodeTags(title="bench", show="bench", author="bench", episode=1, date=dt.date(2026, 1, 1))
    rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = mix(segs, Path(spec["out"]), AudioConfig(), tags)
    elapsed = time.perf_counter() - t0
    print(json.dumps({
        "elapsed": elapsed,
        "duration_ms": result.duration_ms,
        "lufs": result.loudness_lufs,
        "tp": result.true_peak_db,
        "rss_start_kb": rss_start,
        "rss_imported_kb": rss_imported,
        "rss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def _sample_tree(pid: int, hwm: dict[int, tuple[str, int]]) -> int:
    """Sum of VmRSS (kB) over pid and its descendants; records each one's VmHWM in ``hwm``."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields.get("VmRSS", "0 kB").split()[0])
        peak = int(fields.get("VmHWM", "0 kB").split()[0])
        name = fields.get("Name", "").strip()
        hwm[p] = (name, max(peak, hwm.get(p, ("", 0))[1]))
        total += rss
        todo += [int(k) for k in kids]
    return total


def bench(minutes: float, pool: list[Path], work: Path) -> dict:
    from podcast.mix.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg()
    n = math.ceil(minutes * 60 / 9.9)  # a segment after trimming, plus its pause, is ~9.9 s
    out = work / f"ep{minutes:g}"
    spec = work / f"spec{minutes:g}.json"
    spec.write_text(json.dumps({"segments": [str(pool[i % len(pool)]) for i in range(n)], "out": str(out)}))
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    hwm: dict[int, tuple[str, int]] = {}
    peak_sampled = 0
    while proc.poll() is None:
        peak_sampled = max(peak_sampled, _sample_tree(proc.pid, hwm))
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(stderr)
    r = json.loads(stdout.strip().splitlines()[-1])
    ffmpeg_hwm = sorted((kb for name, kb in hwm.values() if "ffmpeg" in name), reverse=True)

    # The floor: the same PCM (decoded back from the episode, untimed), bare ffmpeg MP3 encode.
    pcm = work / f"floor{minutes:g}.wav"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(out / "episode.mp3"), "-c:a", "pcm_s16le", str(pcm)],
                   check=True)
    t0 = time.perf_counter()
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(pcm), "-c:a", "libmp3lame", "-b:a", "64k",
                    str(work / "floor.mp3")], check=True)
    floor = time.perf_counter() - t0
    raw_bytes = pcm.stat().st_size - 44
    pcm.unlink()

    ff_kb = sum(ffmpeg_hwm[:2])  # the two that run at once
    peak_kb = r["rss_self_kb"] + ff_kb
    return {
        "minutes": r["duration_ms"] / 60000,
        "segments": n,
        "mix_s": r["elapsed"],
        "floor_s": floor,
        "time_ratio": r["elapsed"] / floor,
        "raw_pcm_mb": raw_bytes / 1e6,
        "python_peak_mb": r["rss_self_kb"] / 1e3,
        "python_after_imports_mb": r["rss_imported_kb"] / 1e3,
        "ffmpeg_peak_mb": ff_kb / 1e3,
        "mem_ratio": peak_kb * 1024 / raw_bytes,
        "sampled_tree_mb": peak_sampled / 1e3,
        "lufs": r["lufs"],
        "tp": r["tp"],
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    lengths = [float(a) for a in sys.argv[1:]] or [15.0, 60.0]
    with tempfile.TemporaryDirectory(prefix="bench_mix.") as tmp:
        work = Path(tmp)
        pool = make_pool(work)
        print(f"cpus={os.cpu_count()}  segments ~{SEG_SECONDS:g}s @ {SEG_RATE} Hz mono, {POOL} distinct recordings")
        print(f"{'min':>6} {'segs':>5} {'mix s':>7} {'floor s':>8} {'time x':>7} {'raw MB':>7} "
              f"{'py MB':>6} {'(imports)':>9} {'ffmpeg MB':>9} {'mem x':>6} {'tree MB':>7} {'LUFS':>6} {'dBTP':>5}")
        for minutes in lengths:
            b = bench(minutes, pool, work)
            print(f"{b['minutes']:6.1f} {b['segments']:5d} {b['mix_s']:7.2f} {b['floor_s']:8.2f} {b['time_ratio']:7.2f} "
                  f"{b['raw_pcm_mb']:7.1f} {b['python_peak_mb']:6.1f} {b['python_after_imports_mb']:9.1f} "
                  f"{b['ffmpeg_peak_mb']:9.1f} {b['mem_ratio']:6.2f} {b['sampled_tree_mb']:7.1f} {b['lufs']:6.1f} {b['tp']:5.1f}")
        print("targets: time x <= 2.0 (mix vs bare ffmpeg encode), mem x <= 1.5 (python + 2 ffmpeg vs raw PCM);")
        print("py MB (imports) = the child's RSS after importing podcast, before mix() starts;")
        print("tree MB = largest sampled sum of RSS over the child and its ffmpeg processes")


if __name__ == "__main__":
    main()
