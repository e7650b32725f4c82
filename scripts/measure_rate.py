"""Measure a voice preset's speaking rate: characters of spoken text per minute of episode audio.

    .venv/bin/python scripts/measure_rate.py [--preset default] [--segments 40]

Writes the bundled sample's script with the offline writer, synthesizes its
first ``--segments`` spoken segments with podcast.voice (the real engine of
the preset), and divides the characters the voice said by the seconds they
took *including* the pause the mixer inserts after each segment
(podcast.script PAUSE_*), so the rate predicts the final episode's length.
The result goes into the preset as ``chars_per_minute``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import tempfile
import time
from pathlib import Path

import podcast
from podcast.collect import collect
from podcast.config import ShowMeta, WriterConfig, load_preset
from podcast.script import spoken_segments
from podcast.voice import load_lexicon, voice
from podcast.write import write_script

VOICES = Path(podcast.__file__).resolve().parent / "_voices"
SAMPLE = Path(podcast.__file__).resolve().parent / "sample" / "digest.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--segments", type=int, default=40, help="how many spoken segments to synthesize")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        show_dir = Path(tmp)
        shutil.copytree(VOICES, show_dir / "voices")
        items = collect([str(SAMPLE)], show_dir / "store.db", since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).items
        show = ShowMeta(title="科技碎碎念", author="measure", description="measure", base_url="https://example.com/")
        script = write_script(items, show=show, writer=WriterConfig(minutes=12), episode=1,
                              date=dt.date(2026, 11, 20)).script
        segs = spoken_segments(script)[: args.segments]
        preset = load_preset(show_dir, args.preset)
        # Segments the engine could not fully say are shorter than their text: leave them out.
        skipped: set[str] = set()

        class _Skip(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "cannot pronounce" in record.getMessage():
                    skipped.add(str(record.args[0]) if record.args else "")

        logging.getLogger("podcast").addHandler(_Skip())
        started = time.monotonic()
        voiced = voice(segs, preset, show_dir, presets=lambda n: load_preset(show_dir, n),
                       lexicon=load_lexicon(show_dir))
        took = time.monotonic() - started
    voiced = [s for s in voiced if s.id not in skipped]
    chars = sum(len(s.text) for s in voiced)
    speech_s = sum(s.duration_ms for s in voiced) / 1000
    pauses_s = sum(s.pause_ms for s in voiced) / 1000
    total_s = speech_s + pauses_s
    print(f"preset {args.preset}: {len(voiced)} segments ({len(skipped)} left out: {sorted(skipped)}), {chars} characters")
    print(f"speech {speech_s:.1f}s + pauses {pauses_s:.1f}s = {total_s:.1f}s (synthesis took {took:.1f}s)")
    print(f"speech only: {chars / speech_s * 60:.0f} chars/min")
    print(f"chars_per_minute = {chars / total_s * 60:.0f}")


if __name__ == "__main__":
    main()
