"""The published feed as three independent parsers read it (issue 7).

feedparser (Python), podcastparser (gPodder) and podcast-partytime (the
Podcast Index parser, run by node from tests/js) each parse a feed built from
two real episodes: real offline voice, real ffmpeg. Every enclosure length
must equal its file's size, every duration must match ffprobe, GUIDs must
survive a publish rerun and a regeneration, and the Podcasting 2.0 transcript
and chapters URLs must point at real files. One episode's title and source
carry ``<script>`` and ``&``: they must come out escaped and parse everywhere.

`build_show` is shared with tests/test_browser.py so the audio is built once
per test session.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import feedparser
import lxml.etree
import podcastparser
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
JS_DIR = REPO / "tests" / "js"
BASE_URL = "https://podcast.example.com/"  # the skeleton show.toml's base_url

HOSTILE_TITLE = "雲雀公司推出 <script>window.xssRan=1</script> & 安全掃描工具"  # runs if not escaped
HOSTILE_URL = "https://example.com/lark/scanner?a=1&b=2"

# Two tiny digests written for these tests (fictional news), one per episode.
DIGEST_1 = f"""---
title: "測試摘要一 — 2026/11/20"
date: 2026-11-20T07:30:00+08:00
---

## 今日焦點

### {HOSTILE_TITLE}

**核心摘要**
虛構的雲雀公司發表一套網頁安全掃描工具，可以自動找出網站裡的跨站腳本漏洞。官方表示，新工具每天能掃描一萬個網頁，誤報率比上一版降低三成。
**關鍵實體**：雲雀公司、安全掃描、跨站腳本
**重要性**：高
**來源**：[來源1]({HOSTILE_URL})

### 北風實驗室發表低功耗語音晶片

