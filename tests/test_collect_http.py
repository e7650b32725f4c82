"""Collecting over HTTP against a real loopback news site (tests/news_server.py)."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from news_server import (  # noqa: E402
    BIG5_PARAS,
    BIG5_TITLE,
    CHIP_PARAS,
    CLUTTER_PARAS,
    DB_TITLE,
    GBK_PARAS,
    RELATED_TITLES,
    NewsServer,
)

from podcast.collect.dedup import (  # noqa: E402
    NearDupIndex,
    dedup_items,
    hamming,
    is_near_duplicate,
    simhash,
)
from podcast.collect.feeds import SourceResult, classify, fetch_sources, html_to_text, summarize  # noqa: E402
from podcast.collect.http import USER_AGENT, decode_html, normalize_charset  # noqa: E402
from podcast.collect.opml import parse_opml, read_opml_file  # noqa: E402
from podcast.collect.store import Store, canonical_url, content_hash, item_id  # noqa: E402
from podcast.errors import PodcastError  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with NewsServer() as srv:
        srv.site.slow_seconds = 4.0
        yield srv


def _run(server: NewsServer, paths: list[str], tmp_path: Path, **kw) -> list[SourceResult]:
    kw.setdefault("timeout", 1.0)
    return fetch_sources([server.url(p) for p in paths], tmp_path / "store.sqlite", **kw)


def _by_source(results: list[SourceResult]) -> dict[str, SourceResult]:
    return {r.source.rsplit("/", 1)[-1] if "/feed/" not in r.source else r.source.split("/feed/")[1]: r
            for r in results}


# --- feeds ------------------------------------------------------------------------------


def test_rss_feed_follows_short_entries_and_keeps_summary_of_dead_links(server, tmp_path):
    [res] = _run(server, ["/feed/rss.xml"], tmp_path)
    assert (res.kind, res.status, res.error) == ("feed", "ok", "")
    items = {it.title: it for it in res.items}
    chip = items["新竹晶圓廠宣布兩奈米製程進入量產"]
    # The teaser was short, so the article page's full text replaced it.
    assert all(p in chip.text for p in CHIP_PARAS)
    assert chip.source == "測試科技新聞"
    assert chip.language == "zh-TW"
    assert chip.published is not None and chip.published.year == 2026
    # A dead link never drops the entry: its summary is kept and the miss is reported.
    gone = items["一則連結失效的新聞"]
    assert gone.text == "這則新聞的原文頁面已經下架，只剩下摘要可以使用。"
    assert any("/article/gone" in w and "404" in w for w in res.warnings)
    # Full text carried in content:encoded is used without fetching the page.
    full = items["全文就在 feed 裡的新聞"]
    assert "資料中心相關營收" in full.text and server.site.hits["/article/full"] == 0
    assert items[DB_TITLE].language == "en"


def test_atom_feed(server, tmp_path):
    [res] = _run(server, ["/feed/atom.xml"], tmp_path)
    assert (res.kind, res.status, res.title) == ("feed", "ok", "Test Dev Weekly")
    assert [it.title for it in res.items][0] == DB_TITLE
    assert res.items[0].published.isoformat() == "2026-11-20T10:00:00+00:00"
    assert "rewritten query planner" in res.items[0].text


def test_malformed_feed_is_used_with_a_warning(server, tmp_path):
    [res] = _run(server, ["/feed/bozo.xml"], tmp_path)
    assert res.status == "ok"
    assert len(res.items) == 2
    assert any("malformed feed" in w for w in res.warnings)
    assert any("malformed feed" in line for line in summarize([res]))


def test_each_failure_names_url_and_reason_and_the_rest_still_yields(server, tmp_path):
    paths = ["/feed/rss.xml", "/feed/broken.xml", "/error500", "/slow", "/nowhere", "/cluttered"]
    started = time.monotonic()
    results = _run(server, paths, tmp_path)
    assert time.monotonic() - started < 4.0  # the slow page is cut by the 1 s timeout
    status = {r.source.removeprefix(server.site.base): r for r in results}
    assert status["/feed/rss.xml"].items and status["/cluttered"].items
    assert "not a readable feed" in status["/feed/broken.xml"].error
    assert status["/error500"].error == "HTTP 500 Internal Server Error"
    assert "timed out" in status["/slow"].error
    assert "404" in status["/nowhere"].error
    lines = summarize(results)
    assert lines[0] == "6 sources: 2 ok, 0 not modified, 4 failed"
    for path in ("/feed/broken.xml", "/error500", "/slow", "/nowhere"):
        line = next(ln for ln in lines if ln.startswith(f"failed: {server.url(path)}: "))
        assert line.split(": ", 2)[2]  # a reason follows the URL


def test_conditional_get_answers_not_modified(server, tmp_path):
    [first] = _run(server, ["/feed/etag.xml"], tmp_path)
    assert first.status == "ok" and len(first.items) == 1
    db = sqlite3.connect(tmp_path / "store.sqlite")
    assert db.execute("SELECT etag, last_modified FROM fetch_state").fetchone() == (
        '"v1"', "Fri, 20 Nov 2026 08:00:00 GMT")
    [second] = _run(server, ["/feed/etag.xml"], tmp_path)
    assert (second.status, second.items) == ("not modified", [])
    assert summarize([second])[0] == "1 sources: 0 ok, 1 not modified, 0 failed"
    # Last-Modified alone also works (the server honours If-Modified-Since).
    db.execute("UPDATE fetch_state SET etag = ''")
    db.commit()
    [third] = _run(server, ["/feed/etag.xml"], tmp_path)
    assert third.status == "not modified"


def test_huge_page_is_refused_quickly_by_the_cap(server, tmp_path):
    before = server.site.huge_sent
    started = time.monotonic()
    [res] = _run(server, ["/huge"], tmp_path, timeout=10.0)
    elapsed = time.monotonic() - started
    assert res.status == "failed" and "too large" in res.error
    assert elapsed < 5.0
    time.sleep(0.2)  # let the server notice the hang-up
    assert server.site.huge_sent - before < 25 * 1024 * 1024  # far from the 50 MB page


def test_declared_length_over_the_cap_is_refused_before_reading(server, tmp_path):
    [res] = _run(server, ["/declared-huge"], tmp_path)
    assert res.status == "failed" and res.error == "too large (50 MB > 10 MB cap): skipped"


def test_small_cap_is_configurable(server, tmp_path):
    [res] = _run(server, ["/cluttered"], tmp_path, max_bytes=1000)
    assert res.status == "failed" and "too large" in res.error


# --- pages and encodings -----------------------------------------------------------------


def test_big5_and_gbk_pages_decode(server, tmp_path):
    results = _run(server, ["/big5", "/gbk"], tmp_path)
    big5, gbk = (r.items[0] for r in results)
    assert big5.title == BIG5_TITLE
    assert all(p in big5.text for p in BIG5_PARAS)
    assert all(p in gbk.text for p in GBK_PARAS)  # charset only in <meta>
    assert gbk.language == "zh-CN"


def test_charset_detection_without_any_declaration():
    text = "".join(GBK_PARAS)
    body = f"<html><body><p>{text}</p></body></html>".encode("gbk")
    assert text in decode_html(body)
    body = f"<html><body><p>{''.join(BIG5_PARAS)}</p></body></html>".encode("big5")
    assert "".join(BIG5_PARAS) in decode_html(body)
    assert normalize_charset("GB2312") == "gb18030" and normalize_charset("Big5") == "cp950"
    assert normalize_charset("no-such-charset") == ""


def test_cluttered_page_keeps_body_and_drops_related_list(server, tmp_path):
    [res] = _run(server, ["/cluttered"], tmp_path)
    item = res.items[0]
    for para in CLUTTER_PARAS:
        assert para in item.text
    for related in RELATED_TITLES:
        assert related not in item.text
    assert "分享到" not in item.text and "按讚" not in item.text and "訪客" not in item.text
    assert item.source == "測試資安週報"
    assert item.published is not None and item.published.date().isoformat() == "2026-11-21"


def test_classify():
    assert classify("application/rss+xml", b"<?xml version='1.0'?><rss/>") == "feed"
    assert classify("text/xml", b"<?xml version='1.0'?>\n<!-- c --><feed xmlns='x'/>") == "feed"
    assert classify("text/html", b"<!DOCTYPE html><html></html>") == "page"
    assert classify("text/xml", b"<opml version='2.0'/>") == "opml"
    assert classify("application/pdf", b"%PDF-1.4") == ""


def test_html_to_text():
    assert html_to_text("<p>一&amp;二</p><script>x()</script><p>三<br>四</p>") == "一&二\n三\n四"


# --- OPML --------------------------------------------------------------------------------


def test_opml_url_fetches_its_nested_feeds(server, tmp_path):
    results = _run(server, ["/subs.opml"], tmp_path)
    assert [r.source for r in results] == [
        server.url("/subs.opml"), server.url("/feed/rss.xml"), server.url("/feed/atom.xml")]
    assert results[0].kind == "opml" and results[0].status == "ok"
    assert all(r.status == "ok" and r.items for r in results[1:])


def test_opml_file_nested_outlines(tmp_path):
    path = tmp_path / "subs.opml"
    path.write_text("""<?xml version="1.0"?><opml version="1.0"><head/><body>
