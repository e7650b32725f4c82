"""script.md round trip (hypothesis) and parse errors that name the line."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from podcast.errors import PodcastError
from podcast.script import FIXED_SECTIONS, Bullet, DeepDive, Group, Script, SourceRef, parse, render

# Any printable text, Chinese-heavy, plus the characters that are markup somewhere.
_chars = st.one_of(
    st.sampled_from("科技碎念模型晶片資料中心，。、：；！？（）「」 []()#-*\\`1234567890abcXYZ"),
    st.characters(blacklist_categories=("Cs",)),
)
line = st.text(_chars, min_size=1, max_size=30)


def _valid(make, *args):  # noqa: ANN001, ANN202
    try:
        return make(*args)
    except ValueError:
        assume(False)


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    n_sources = draw(st.integers(0, 5))
    sources = [
        _valid(SourceRef, i, draw(line), f"https://example.com/{draw(st.text('abc/-_.?=&%', max_size=12))}")
        for i in range(1, n_sources + 1)
    ]
    refs = st.lists(st.integers(1, n_sources), max_size=3) if n_sources else st.just([])

    def groups() -> list[Group]:
        out = []
        for _ in range(draw(st.integers(0, 3))):
            bullets = [_valid(Bullet, draw(line), draw(refs)) for _ in range(draw(st.integers(0, 3)))]
            out.append(_valid(Group, draw(line), bullets))
        return out

    dives = []
    for _ in range(draw(st.integers(0, 3))):
        title = draw(line)
        assume(title not in FIXED_SECTIONS)
        dives.append(_valid(DeepDive, title, groups()))
    paras = st.lists(line, max_size=3)
    return _valid(
        Script,
        draw(st.integers(0, 99999)),
        draw(line),
        draw(st.dates(dt.date(1990, 1, 1), dt.date(2100, 1, 1))),
        draw(paras),
        groups(),
        dives,
        sources,
        draw(paras),
        draw(paras),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scripts())
def test_round_trip(script: Script) -> None:
    text = render(script)
    back = parse(text)
    assert back == script
    assert render(back) == text


GOOD = """---
episode: 7
title: 測試標題
date: 2026-11-20
---

## 開場

哈囉！

## 快速重點摘要

### 1. 主題

- 一則重點。[1]

## 深度解析一

### 1. 事件重點

- 一個細節。[1][2]

## 資料來源

1. [來源一](https://example.com/a)
2. [來源 \\[二\\]](https://example.com/b)

## 結尾

謝謝收聽。

## 聲明

內容由 AI 產生。
"""


def test_other_line_breaks_are_not_single_lines() -> None:
    # str.splitlines() breaks on these too; they must be rejected, not mangled.
    for ch in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\n\r":
        with pytest.raises(ValueError):
            Bullet(text=f"a{ch}b")


def test_golden_parses_and_renders_back() -> None:
    script = parse(GOOD)
    assert script.episode == 7 and script.sources[1].title == "來源 [二]"
    assert script.deep_dives[0].subsections[0].bullets[0].refs == [1, 2]
    assert render(script) == GOOD


def _error(text: str) -> str:
    with pytest.raises(PodcastError) as err:
        parse(text, "ep/script.md")
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_section() -> None:
    text = GOOD.replace("## 結尾\n\n謝謝收聽。\n\n", "")
    assert _error(text) == f"ep/script.md:{len(text.splitlines())}: missing section '## 結尾'"


def test_bad_front_matter() -> None:
    assert _error(GOOD.replace("date: 2026-11-20", "date: tomorrow")).startswith("ep/script.md:1: bad front matter")
    assert _error(GOOD.replace("episode: 7\n", "episode 7\n")).startswith("ep/script.md:2: front matter line")
    assert _error(GOOD.replace("title: 測試標題\n", "")).startswith("ep/script.md:1: front matter is missing 'title'")
    assert _error("no front matter\n").startswith("ep/script.md:1:")


def test_bullet_citing_missing_source() -> None:
    text = GOOD.replace("- 一個細節。[1][2]", "- 一個細節。[1][9]")
    lineno = text.splitlines().index("- 一個細節。[1][9]") + 1
    assert _error(text) == f"ep/script.md:{lineno}: bullet cites source 9, which is not in 資料來源"


def test_bad_source_line() -> None:
    text = GOOD.replace("1. [來源一](https://example.com/a)", "1. 來源一 https://example.com/a")
    lineno = text.splitlines().index("1. 來源一 https://example.com/a") + 1
    assert _error(text).startswith(f"ep/script.md:{lineno}: source must look like")