**核心摘要**
虛構的北風實驗室推出一款低功耗語音辨識晶片，待機耗電只有兩毫瓦。這款晶片預計明年第一季量產，主要用在耳機與智慧手錶。
**關鍵實體**：北風實驗室、語音晶片、低功耗
**重要性**：中
**來源**：[來源1](https://news.example.org/2026/11/20/northwind-chip)
"""

DIGEST_2 = """---
title: "測試摘要二 — 2026/11/21"
date: 2026-11-21T07:30:00+08:00
---

## 今日焦點

### 青石網路推出離線翻譯耳機

**核心摘要**
虛構的青石網路發表一款離線翻譯耳機，不必連網就能即時翻譯十二種語言。公司表示，耳機單次充電可以連續翻譯六小時，售價為新台幣五千九百元。
**關鍵實體**：青石網路、翻譯耳機、離線翻譯
**重要性**：高
**來源**：[來源1](https://example.com/bluestone/earbuds)

### 海鷗雲端開放邊緣運算平台

**核心摘要**
虛構的海鷗雲端宣布開放邊緣運算平台，讓開發者把模型部署到離使用者更近的機房。第一批節點設在台北與高雄，延遲可以降到十毫秒以內。
**關鍵實體**：海鷗雲端、邊緣運算、延遲
**重要性**：中
**來源**：[來源1](https://news.example.org/2026/11/21/seagull-edge)
"""

_SHOW: Path | None = None
_SHOW_ERROR: str | None = None  # a failed build is reported once, not rebuilt by every module


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PODCAST_FAKE_VOICE"}  # the real voice
    env.update(NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "podcast", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )


def build_show(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A show with two real episodes (built once per session, shared with test_browser.py)."""
    global _SHOW, _SHOW_ERROR
    if _SHOW is not None:
        return _SHOW
    if _SHOW_ERROR is not None:
        pytest.fail(f"the shared test show failed to build earlier: {_SHOW_ERROR}")
    from podcast import pipeline

    try:
        root = tmp_path_factory.mktemp("published")
        r = run_cli("init", "show", cwd=root)
        assert r.returncode == 0, r.stderr
        show = root / "show"
        days = [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]
        for n, (text, day) in enumerate(zip([DIGEST_1, DIGEST_2], days, strict=True), 1):
            digest = show / "sources" / f"test-digest-{n}.md"
            digest.write_text(text, encoding="utf-8")
            pipeline.make(show, [str(digest)], date=day)
    except BaseException as exc:
        _SHOW_ERROR = f"{type(exc).__name__}: {exc}"
        raise
    _SHOW = show
    return show


@pytest.fixture(scope="module")
def show(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_show(tmp_path_factory)


# --------------------------------------------------------------------------- helpers


def ffprobe_duration(path: Path) -> float:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    return float(json.loads(probe.stdout)["format"]["duration"])


def local_file(show: Path, url: str) -> Path:
    """The file under episodes/ that a feed URL under base_url names."""
    assert url.startswith(BASE_URL), url
    from urllib.parse import unquote

    path = show / "episodes" / unquote(url.removeprefix(BASE_URL))
    assert path.is_file(), f"{url} does not resolve to a file ({path})"
    return path


def episode_metas(show: Path) -> dict[str, dict[str, Any]]:
    """episode.json of every episode, by guid."""
    out = {}
    for p in sorted((show / "episodes").glob("ep*/episode.json")):
        meta = json.loads(p.read_text(encoding="utf-8"))
        out[meta["guid"]] = meta
    return out


def partytime(feed: Path) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: install Node.js 20+ (apt nodejs / CI setup) to run the partytime tests")
    if not (JS_DIR / "node_modules" / "podcast-partytime").is_dir():
        pytest.fail(f"podcast-partytime is not installed: run 'npm ci' in {JS_DIR}")
    r = subprocess.run(
        [node, str(JS_DIR / "parse.mjs"), str(feed)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PARTYTIME_LOG": "error"},
    )
    assert r.returncode == 0, f"partytime failed: {r.stderr}"
    return json.loads(r.stdout)


def parse_feedparser(feed: Path) -> list[dict[str, Any]]:
    d = feedparser.parse(feed.read_bytes())
    assert not d.bozo, d.get("bozo_exception")
    items = []
    for e in d.entries:
        enc = [link for link in e.links if link.get("rel") == "enclosure"]
        assert len(enc) == 1
        items.append({
            "guid": e.id,
            "title": e.title,
            "enclosure": enc[0]["href"],
            "length": int(enc[0]["length"]),
            "duration": float(e.itunes_duration),
            "chapters": e.get("podcast_chapters", {}).get("url"),
        })
    return items


def parse_podcastparser(feed: Path) -> list[dict[str, Any]]:
    with feed.open("rb") as f:
        d = podcastparser.parse(BASE_URL + "feed.xml", f)
    items = []
    for e in d["episodes"]:
        assert len(e["enclosures"]) == 1
        items.append({
            "guid": e["guid"],
            "title": e["title"],
            "enclosure": e["enclosures"][0]["url"],
            "length": e["enclosures"][0]["file_size"],
            "duration": float(e["total_time"]),
        })
    return items


def parse_partytime(feed: Path) -> list[dict[str, Any]]:
    d = partytime(feed)
    items = []
    for e in d["items"]:
        items.append({
            "guid": e["guid"],
            "title": e["title"],
            "enclosure": e["enclosure"]["url"],
            "length": e["enclosure"]["length"],
            "duration": float(e["duration"]),
            "transcripts": e.get("podcastTranscripts", []),
            "chapters": (e.get("podcastChapters") or {}).get("url"),
        })
    return items


PARSERS = {"feedparser": parse_feedparser, "podcastparser": parse_podcastparser, "partytime": parse_partytime}


def check_items(show: Path, items: list[dict[str, Any]]) -> None:
    """What every parser must agree on about the feed's items."""
    metas = episode_metas(show)
    assert len(items) == len(metas) == 2
    assert {i["guid"] for i in items} == set(metas)
    for item in items:
        mp3 = local_file(show, item["enclosure"])
        assert mp3.name == "episode.mp3" and mp3.parent.name == metas[item["guid"]]["folder"]
        assert item["length"] == mp3.stat().st_size
        assert abs(item["duration"] - ffprobe_duration(mp3)) <= 1.0
        assert item["title"] == metas[item["guid"]]["title"]


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("parser", list(PARSERS))
def test_every_parser_reads_the_episodes(show: Path, parser: str) -> None:
    check_items(show, PARSERS[parser](show / "episodes" / "feed.xml"))


def test_feedparser_finds_chapters_on_disk(show: Path) -> None:
    for item in parse_feedparser(show / "episodes" / "feed.xml"):
        assert item["chapters"], "no podcast:chapters"
        chapters = json.loads(local_file(show, item["chapters"]).read_text(encoding="utf-8"))
        assert chapters["chapters"][0]["startTime"] == 0


def test_partytime_reports_transcripts_and_chapters(show: Path) -> None:
    d = partytime(show / "episodes" / "feed.xml")
    assert {"transcript", "chapters"} <= set(d["pc20support"].get("1", []))
    assert d["guid"]  # podcast:guid of the channel
    for item in parse_partytime(show / "episodes" / "feed.xml"):
        types = {t["type"]: t["url"] for t in item["transcripts"]}
        assert set(types) == {"text/vtt", "application/srt"}  # partytime normalizes x-subrip
        vtt = local_file(show, types["text/vtt"]).read_text(encoding="utf-8")
        assert vtt.startswith("WEBVTT") and "-->" in vtt
        srt = local_file(show, types["application/srt"]).read_text(encoding="utf-8")
        assert srt.lstrip().startswith("1\n") and "-->" in srt
        chapters = json.loads(local_file(show, item["chapters"]).read_text(encoding="utf-8"))
        starts = [c["startTime"] for c in chapters["chapters"]]
        assert starts == sorted(starts) and len(starts) >= 3
        assert starts[-1] < item["duration"]


def test_markup_in_titles_is_escaped_and_parses(show: Path) -> None:
    feed = show / "episodes" / "feed.xml"
    raw = feed.read_bytes()
    assert b"<script>" not in raw  # inside CDATA too: show notes are HTML-escaped first
    assert b"&lt;script&gt;window.xssRan=1&lt;/script&gt; &amp;" in raw
    root = lxml.etree.fromstring(raw, lxml.etree.XMLParser(recover=False))
    titles = [t.text for t in root.iter("title")]
    assert HOSTILE_TITLE in titles
    for name, parse in PARSERS.items():
        got = [i["title"] for i in parse(feed)]
        assert HOSTILE_TITLE in got, name
    # The show notes' source link keeps its query string intact through escaping.
    entry = next(e for e in feedparser.parse(raw).entries if e.title == HOSTILE_TITLE)
    assert f'href="{HOSTILE_URL.replace("&", "&amp;")}"' in entry.content[0].value
    notes = entry.content[0].value
    assert "<script>" not in notes and "&lt;script&gt;" in notes


def test_publish_rerun_keeps_feed_and_guids(show: Path) -> None:
    feed = show / "episodes" / "feed.xml"
    before = feed.read_bytes()
    guids = {i["guid"] for i in parse_partytime(feed)}
    r = run_cli("publish", cwd=show)
    assert r.returncode == 0, r.stderr
    assert feed.read_bytes() == before
    for parse in PARSERS.values():
        assert {i["guid"] for i in parse(feed)} == guids


def test_regenerate_keeps_guids_and_updates_enclosure(
    show: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A copy (cache included, so only the edited segment is voiced again): the shared show stays as built.
    copy = tmp_path_factory.mktemp("regen") / "show"
    shutil.copytree(show, copy)
    feed = copy / "episodes" / "feed.xml"
    before = {i["guid"]: i for i in parse_feedparser(feed)}
    ep1 = next((copy / "episodes").glob("ep0001-*"))
    script = ep1 / "script.md"
    text = script.read_text(encoding="utf-8")
    old = "可以自動找出網站裡的跨站腳本漏洞。[1]"
    assert old in text
    script.write_text(
        text.replace(old, "可以自動找出網站裡的跨站腳本漏洞，也會標出風險最高的頁面，讓工程師先處理。[1]", 1),
        encoding="utf-8",
    )
    r = run_cli("regenerate", "1", cwd=copy)
    assert r.returncode == 0, r.stdout + r.stderr
    meta = json.loads((ep1 / "episode.json").read_text(encoding="utf-8"))
    assert meta["revision"] == 2
    assert meta["guid"] in before
    for name, parse in PARSERS.items():
        items = parse(feed)
        assert {i["guid"] for i in items} == set(before), name
        check_items(copy, items)
        # The longer bullet made a longer episode; the feed follows the new file.
        new = next(i for i in items if i["guid"] == meta["guid"])
        assert new["length"] != before[meta["guid"]]["length"], name
    assert "也會標出風險最高的頁面" in feed.read_text(encoding="utf-8")
