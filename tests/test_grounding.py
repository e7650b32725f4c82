"""Grounding: facts in bullets must be in the cited sources, whatever their formatting."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import podcast
from podcast.collect.digest import parse_digest
from podcast.config import ShowMeta, WriterConfig
from podcast.models import Item
from podcast.script import Bullet, DeepDive, Group, Script, SourceRef
from podcast.write.grounding import check_grounding, latin_names, normalise, numbers, unsupported
from podcast.write.offline import write_offline


@pytest.mark.parametrize(
    ("claim", "source"),
    [
        ("投資 148億美元", "投資 148 億美元"),
        ("投資 148 億美元", "invests $14.8 billion"),
        ("投資 148 億美元", "投資 14,800,000,000 美元"),
        ("市占率 ５０％", "市占率 50%"),
        ("市占率 50%", "市占率百分之 50"),
        ("員工 7,520 人", "員工 7520 人"),
        ("員工 ７５２０ 人", "員工 7,520 人"),
        ("發表於 11 月 20 日", "announced on Nov. 20"),
        ("9 月上市", "ships in September"),
        ("2026-11-20 上市", "2026 年 11 月 20 日上市"),
        ("星河雲宣布", "星河云宣布"),  # Simplified source, Traditional claim
        ("星河云宣布", "星河雲宣布"),
        ("輝達發表新晶片", "英伟达发布新芯片"),  # Taiwan wording of a Simplified name
        ("Lumen-3 模型", "Lumen-3 Mini 模型"),
        ("搭載 H100", "uses H100s"),
        ("5GB 記憶體", "只需要 5GB 記憶體"),
        ("AI 晶片", "人工智慧晶片"),  # generic acronyms are vocabulary, not names
    ],
)
def test_equivalent_forms_are_grounded(claim: str, source: str) -> None:
    assert unsupported(claim, source, ["星河云", "輝達"]) == []


@pytest.mark.parametrize(
    ("claim", "source", "missing"),
    [
        ("投資 148 億美元", "投資 148 萬美元", "148 億"),
        ("市占率 50%", "市占率 40%", "50%"),
        ("市占率 50%", "賣出 50 台", "50%"),  # a percentage needs a percentage
        ("員工 7,521 人", "員工 7,520 人", "7,521"),
        ("執行長 Maya Chen 表示", "執行長 Maya Lin 表示", "Chen"),
        ("星河雲宣布", "晨曦半導體宣布", "星河云"),
        ("由 NVIDIA 代工", "由台積電代工", "NVIDIA"),
    ],
)
def test_unsupported_facts_are_named(claim: str, source: str, missing: str) -> None:
    assert missing in unsupported(claim, source, ["星河云"])


def test_numbers_and_names_are_parsed() -> None:
    assert [(k, str(v)) for _, k, v in numbers(normalise("148 億、５０％、7,520、1.2 美元"))] == [
        ("x", "14800000000"), ("%", "50"), ("n", "7520"), ("n", "1.2"),
    ]
    assert latin_names("Kestrel AI 的 Lumen-3 與 iPhone，tokens 不算") == ["Kestrel", "Lumen-3", "iPhone"]


ITEMS = [
    Item(id="a", url="https://a.example/1", title="晨曦半導體發表新晶片",
         text="晨曦半導體發表新晶片 Aurora X2，效能提升 35%。", source="a.example", entities=["晨曦半導體"]),
    Item(id="b", url="https://b.example/2", title="星河云建设数据中心",
         text="星河云将投资 148 亿元建设数据中心。", source="b.example", language="zh-CN", entities=["星河云"]),
]
SOURCES = [
    {"n": 1, "title": "晨曦半導體發表新晶片", "url": "https://a.example/1", "item_id": "a"},
    {"n": 2, "title": "星河雲建設資料中心", "url": "https://b.example/2", "item_id": "b"},
]


def script_with(*bullets: Bullet) -> Script:
    return Script(
        episode=1, title="測試", date=dt.date(2026, 11, 20), intro=["開場。"],
        summary=[Group("主題", list(bullets))],
        deep_dives=[DeepDive("深入", [Group("小節", [Bullet("晨曦半導體發表新晶片 Aurora X2。", [1])])])],
        sources=[SourceRef(s["n"], s["title"], s["url"]) for s in SOURCES], outro=["再見。"], disclaimer=["聲明。"],
    )


def test_grounded_script_has_no_warnings() -> None:
    script = script_with(Bullet("星河雲將投資 148 億元建設資料中心", [2]), Bullet("Aurora X2 效能提升 35%", [1]))
    assert check_grounding(script, SOURCES, ITEMS) == []


def test_facts_must_come_from_the_cited_source_not_any_source() -> None:
    # 148 億 and 星河雲 are in source 2, but the bullet cites only source 1.
    warnings = check_grounding(script_with(Bullet("星河雲將投資 148 億元", [1])), SOURCES, ITEMS)
    assert len(warnings) == 1
    assert "148 億" in warnings[0] and "星河云" in warnings[0] and "[1]" in warnings[0]
    assert "快速重點摘要 › 主題" in warnings[0]


def test_dangling_and_missing_refs_are_flagged() -> None:
    warnings = check_grounding(
        script_with(Bullet("晨曦半導體發表新晶片", [1, 7]), Bullet("沒有來源的句子", [])), SOURCES, ITEMS
    )
    assert any("[7], which is not in 資料來源" in w for w in warnings)
    assert any("cites no source" in w for w in warnings)


def test_offline_writer_output_on_the_bundled_sample_is_grounded() -> None:
    path = Path(podcast.__file__).parent / "sample" / "digest.md"
    items = parse_digest(path.read_text(encoding="utf-8"), path)
    show = ShowMeta(title="科技碎碎念", author="測試", description="測試", base_url="https://pod.example.com/")
    script, rows = write_offline(items, show=show, writer=WriterConfig(), episode=1, date=dt.date(2026, 11, 20))
    assert script.bullets()
    assert check_grounding(script, rows, items) == []
    # And the check has teeth on the same script: change one number in one bullet.
    bullet = next(b for b in script.bullets() if "12 億美元" in b.text)
    bullet.text = bullet.text.replace("12 億美元", "13 億美元")
    assert len(check_grounding(script, rows, items)) == 1
