"""The offline extractive writer: structure, citations, no invented sentences, Taiwan script."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import opencc
import pytest

import podcast
from podcast.config import ShowMeta, WriterConfig
from podcast.models import Item
from podcast.script import parse, render
from podcast.write import write_script
from podcast.write.chinese import simplified_chars, to_taiwan
from podcast.write.offline import strip_lead_in
from podcast.write.stories import taiwan_item

SAMPLE = Path(podcast.__file__).parent / "sample" / "digest.md"
SHOW = ShowMeta(title="科技碎碎念", author="測試", description="測試節目", base_url="https://example.com/pod/")
DATE = dt.date(2026, 11, 20)



def _check_extractive(script, items: list[Item]) -> None:  # noqa: ANN001
    corpus = "\n".join(taiwan_item(it).text for it in items)
    for b in script.bullets():
        body = strip_lead_in(b.text)
        assert body and body in corpus, f"bullet not taken from the items: {b.text!r}"


def _check_refs(script, rows: list[dict], items: list[Item]) -> None:  # noqa: ANN001
    numbers = [s.n for s in script.sources]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len({s.url for s in script.sources}) == len(numbers)  # each URL once
    for b in script.bullets():
        assert b.refs and all(r in numbers for r in b.refs)
    ids = {it.id for it in items}
    assert [r["n"] for r in rows] == numbers
    assert all(r["item_id"] in ids and r["url"] and r["title"] for r in rows)


def test_sample_script(sample_items: list[Item]) -> None:
    written = write_script(sample_items, show=SHOW, writer=WriterConfig(), episode=1, date=DATE)
    script, rows = written.script, written.sources
    assert written.writer == "offline" and written.warnings == []
    assert len(script.summary) >= 2
    assert all(1 <= len(g.bullets) <= 4 for g in script.summary)
    assert len(script.deep_dives) >= 2
    for dd in script.deep_dives:
        assert 2 <= len(dd.subsections) <= 3
        assert all(1 <= len(g.bullets) <= 4 for g in dd.subsections)
    _check_refs(script, rows, sample_items)
    _check_extractive(script, sample_items)
    # The two Lumen-3 reports are one story citing both sources.
    lumen = next(d for d in script.deep_dives if "Lumen-3" in d.title)
    cited = {r for g in lumen.subsections for b in g.bullets for r in b.refs}
    urls = {script.sources[r - 1].url for r in cited}
    assert any("kestrel-lumen-3-launch" in u for u in urls) and any("lumen-3-mini" in u for u in urls)
    assert sum("Lumen-3" in d.title for d in script.deep_dives) == 1
    assert script.title == script.deep_dives[0].title
    assert "科技碎碎念" in script.intro[0]
    # Round-trips through script.md.
    text = render(script)
    assert render(parse(text)) == text
    assert not simplified_chars(text)
    # Roughly 8 min × 330 characters (headings not counted; test_length checks the budget exactly).
    spoken = sum(len(p) for p in [*script.intro, *script.outro, *script.disclaimer])
    spoken += sum(len(b.text) for b in script.bullets())
    assert 1200 <= spoken <= 3000


def test_length_follows_minutes(sample_items: list[Item]) -> None:
    short = write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=3, deep_dives=2), episode=1, date=DATE).script
    long = write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=12), episode=1, date=DATE).script
    assert len(short.deep_dives) == 2
    assert len(render(short)) < len(render(long))


@pytest.mark.parametrize("minutes", [3, 8])
def test_deep_dives_do_not_reread_the_summary(sample_items: list[Item], minutes: float) -> None:
    """A story's summary sentence is not read again in its deep dive when it has others to say."""
    script = write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=minutes), episode=1, date=DATE).script
    summary = {strip_lead_in(b.text) for g in script.summary for b in g.bullets}
    stories = {taiwan_item(it).title: taiwan_item(it) for it in sample_items}
    checked = 0
    for dive in script.deep_dives:
        said = [strip_lead_in(b.text) for sub in dive.subsections for b in sub.bullets]
        if dive.title in stories and len(said) >= 2:
            assert not summary & set(said), dive.title
            checked += 1
    assert checked >= 2


def test_show_texts_override_templates(sample_items: list[Item]) -> None:
    show = SHOW.model_copy(update={"greeting": "大家好，歡迎收聽。", "outro": "下次見。", "disclaimer": "本節目由 AI 產生。"})
    script = write_script(sample_items, show=show, writer=WriterConfig(), episode=3, date=DATE).script
    assert script.intro == ["大家好，歡迎收聽。"]
    assert script.outro == ["下次見。"] and script.disclaimer == ["本節目由 AI 產生。"]
    assert script.episode == 3 and script.date == DATE


def test_mixed_simplified_and_english() -> None:
    cn_text = "这家公司发布了新的人工智能芯片，性能提升了百分之三十。开发者可以通过软件接口调用这颗芯片。该芯片将在明年第一季度量产。"
    en_text = (
        "Orbital Compute unveiled a satellite data link rated at 40 Gbps. "
        "The company said the first launch is planned for March. "
        "Analysts expect ground-station costs to fall by a third."
    )
    items = [
        Item(id="cn1", url="https://news.example.org/cn/chip", title="某公司发布人工智能芯片", text=cn_text,
             source="news.example.org", summary=cn_text, language="zh-CN", importance="高"),
        Item(id="en1", url="https://example.com/en/orbital", title="Orbital Compute unveils satellite link",
             text=en_text, source="example.com", summary=en_text, language="en"),
    ]
    written = write_script(items, show=SHOW, writer=WriterConfig(), episode=2, date=DATE)
    script, rows = written.script, written.sources
    text = render(script)
    assert render(parse(text)) == text
    assert not simplified_chars(text)
    assert "晶片" in text and "人工智慧" in text  # s2twp vocabulary, not just characters
    assert opencc.OpenCC("s2twp").convert(cn_text) in "\n".join(taiwan_item(it).text for it in items)
    _check_refs(script, rows, items)
    _check_extractive(script, items)
    english = [b.text for b in script.bullets() if "Orbital" in b.text or "Analysts" in b.text]
    assert english and any(t.startswith("根據 example.com 的英文報導：") for t in english)
    assert len(script.deep_dives) == 2


def test_traditional_text_is_not_rewritten() -> None:
    # s2twp would turn these into 引數 / 匯入; Taiwan text must stay as written.
    assert to_taiwan("參數量為 70 億，並導入新流程。") == "參數量為 70 億，並導入新流程。"
    assert to_taiwan("软件") == "軟體"


def test_no_items_is_an_error() -> None:
    from podcast.errors import PodcastError

    with pytest.raises(PodcastError, match="no items"):
        write_script([], show=SHOW, writer=WriterConfig(), episode=1, date=DATE)
