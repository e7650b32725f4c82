"""Benchmark the mix stage against a floor measured in the same run.

For a 15- and a 60-minute episode built from ~10 s speech-like segments
(24 kHz mono WAVs, as the voice stage leaves them), this times the whole
``mix()`` (assemble + master + encode + verify + tag) in a child process and
compares it with a bare ``ffmpeg`` MP3 encode of the same 44.1 kHz PCM.

Memory, as a ratio to the raw PCM of the episode (44.1 kHz mono 16-bit, i.e.
the decoded episode's size), is measured two ways over the child and every
ffmpeg it runs, by polling /proc every 20 ms:

* RSS (judged): for each sample, the sum over the live processes of each one's
  own peak RSS so far (VmHWM, so a peak between two samples still counts);
  the largest such sum. Shared library pages count in full in every process
  that maps them, so this over-states what the machine really gives up.
  A child caught between fork and exec is skipped: it still shows the
  interpreter's memory (vfork shares it), which once made an ffmpeg appear to
  peak at 50 MiB instead of 33 in about one run in fifteen.
* PSS: the largest sampled sum of Pss from /proc/<pid>/smaps_rollup, which
  splits each shared page among the processes mapping it (a sampled value,
  not a high-water mark).

"idle py" is a separate interpreter doing the same imports and building the
same segment list, without calling mix(): the fixed cost of being a Python
process with numpy, pydantic and the podcast package loaded.

    python scripts/bench_mix.py                # 15 and 60 minutes, 3 runs each
    python scripts/bench_mix.py --runs 5 15    # a 15-minute episode, 5 runs

The machine this runs on is shared and virtual: a single run can be 30 % off
either way. Mix and floor runs therefore alternate, and the ratio is of the medians
(every run's own ratio is printed too). Memory is the worst run's.

Targets: time <= 2x floor, memory (RSS, as above) <= 1.5x raw PCM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import statistics
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


def _segments(spec: dict) -> list:
    from podcast.models import VoicedSegment

    return [
        VoicedSegment(id=f"s{i:04d}", chapter=f"第 {i // 30 + 1} 段", text="這是一段測試用的文字，內容不重要。" * 3,
                      pause_ms=350, audio=Path(p), duration_ms=int(SEG_SECONDS * 1000), hash=str(i), engine="bench")
        for i, p in enumerate(spec["segments"])
    ]


def _self_mem() -> dict:
    st = _fields(Path("/proc/self/status").read_text())
    roll = _fields(Path("/proc/self/smaps_rollup").read_text())
    return {"hwm_kb": _kb(st, "VmHWM"), "pss_kb": _kb(roll, "Pss")}


def idle(spec_path: str) -> None:
    """The baseline: the same imports and segment list as child(), but no mix()."""
    from podcast.config import AudioConfig
    from podcast.mix import EpisodeTags, mix  # noqa: F401

    segs = _segments(json.loads(Path(spec_path).read_text()))
    AudioConfig()
    EpisodeTags(title="bench", show="bench", author="bench", episode=1, date=dt.date(2026, 1, 1))
    print(json.dumps({"segments": len(segs), **_self_mem()}))  # segs stays alive until measured


def child(spec_path: str) -> None:
    """Run mix() once (in its own process, so its peak RSS is its own) and print JSON."""
    from podcast.config import AudioConfig
    from podcast.mix import EpisodeTags, mix

    spec = json.loads(Path(spec_path).read_text())
    segs = _segments(spec)
    tags = EpisodeTags(title="bench", show="bench", author="bench", episode=1, date=dt.date(2026, 1, 1))
    def cpu(who: int) -> float:
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime

    t0, py0, ff0 = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    result = mix(segs, Path(spec["out"]), AudioConfig(), tags)
    elapsed = time.perf_counter() - t0
    print(json.dumps({
        "elapsed": elapsed,
        "duration_ms": result.duration_ms,
        "lufs": result.loudness_lufs,
        "tp": result.true_peak_db,
        "py_cpu": cpu(resource.RUSAGE_SELF) - py0,
        "ff_cpu": cpu(resource.RUSAGE_CHILDREN) - ff0,
        "rss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def _fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _kb(fields: dict[str, str], key: str) -> int:
    return int(fields.get(key, "0 kB").split()[0])


class _Sampler:
    """Polls a process tree: per-process peak RSS (VmHWM) and sampled PSS; see the module doc."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.names: dict[int, str] = {}
        self.hwm: dict[int, int] = {}
        self.rss_sum = self.pss_sum = 0
        self.at_peak: dict[int, int] = {}  # pid -> its VmHWM at the sample with the largest sum

    def sample(self) -> None:
        live: dict[int, tuple[int, int]] = {}
        todo = [self.root]
        while todo:
            pid = todo.pop()
            try:
                st = _fields(Path(f"/proc/{pid}/status").read_text())
                roll = _fields(Path(f"/proc/{pid}/smaps_rollup").read_text())
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue  # exited between listing and reading
            if st.get("State", "").strip().startswith("Z"):
                continue
            name = st.get("Name", "").strip()
            if pid != self.root and name == self.names.get(self.root):
                # A child between fork and exec. Python starts ffmpeg with vfork(), so until the
                # exec the child reports the interpreter's own memory (and the new program's
                # peak starts afresh at exec): counting it would count the interpreter twice.
                todo += [int(k) for k in kids]
                continue
            self.names[pid] = name
            self.hwm[pid] = max(self.hwm.get(pid, 0), _kb(st, "VmHWM"))
            live[pid] = (self.hwm[pid], _kb(roll, "Pss"))
            todo += [int(k) for k in kids]
        rss = sum(h for h, _ in live.values())
        if rss > self.rss_sum:
            self.rss_sum, self.at_peak = rss, {pid: h for pid, (h, _) in live.items()}
        self.pss_sum = max(self.pss_sum, sum(p for _, p in live.values()))