<outline text="A"><outline text="B"><outline text="deep" xmlUrl="https://a.example/deep.xml"/></outline>
<outline title="top" xmlUrl="https://b.example/rss"/></outline>
<outline text="dup" xmlUrl="https://b.example/rss"/><outline text="site only" htmlUrl="https://c.example/"/>
</body></opml>""", encoding="utf-8")
    refs = read_opml_file(path)
    assert [(r.url, r.title, r.folder) for r in refs] == [
        ("https://a.example/deep.xml", "deep", "B"), ("https://b.example/rss", "top", "A")]
    with pytest.raises(PodcastError, match="not valid OPML"):
        parse_opml("<opml><body>", "bad.opml")
    with pytest.raises(PodcastError, match="lists no feeds"):
        (tmp_path / "empty.opml").write_text("<opml><body/></opml>")
        read_opml_file(tmp_path / "empty.opml")


# --- dedup -------------------------------------------------------------------------------


def test_canonical_url():
    assert canonical_url("HTTPS://News.Example.COM:443/a/b/?utm_source=x&id=7&fbclid=z&gclid=q&ref=hn#top") == (
        "https://news.example.com/a/b?id=7")
    assert canonical_url("http://example.com:80/x") == canonical_url("http://example.com/x")
    assert canonical_url("http://example.com:8080/x") == "http://example.com:8080/x"
    # One id for one article, whichever path (feed, page, digest) reached it.
    assert item_id("https://example.com:443/a") == item_id("https://example.com/a")


def test_same_article_through_two_feeds_is_one_item(server, tmp_path):
    results = _run(server, ["/feed/rss.xml", "/feed/atom.xml"], tmp_path)
    db_items = [it for r in results for it in r.items if it.title == DB_TITLE]
    assert len(db_items) == 2 and db_items[0].id == db_items[1].id  # utm_ vs fbclid + fragment
    items, _ = dedup_items([it for r in results for it in r.items])
    assert [it.title for it in items].count(DB_TITLE) == 1


def test_syndicated_copy_is_a_near_duplicate(server, tmp_path):
    results = _run(server, ["/feed/rss.xml", "/feed/atom.xml"], tmp_path)
    everything = [it for r in results for it in r.items]
    original = next(it for it in everything if it.url.endswith("/article/chip?utm_source=rss&utm_medium=feed"))
    copy = next(it for it in everything if it.url.endswith("/syndicated/chip-copy"))
    assert original.id != copy.id
    assert is_near_duplicate(original.text, copy.text)
    kept, dropped = dedup_items(everything)
    assert (copy.id, original.id) in dropped and copy not in kept


def test_simhash_separates_unrelated_texts():
    a, b = "\n".join(CHIP_PARAS), "\n".join(CLUTTER_PARAS)
    assert hamming(simhash(a), simhash(b)) > 10
    assert not is_near_duplicate(a, b)
    assert is_near_duplicate(a, a.replace("，", ", ") + "\n（轉載）")
    index = NearDupIndex()
    index.add(simhash(a), "x")
    assert index.find(simhash(a + " ")) == "x" and index.find(simhash(b)) is None


# --- repeat runs and the store ---------------------------------------------------------------


def test_fetching_twice_yields_the_same_items(server, tmp_path):
    paths = ["/feed/rss.xml", "/feed/atom.xml", "/cluttered", "/big5"]
    first = [it for r in _run(server, paths, tmp_path / "a") for it in r.items]
    second = [it for r in _run(server, paths, tmp_path / "b") for it in r.items]
    assert [(it.id, content_hash(it)) for it in first] == [(it.id, content_hash(it)) for it in second]


def test_known_items_are_not_fetched_again(server, tmp_path):
    store_path = tmp_path / "store.sqlite"
    [res] = fetch_sources([server.url("/feed/atom.xml")], store_path, timeout=1.0)
    with Store(store_path) as store:
        store.add(res.items)
        hits = server.site.hits["/article/db"]
        [again] = fetch_sources([server.url("/feed/atom.xml")], store_path, timeout=1.0, known=store.get)
    assert server.site.hits["/article/db"] == hits
    assert [it.id for it in again.items] == [it.id for it in res.items]
    assert [content_hash(it) for it in again.items] == [content_hash(it) for it in res.items]


def test_progress_callback(server, tmp_path):
    seen: list[tuple[int, int, str, str]] = []
    _run(server, ["/subs.opml", "/error500"], tmp_path, progress=lambda *a: seen.append(a))
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert seen[-1][1] == 4  # the OPML list's two feeds joined the total
    assert {s[3] for s in seen} == {"ok", "failed"}


def test_redirects_are_followed_and_loops_reported(server, tmp_path):
    redirected, loop = _run(server, ["/redirect", "/loop"], tmp_path)
    assert redirected.status == "ok" and redirected.items[0].url == server.url("/article/db")
    assert redirected.items[0].title == DB_TITLE and redirected.items[0].source == "Test Dev Weekly"
    assert loop.status == "failed" and "too many redirects" in loop.error


def test_per_host_limit_and_user_agent(server, tmp_path):
    server.site.max_in_flight = 0
    results = _run(server, [f"/delay/{i}" for i in range(8)], tmp_path, per_host=2, max_connections=16)
    assert all(r.status == "ok" for r in results)
    assert server.site.max_in_flight == 2
    assert USER_AGENT in server.site.user_agents


def test_bad_urls_are_reported_not_raised(tmp_path):
    results = fetch_sources(["ftp://example.com/x", "http://127.0.0.1:9/refused"], None, timeout=1.0)
    assert results[0].status == "failed" and "not an http(s) URL" in results[0].error
    assert results[1].status == "failed" and "cannot connect" in results[1].error
