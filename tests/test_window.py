"""The time window, reuse across episodes, and near-duplicates across runs (real SQLite, real HTTP)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from news_server import CHIP_TITLE, NewsServer  # noqa: E402

import podcast  # noqa: E402
from podcast.collect import collect, fresh_items, parse_since  # noqa: E402
from podcast.collect.dedup import simhash  # noqa: E402
from podcast.collect.store import Store  # noqa: E402
from podcast.errors import PodcastError  # noqa: E402
from podcast.models import Item  # noqa: E402

SAMPLE = Path(podcast.__file__).parent / "sample" / "digest.md"
UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # the test feeds are dated 2026-11-20 08:00–12:00 UTC


@pytest.fixture(scope="module")
def server():
    with NewsServer() as srv:
        yield srv


# --- parse_since ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [("90m", dt.timedelta(minutes=90)), ("24h", dt.timedelta(hours=24)), ("7d", dt.timedelta(days=7)),
     ("2w", dt.timedelta(weeks=2)), (" 36 hours ", dt.timedelta(hours=36)), ("1.5h", dt.timedelta(minutes=90))],
)
def test_parse_since_relative(text: str, delta: dt.timedelta) -> None:
    assert parse_since(text, NOW) == NOW - delta


def test_parse_since_dates() -> None:
    assert parse_since("2026-11-18", NOW) == dt.datetime(2026, 11, 18, tzinfo=UTC)
    taipei = dt.timezone(dt.timedelta(hours=8))
    assert parse_since("2026-11-18", NOW.astimezone(taipei)) == dt.datetime(2026, 11, 18, tzinfo=taipei)
    assert parse_since("2026-11-19T08:00+08:00", NOW) == dt.datetime(2026, 11, 19, tzinfo=UTC)
    assert parse_since("24h").tzinfo is not None  # now defaults to the real clock, aware


@pytest.mark.parametrize("bad", ["", "yesterday", "24x", "0h", "2027-01-01", "h24"])
def test_parse_since_rejects_with_one_line(bad: str) -> None:
    with pytest.raises(PodcastError) as err:
        parse_since(bad, NOW)
    msg = str(err.value)
    assert "\n" not in msg and repr(bad) in msg


# --- the window --------------------------------------------------------------------------------


def test_window_applies_to_feeds_not_to_named_local_files(server, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    feed = server.url("/feed/rss.xml")
    # The same afternoon: the feed's morning news is inside a 24h window.
    today = collect([feed], db, since="24h", now=NOW)
    assert {it.title for it in today.items} >= {CHIP_TITLE}
    assert today.outside_window == 0
    # Three days later the feed's news is outside the window; the sample digest
    # (dated 2026-11-20 too) still counts because it was named explicitly.
    later = NOW + dt.timedelta(days=3)
    result = collect([feed, str(SAMPLE)], db, since="24h", now=later)
    assert len(result.items) == 8 and all(it.url.startswith("https://") for it in result.items)
    assert result.outside_window == len(today.items)
    assert "older than" in result.report_lines()[-1]
    # Feeds alone: nothing in the window is an error that says what to do.
    with pytest.raises(PodcastError, match=r"no items newer than .*--since"):
        collect([feed], db, since="24h", now=later)
    # A wide enough window brings them back.
    assert len(collect([feed], db, since="7d", now=later).items) == len(today.items)


def test_undated_items_go_by_first_fetch(tmp_path: Path) -> None:
    from podcast.collect.window import in_window

    item = Item(id="x", url="", title="t", text="x", source="s")
    start = NOW - dt.timedelta(hours=24)
    assert in_window(item, start, NOW - dt.timedelta(hours=1))
    assert not in_window(item, start, NOW - dt.timedelta(hours=30))
    item.published = NOW - dt.timedelta(hours=2)
    assert in_window(item, start, NOW - dt.timedelta(hours=30))  # the date wins over the fetch time


def test_not_modified_feed_still_brings_its_news_from_earlier_in_the_window(server, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    feed = server.url("/feed/etag.xml")
    first = collect([feed], db, since="24h", now=NOW)
    assert len(first.items) == 1
    again = collect([feed], db, since="24h", now=NOW + dt.timedelta(hours=1))
    assert again.outcomes[0].status == "not modified"
    assert [it.id for it in again.items] == [it.id for it in first.items]
    assert again.report_lines()[0] == "1 sources: 0 ok, 1 not modified, 0 failed"


def test_report_lines_list_failures_and_warnings(server, tmp_path: Path) -> None:
    urls = [server.url(p) for p in ("/feed/rss.xml", "/feed/bozo.xml", "/error500")]
    result = collect(urls, tmp_path / "s.db")
    lines = result.report_lines()
    assert lines[0].startswith(f"3 sources: 2 ok, 0 not modified, 1 failed: {server.url('/error500')}: ")
    assert any(ln.startswith(f"warning: {server.url('/feed/bozo.xml')}: malformed feed") for ln in lines)


# --- near-duplicates across runs -------------------------------------------------------------------


def test_syndicated_copy_collected_the_next_day_is_the_same_item(server, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    day1 = collect([server.url("/article/chip")], db, now=NOW)
    [original] = day1.items
    day2 = collect([server.url("/syndicated/chip-copy")], db, now=NOW + dt.timedelta(days=1))
    assert [it.id for it in day2.items] == [original.id]  # the stored original stands in for the copy
    assert day2.near_duplicates == 1 and day2.outcomes[0].new == 0
    with Store(db) as store:
        assert store.count() == 1
        assert dict(store.simhashes())[original.id] == simhash(original.text)


def test_recollect_leaves_store_unchanged(server, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    sources = [server.url("/feed/rss.xml"), server.url("/feed/atom.xml"), str(SAMPLE)]
    collect(sources, db, now=NOW)
    with Store(db) as store:
        before = (store.count(), store.hashes(), store.simhashes())
    again = collect(sources, db, now=NOW + dt.timedelta(hours=2))
    assert sum(o.new for o in again.outcomes) == 0
    with Store(db) as store:
        assert (store.count(), store.hashes(), store.simhashes()) == before


def test_old_store_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    text = "舊版資料庫裡的一則新聞，" * 10
    with sqlite3.connect(db) as conn:  # the schema before simhash/origin existed
        conn.execute(
            "CREATE TABLE items (id TEXT PRIMARY KEY, url TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,"
            " summary TEXT NOT NULL, source TEXT NOT NULL, published TEXT, fetched TEXT NOT NULL,"
            " language TEXT NOT NULL, hash TEXT NOT NULL, extra TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO items VALUES ('a','','舊聞',?,'','s',NULL,'2026-11-19T00:00:00+00:00','zh-TW','h','{}')",
                     (text,))
    with Store(db) as store:
        assert store.simhashes() == [("a", simhash(text))]
        store.add([Item(id="b", url="", title="新聞", text="另一則", source="s")], origin="x.md")
        assert store.count() == 2
    with Store(db) as store:  # opening again is a no-op
        assert len(store.simhashes()) == 2


# --- reuse across episodes --------------------------------------------------------------------------


def _item(i: str, title: str, text: str, **kw: object) -> Item:
    return Item(id=i, url=f"https://example.com/{i}", title=title, text=text, source="example.com", **kw)


def test_fresh_items_drops_told_stories_unless_they_gained_a_source(tmp_path: Path) -> None:
    chip = _item("chip1", "Helio H9 晶片取得出口許可", "Helio Semiconductor 的 H9 晶片取得出口許可，預估出貨 20 萬顆。",
                 entities=["Helio Semiconductor", "H9"])
    chip_follow = _item("chip2", "Helio H9 晶片取得出口許可後股價上漲", "Helio Semiconductor 的 H9 晶片出貨 20 萬顆，股價上漲 6.2%。",
                        entities=["Helio Semiconductor", "H9"])
    robot = _item("robot", "Harbor Robotics 導入倉儲機器人", "Harbor Robotics 將在桃園部署 150 台機器人。",
                  entities=["Harbor Robotics"])
    label = _item("label", "AI 標示草案公布", "數位政策委員會公布 AI 生成內容標示草案。", entities=["AI 標示"])
    with Store(tmp_path / "s.db") as store:
        store.mark_used(1, ["chip1", "robot"])
        # Episode 2: the robot story was told and nothing new came; the chip story has a follow-up.
        kept = fresh_items([chip, robot, label, chip_follow], store, episode=2)
        assert [it.id for it in kept] == ["chip1", "label", "chip2"]
        # Without the follow-up the chip story is dropped too.
        assert [it.id for it in fresh_items([chip, robot, label], store, episode=2)] == ["label"]
        # Rebuilding episode 1 itself is not affected by its own record.
        assert len(fresh_items([chip, robot, label], store, episode=1)) == 3
        assert fresh_items([chip, robot], store, episode=2) == []


def test_next_episode_from_the_same_digest_keeps_only_untold_stories(tmp_path: Path) -> None:
    from podcast.write.stories import cluster, taiwan_item

    db = tmp_path / "s.db"
    items = collect([str(SAMPLE)], db).items
    told = {it.id for it in items[:3]}
    with Store(db) as store:
        store.mark_used(1, sorted(told))
        left = fresh_items(items, store, episode=2)
        assert fresh_items(items, store, episode=1) == items
        store.mark_used(2, [it.id for it in left])
        assert fresh_items(items, store, episode=3) == []  # everything told: nothing fresh
    assert 0 < len(left) < len(items)
    for story in cluster([taiwan_item(it) for it in left]):
        ids = {it.id for it in story.items}
        assert not ids <= told  # no story made only of told items
