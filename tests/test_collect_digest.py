"""collect on local files: the bundled sample digest, broken digests, the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import podcast
from podcast.collect import collect
from podcast.collect.store import Store, canonical_url
from podcast.errors import PodcastError

SAMPLE = Path(podcast.__file__).parent / "sample" / "digest.md"


def test_sample_parses_with_dedup(tmp_path: Path) -> None:
    result = collect([str(SAMPLE)], tmp_path / "store.db")
    items = result.items
    # 9 '### ' news headlines; the Nimbus Labs story is listed twice (once with utm_*).
    assert len(items) == 8
    nimbus = [it for it in items if "Nimbus" in it.title]
    assert len(nimbus) == 1
    assert nimbus[0].links == ["https://news.example.org/2026/11/20/nimbus-labs-series-c"]
    # Listed under 今日焦點 and a topical section: the topical one wins.
    assert nimbus[0].section == "產業與應用動態"
    assert "編輯洞察" not in {it.section for it in items}
    for it in items:
        assert it.id and it.title and it.text and it.summary and it.source
        assert it.url.startswith("https://") and "utm_" not in it.url
        assert it.published is not None and it.published.year == 2026
        assert it.language == "zh-TW"
        assert it.entities and it.importance in {"高", "中", "低"}
        assert it.summary in it.text
    kestrel = next(it for it in items if it.title.startswith("Kestrel"))
    assert "混合專家架構" in kestrel.text  # 技術細節 joined into text
    assert kestrel.source == "example.com"
    assert len({it.id for it in items}) == len(items)
    assert result.outcomes[0].ok and result.outcomes[0].kind == "digest"


def test_digest_without_headlines_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "empty-digest.md"
    bad.write_text("---\ntitle: 空的\ndate: 2026-01-01\n---\n\n## 今日焦點\n\n_本日暫無相關動態_\n", encoding="utf-8")
    with pytest.raises(PodcastError) as err:
        collect([str(bad)], tmp_path / "store.db")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == f"{bad}: no news headlines found (expected '### ' headlines with **核心摘要**)"


def test_recollect_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    first = collect([str(SAMPLE)], db)
    with Store(db) as store:
        count, hashes = store.count(), store.hashes()
    again = collect([str(SAMPLE)], db)
    assert again.outcomes[0].new == 0 and first.outcomes[0].new == 8
    with Store(db) as store:
        assert store.count() == count == 8
        assert store.hashes() == hashes
        back = store.get(first.items[0].id)
    assert back == first.items[0]  # the store round-trips every field
    # A real SQLite file any tool can open.
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 8


def test_mark_used(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.mark_used(1, ["a", "b", "a"])
        store.mark_used(2, ["c"])
        assert store.used_ids(1) == {"a", "b"}
        assert store.used_ids() == {"a", "b", "c"}
        store.mark_used(1, ["d"])  # a rebuild of episode 1 replaces its record
        assert store.used_ids(1) == {"d"} and store.used_before(2) == {"d": 1}


def test_missing_file_fails_only_that_source(tmp_path: Path) -> None:
    missing = tmp_path / "nope.md"
    note = tmp_path / "note.txt"
    note.write_text("一則純文字新聞標題\n\n這是一段純文字內容，說明某個開源專案發布新版本。\n", encoding="utf-8")
    result = collect([str(missing), str(SAMPLE), str(note)], tmp_path / "store.db")
    assert len(result.items) == 9
    bad, good, plain = result.outcomes
    assert not bad.ok and str(missing) in bad.error and "\n" not in bad.error
    assert good.ok and plain.ok and plain.kind == "file"
    item = result.items[-1]
    assert item.title == "一則純文字新聞標題" and item.source == "note.txt"
    assert item.text.startswith("這是一段純文字內容")
    lines = result.report_lines()
    assert lines[0] == f"3 sources: 2 ok, 0 not modified, 1 failed: {missing}: file not found: check the path"
    assert lines[-1] == "9 items (9 new)"


def test_only_missing_sources_raise(tmp_path: Path) -> None:
    with pytest.raises(PodcastError, match="nope.md: file not found"):
        collect([str(tmp_path / "nope.md")], tmp_path / "store.db")


def test_language_detection(tmp_path: Path) -> None:
    zh_cn = tmp_path / "cn.txt"
    zh_cn.write_text("开源模型发布新版本\n\n这家公司表示，新模型的推理速度提升了一倍，开发者可以免费下载。\n", encoding="utf-8")
    en = tmp_path / "en.md"
    en.write_text("# Chipmaker ships new accelerator\n\nThe company said shipments begin next quarter.\n", encoding="utf-8")
    items = collect([str(zh_cn), str(en)], tmp_path / "s.db").items
    assert [it.language for it in items] == ["zh-CN", "en"]
    assert items[1].title == "Chipmaker ships new accelerator"


def test_canonical_url() -> None:
    assert canonical_url("https://WWW.Example.com/a/?utm_source=x&b=2&a=1#frag") == "https://example.com/a?a=1&b=2"
    assert canonical_url("") == ""
