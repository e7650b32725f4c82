"""Script length: minutes → characters at the voice's speaking rate, met within ±15 % by choosing material."""

from __future__ import annotations

import pytest
from test_writer_offline import DATE, SHOW

from podcast.config import WriterConfig
from podcast.models import Item
from podcast.script import render
from podcast.write import CHARS_PER_MINUTE, spoken_chars, target_chars, write_script
from podcast.write.offline import TOLERANCE, strip_lead_in
from podcast.write.stories import cluster, rank, taiwan_item


def test_spoken_chars_counts_what_the_voice_says(sample_items: list[Item]) -> None:
    script = write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=5), episode=1, date=DATE).script
    # Headings, citations and the sources list are in script.md but not said.
    assert 0 < spoken_chars(script) < len(render(script)) - len("".join(ln for ln in render(script).splitlines()
                                                                       if ln.startswith("#")))
    assert target_chars(5, 200) == 1000 and target_chars(2.5, 183) == 458


@pytest.mark.parametrize("minutes", [3, 5, 8])
def test_length_lands_within_tolerance(sample_items: list[Item], minutes: float) -> None:
    written = write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=minutes), episode=1, date=DATE)
    target = minutes * CHARS_PER_MINUTE
    said = spoken_chars(written.script)
    assert abs(said - target) <= TOLERANCE * target, (minutes, said, target)
    assert written.warnings == []
    # Still extractive: trimming and filling choose sentences, never write them.
    corpus = "\n".join(taiwan_item(it).text for it in sample_items)
    assert all(strip_lead_in(b.text) in corpus for b in written.script.bullets())
    assert len(written.script.deep_dives) >= 2


def test_longer_targets_use_more_material(sample_items: list[Item]) -> None:
    sizes = [
        spoken_chars(write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=m), episode=1, date=DATE).script)
        for m in (3, 5, 8)
    ]
    assert sizes == sorted(sizes) and sizes[0] * 2 < sizes[2]


def test_speaking_rate_is_a_parameter(sample_items: list[Item]) -> None:
    # A slower voice says fewer characters in the same five minutes.
    slow = write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=5), episode=1, date=DATE,
                        chars_per_minute=200).script
    assert abs(spoken_chars(slow) - 1000) <= TOLERANCE * 1000


def test_thin_sources_say_how_many_minutes_they_support(sample_items: list[Item]) -> None:
    few = sample_items[:2]
    written = write_script(few, show=SHOW, writer=WriterConfig(minutes=8), episode=1, date=DATE)
    [warning] = [w for w in written.warnings if "sources only support" in w]
    supported = float(warning.split("~")[1].split(" ")[0])
    assert supported == pytest.approx(spoken_chars(written.script) / CHARS_PER_MINUTE, abs=0.1)
    assert supported < 8 * (1 - TOLERANCE)
    assert render(written.script)  # still a complete script


def test_too_short_a_target_is_reported(sample_items: list[Item]) -> None:
    written = write_script(sample_items, show=SHOW, writer=WriterConfig(minutes=0.5), episode=1, date=DATE)
    assert any("shortest script" in w for w in written.warnings)


# --- ranking by configured keywords -------------------------------------------------------------


def _story_item(i: str, title: str, text: str) -> Item:
    return Item(id=i, url=f"https://example.com/{i}", title=title, text=text, source="example.com",
                summary=text, importance="中")


def test_configured_keywords_rank_stories_higher() -> None:
    items = [
        _story_item("a", "某市啟用智慧路燈系統", "某市今天啟用新的智慧路燈系統，全市共有八千盞路燈連網，夜間用電預計可下降兩成。"),
        _story_item("b", "新款電動機車開放預購", "一家機車製造商宣布新款電動機車開放預購，續航里程為一百二十公里，售價約九萬元。"),
        _story_item("c", "衛星網路服務擴大涵蓋", "低軌衛星網路業者宣布服務擴大涵蓋離島地區，下載速度最高可達每秒兩百百萬位元。"),
    ]
    plain = [s.lead.id for s in rank(cluster(items))]
    assert plain == ["a", "b", "c"]  # equal importance: input order
    boosted = [s.lead.id for s in rank(cluster(items), keywords=["電動機車", "衛星"])]
    assert boosted[:2] == ["b", "c"] or boosted[:2] == ["c", "b"]
    assert boosted[-1] == "a"
    assert [s.lead.id for s in rank(cluster(items), keywords=["衛星"])][0] == "c"
    # The writer reads them from [writer] keywords: the boosted story leads the episode.
    writer = WriterConfig(minutes=2, keywords=["衛星"])
    script = write_script(items, show=SHOW, writer=writer, episode=1, date=DATE).script
    assert script.title == "衛星網路服務擴大涵蓋"