def _run_child(mode: str, spec: Path) -> tuple[dict, _Sampler]:
    proc = subprocess.Popen([sys.executable, __file__, mode, str(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sampler = _Sampler(proc.pid)
    while proc.poll() is None:
        sampler.sample()
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(stderr)
    result = json.loads(stdout.strip().splitlines()[-1])
    return result, sampler


def _encoder() -> str:
    """The ffmpeg mix() encodes with, so the floor is measured with the same LAME build."""
    from podcast.mix.ffmpeg import find_ffmpeg, loopback_ffmpeg

    return loopback_ffmpeg() or find_ffmpeg()


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench(minutes: float, pool: list[Path], work: Path, runs: int) -> dict:
    ffmpeg = _encoder()
    n = math.ceil(minutes * 60 / 9.9)  # a segment after trimming, plus its pause, is ~9.9 s
    out = work / f"ep{minutes:g}"
    spec = work / f"spec{minutes:g}.json"
    spec.write_text(json.dumps({"segments": [str(pool[i % len(pool)]) for i in range(n)], "out": str(out)}))
    base, _ = _run_child("--idle", spec)
    pcm = work / f"floor{minutes:g}.wav"
    mixes: list[tuple[dict, _Sampler]] = []
    floors: list[tuple[float, float]] = []
    # Mix and floor alternate, so a slow spell of this (shared, virtual) machine hits both.
    for i in range(runs):
        mixes.append(_run_child("--child", spec))
        if i == 0:  # the floor's input: the same PCM, decoded back from the episode (untimed)
            subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(out / "episode.mp3"), "-c:a", "pcm_s16le",
                            str(pcm)], check=True)
        t0, cpu0 = time.perf_counter(), _children_cpu()
        subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(pcm), "-c:a", "libmp3lame", "-b:a", "64k",
                        str(work / "floor.mp3")], check=True)
        floors.append((time.perf_counter() - t0, _children_cpu() - cpu0))
    raw_bytes = pcm.stat().st_size - 44
    pcm.unlink()

    def memory(r: dict, s: _Sampler) -> tuple[int, int, int, list[int], str]:
        py_kb = max(r["rss_self_kb"], s.hwm.get(s.root, 0))
        # The Python process's peak can come after the sample with the largest sum; count it in full.
        rss_kb = max(s.rss_sum, s.rss_sum - s.at_peak.get(s.root, 0) + py_kb)
        who = ", ".join(f"{s.names.get(pid, '?')} {kb / 1024:.1f}" for pid, kb in s.at_peak.items())
        return rss_kb, s.pss_sum, py_kb, [kb for pid, kb in s.at_peak.items() if pid != s.root], who

    rss_kb, pss_kb, py_kb, ff_at_peak, who = max((memory(r, s) for r, s in mixes), key=lambda m: m[0])
    mix_s = statistics.median(r["elapsed"] for r, _ in mixes)
    floor_s = statistics.median(f for f, _ in floors)
    cpu = statistics.median(r["py_cpu"] + r["ff_cpu"] for r, _ in mixes)
    r = mixes[0][0]
    return {
        "minutes": r["duration_ms"] / 60000,
        "segments": n,
        "runs": runs,
        "mix_s": mix_s,
        "floor_s": floor_s,
        "time_ratio": mix_s / floor_s,
        "pair_ratios": [m["elapsed"] / f for (m, _), (f, _) in zip(mixes, floors, strict=True)],
        "cpu_ratio": cpu / statistics.median(c for _, c in floors),
        "py_cpu": statistics.median(m["py_cpu"] for m, _ in mixes),
        "ff_cpu": statistics.median(m["ff_cpu"] for m, _ in mixes),
        "floor_cpu": statistics.median(c for _, c in floors),
        "raw_mb": raw_bytes / 1e6,
        "idle_rss_mb": base["hwm_kb"] * 1024 / 1e6,
        "idle_pss_mb": base["pss_kb"] * 1024 / 1e6,
        "py_mb": py_kb * 1024 / 1e6,
        "ff_mb": sum(ff_at_peak) * 1024 / 1e6,
        "ff_n": len(ff_at_peak),
        "rss_mb": rss_kb * 1024 / 1e6,
        "peak_procs": who,
        "rss_ratio": rss_kb * 1024 / raw_bytes,
        "pss_mb": pss_kb * 1024 / 1e6,
        "pss_ratio": pss_kb * 1024 / raw_bytes,
        "lufs": r["lufs"],
        "tp": r["tp"],
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] in ("--child", "--idle"):
        (child if sys.argv[1] == "--child" else idle)(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="mix and floor runs per length (default 3)")
    ap.add_argument("minutes", type=float, nargs="*", help="episode lengths (default: 15 60)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    runs, lengths = args.runs, args.minutes or [15.0, 60.0]
    with tempfile.TemporaryDirectory(prefix="bench_mix.") as tmp:
        work = Path(tmp)
        pool = make_pool(work)
        print(f"cpus={os.cpu_count()}  load={os.getloadavg()[0]:.1f}  encoder (mix and floor)={_encoder()}")
        print(f"segments ~{SEG_SECONDS:g}s @ {SEG_RATE} Hz mono, {POOL} distinct recordings; MB = 10^6 bytes; "
              f"times are medians of {runs} alternating mix/floor runs")
        head = (f"{'min':>5} {'segs':>4} {'mix s':>6} {'floor s':>7} {'time x':>6} {'cpu x':>5} {'raw MB':>6} "
                f"{'idle py RSS/PSS':>15} {'py RSS':>6} {'ffmpeg RSS':>10} {'RSS sum':>7} {'mem x RSS':>9} "
                f"{'PSS sum':>7} {'mem x PSS':>9} {'LUFS':>5} {'dBTP':>5}")
        print(head)
        rows = []
        for minutes in lengths:
            b = bench(minutes, pool, work, runs)
            rows.append(b)
            print(f"{b['minutes']:5.1f} {b['segments']:4d} {b['mix_s']:6.2f} {b['floor_s']:7.2f} "
                  f"{b['time_ratio']:6.2f} {b['cpu_ratio']:5.2f} {b['raw_mb']:6.1f} {b['idle_rss_mb']:7.1f}/{b['idle_pss_mb']:<7.1f} "
                  f"{b['py_mb']:6.1f} {b['ff_mb']:6.1f} ({b['ff_n']}) {b['rss_mb']:7.1f} {b['rss_ratio']:9.2f} "
                  f"{b['pss_mb']:7.1f} {b['pss_ratio']:9.2f} {b['lufs']:5.1f} {b['tp']:5.1f}")
        print("time x   = median mix() wall time / median bare `ffmpeg -i episode.wav -b:a 64k out.mp3` wall time;")
        print("           target <= 2.0")
        print("cpu x    = CPU seconds (user+sys) inside mix(), Python + its ffmpegs / of the bare encode; the")
        print("           wall-time ratio depends on free cores (mix runs reader, limiter, LAME, decoder in parallel)")
        print("mem x RSS (judged) = peak of [sum over live processes (python + its ffmpeg children) of each one's")
        print("           peak RSS] / raw PCM (44.1 kHz mono s16), worst run; target <= 1.5. Shared library pages")
        print("           count in full.")
        print("mem x PSS = largest sampled sum of PSS (shared pages split among their users) / raw PCM")
        print("idle py  = RSS/PSS of an interpreter with the same imports and segment list, never calling mix()")
        print("ffmpeg RSS = ffmpeg processes' peak RSS at the largest-sum sample (count in brackets)")
        for b in rows:
            verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
            pairs = ", ".join(f"{x:.2f}" for x in b["pair_ratios"])
            print(f"{b['minutes']:.0f} min: cpu s python {b['py_cpu']:.1f} + ffmpeg {b['ff_cpu']:.1f} "
                  f"vs floor {b['floor_cpu']:.1f}; run by run, mix/floor = {pairs}")
            print(f"{b['minutes']:.0f} min: worst run's largest-sum sample, peak RSS in MiB: {b['peak_procs']}")
            print(f"{b['minutes']:.0f} min: time {verdict(b['time_ratio'] <= 2.0)} ({b['time_ratio']:.2f}x), "
                  f"memory {verdict(b['rss_ratio'] <= 1.5)} ({b['rss_ratio']:.2f}x by RSS, {b['pss_ratio']:.2f}x by PSS)")


if __name__ == "__main__":
    main()
