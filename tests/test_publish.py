"""publish: real MP3s (ffmpeg), real feed parsers (feedparser, podcastparser), real files."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import feedparser
import lxml.etree as ET
import podcastparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from podcast.config import ShowConfig
from podcast.errors import PodcastError
from podcast.publish import PublishResult, publish
from podcast.publish import cover as cover_mod
from podcast.publish.episodes import (
    EpisodeMeta,
    list_episodes,
    load_episode,
    save_episode,
)
from podcast.publish.feed import build_feed, podcast_guid
from podcast.publish.pages import (
    EpisodePage,
    clock,
    make_env,
    md_escape,
    render_article_html,
    render_article_md,
    safe_url,
)
from podcast.script import Bullet, DeepDive, Group, Script, SourceRef, render

BASE = "https://pod.example.org/show/"
TZ = dt.timezone(dt.timedelta(hours=8))
EVIL = "<script>alert('x')</script> & 夥伴"
NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
}


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_config(**show: object) -> ShowConfig:
    data = {
        "title": "晶片與程式碼",
        "author": "測試主持人",
        "description": "每天十分鐘，用中文聊全球科技新聞。",
        "base_url": BASE,
        "owner_name": "測試主持人",
        "owner_email": "host@example.org",
        "category": "Technology",
        "subcategory": "",
    }
    data.update(show)
    return ShowConfig.model_validate({"show": data})


def make_script(number: int, title: str, source_title: str) -> Script:
    return Script(
        episode=number,
        title=title,
        date=dt.date(2026, 3, number),
        intro=["大家好，歡迎收聽這一集的測試節目。"],
        summary=[
            Group("半導體動態", [Bullet("某晶圓廠宣布新製程進度提前一季", [1])]),
            Group("軟體與雲端", [Bullet("一套開源資料庫釋出重大版本", [2])]),
        ],
        deep_dives=[
            DeepDive("晶圓廠的新賽局", [Group("製程時程", [Bullet("新製程將先用於行動晶片", [1])])]),
            DeepDive("資料庫的新版本", [Group("功能亮點", [Bullet("查詢速度提升約三成", [1, 2])])]),
        ],
        sources=[
            SourceRef(1, source_title, "https://news.example.com/a?x=1&y=2"),
            SourceRef(2, "第二個來源", "https://news.example.com/b"),
        ],
        outro=["感謝收聽，我們下次見。"],
        disclaimer=["本內容由 AI 協助產生，僅供參考。"],
    )


def make_episode(
    episodes_dir: Path, mp3: Path, number: int, title: str, source_title: str = "第一個來源"
) -> Path:
    folder = episodes_dir / f"ep{number:04d}-test-{number}"
    folder.mkdir(parents=True)
    (folder / "script.md").write_text(render(make_script(number, title, source_title)), encoding="utf-8")
    shutil.copy(mp3, folder / "episode.mp3")
    from mutagen.mp3 import MP3

    duration = MP3(folder / "episode.mp3").info.length
    meta = EpisodeMeta(
        guid=str(uuid.uuid5(uuid.NAMESPACE_URL, BASE + folder.name)),
        number=number,
        title=title,
        slug=f"test-{number}",
        folder=folder.name,
        pub_date=dt.datetime(2026, 3, number, 7, 0, tzinfo=TZ),
        duration_s=duration,
        bytes=(folder / "episode.mp3").stat().st_size,
        segment_hashes=["abc", "def"],
        generated_at=dt.datetime(2026, 3, number, 6, 0, tzinfo=dt.UTC),
        voice="default",
        writer="offline",
        summary=f"第 {number} 集的一段摘要。",
    )
    save_episode(folder, meta)
    chapters = {"version": "1.2.0", "chapters": [
        {"startTime": 0, "title": "開場"},
        {"startTime": 1.5, "title": "快速重點摘要"},
    ]}
    (folder / "chapters.json").write_text(json.dumps(chapters, ensure_ascii=False), encoding="utf-8")
    (folder / "transcript.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.500\n大家好\n", encoding="utf-8")
    (folder / "transcript.srt").write_text("1\n00:00:00,000 --> 00:00:01,500\n大家好\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audio") / "tone.mp3"
    subprocess.run(
        [_ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=3", "-ac", "1", "-ar", "44100",
         "-b:a", "64k", "-y", str(out)],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory, mp3: Path) -> Path:
    """A published two-episode show, made once; tests get their own copy (covers stay current)."""
    show = tmp_path_factory.mktemp("site")
    make_episode(show / "episodes", mp3, 1, "第一集：晶片新製程")
    make_episode(show / "episodes", mp3, 2, "第二集：資料庫大改版", source_title=EVIL)
    publish(show, make_config())
    return show


@pytest.fixture
def show(tmp_path: Path, built_site: Path) -> Path:
    dest = tmp_path / "show"
    shutil.copytree(built_site, dest)
    return dest


def url_to_path(show: Path, url: str) -> Path:
    assert url.startswith(BASE), url
    return show / "episodes" / url[len(BASE):]


# --------------------------------------------------------------------------- feed


def test_feed_parses_in_feedparser(show: Path) -> None:
    result = publish(show, make_config())
    assert isinstance(result, PublishResult)
    parsed = feedparser.parse(result.feed.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.title for e in parsed.entries] == ["第二集：資料庫大改版", "第一集：晶片新製程"]
    for entry in parsed.entries:
        folder = next((show / "episodes").glob(f"ep000{entry.itunes_episode}-*"))
        meta = load_episode(folder)
        (enc,) = entry.enclosures
        assert int(enc.length) == (folder / "episode.mp3").stat().st_size
        assert enc.type == "audio/mpeg"
        assert url_to_path(show, enc.href) == folder / "episode.mp3"
        assert entry.id == meta.guid
        assert entry.itunes_duration == str(round(meta.duration_s))
        assert "快速重點摘要" in entry.content[0].value
    assert parsed.feed.language == "zh-TW"
    assert parsed.feed.image.href == BASE + "cover.png"


def test_feed_parses_in_podcastparser(show: Path) -> None:
    feed = show / "episodes" / "feed.xml"
    with feed.open("rb") as fh:
        parsed = podcastparser.parse(BASE + "feed.xml", fh)
    eps = parsed["episodes"]
    assert [e["number"] for e in eps] == [2, 1]
    assert eps[0]["published"] > eps[1]["published"]
    for e in eps:
        folder = next((show / "episodes").glob(f"ep{e['number']:04d}-*"))
        meta = load_episode(folder)
        assert e["guid"] == meta.guid
        assert e["total_time"] == round(meta.duration_s) == 3
        (enc,) = e["enclosures"]
        assert enc["file_size"] == (folder / "episode.mp3").stat().st_size
        # podcastparser 0.6.11 maps only the old github.com URI of the Podcasting 2.0 namespace,
        # not the official podcastindex.org one we write: test_feed_tags checks transcripts.


def test_feed_tags(show: Path) -> None:
    root = ET.fromstring((show / "episodes" / "feed.xml").read_bytes())
    ch = root.find("channel")
    assert ch.findtext("link") == BASE
    assert ch.find("atom:link", NS).get("href") == BASE + "feed.xml"
    assert ch.findtext("itunes:explicit", namespaces=NS) == "false"
    assert ch.findtext("itunes:type", namespaces=NS) == "episodic"
    assert ch.find("itunes:category", NS).get("text") == "Technology"
    assert ch.findtext("itunes:owner/itunes:email", namespaces=NS) == "host@example.org"
    assert ch.find("itunes:image", NS).get("href") == BASE + "cover.png"
    expected = uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), "pod.example.org/show/feed.xml")
    assert ch.findtext("podcast:guid", namespaces=NS) == str(expected) == podcast_guid(BASE + "feed.xml")
    assert ch.findtext("podcast:locked", namespaces=NS) == "no"
    items = ch.findall("item")
    assert len(items) == 2
    for item in items:
        assert item.findtext("itunes:explicit", namespaces=NS) == "false"
        assert item.findtext("itunes:episodeType", namespaces=NS) == "full"
        assert item.find("guid").get("isPermaLink") == "false"
        assert "EP" not in item.findtext("title")
        types = {t.get("type"): t.get("url") for t in item.findall("podcast:transcript", NS)}
        assert set(types) == {"text/vtt", "application/x-subrip"}
        for url in types.values():
            assert url_to_path(show, url).is_file()
        chap = item.find("podcast:chapters", NS)
        assert chap.get("type") == "application/json+chapters"
        assert url_to_path(show, chap.get("url")).is_file()
        assert url_to_path(show, item.find("itunes:image", NS).get("href")).is_file()
        assert len(item.findtext("description").encode()) <= 4000
    # lastBuildDate is the newest episode's date, so reruns are reproducible.
    assert ch.findtext("lastBuildDate") == items[0].findtext("pubDate")


def test_rerun_is_byte_identical_and_guids_stable(show: Path) -> None:
    feed = show / "episodes" / "feed.xml"
    before = feed.read_bytes()
    guids = [load_episode(f).guid for f, _ in list_episodes(show / "episodes")]
    publish(show, make_config())
    assert feed.read_bytes() == before
    parsed = feedparser.parse(feed.read_bytes())
    assert sorted(e.id for e in parsed.entries) == sorted(guids)


def test_explicit_show_says_true(show: Path) -> None:
    publish(show, make_config(explicit=True))
    root = ET.fromstring((show / "episodes" / "feed.xml").read_bytes())
    assert root.findtext("channel/itunes:explicit", namespaces=NS) == "true"
    assert all(i.findtext("itunes:explicit", namespaces=NS) == "true" for i in root.iter("item"))


def test_invalid_subcategory_is_dropped_with_warning(show: Path) -> None:
    result = publish(show, make_config(subcategory="Tech News"))
    assert any("Tech News" in w for w in result.warnings)
    root = ET.fromstring(result.feed.read_bytes())
    cat = root.find("channel/itunes:category", NS)
    assert cat.get("text") == "Technology" and len(cat) == 0
    result = publish(show, make_config(category="News", subcategory="Tech News"))
    cat = ET.fromstring(result.feed.read_bytes()).find("channel/itunes:category", NS)
    assert cat.get("text") == "News" and cat[0].get("text") == "Tech News"
    with pytest.raises(PodcastError, match="show.category"):
        publish(show, make_config(category="Gadgets"))


# --------------------------------------------------------------------------- escaping


def test_untrusted_source_title_is_escaped(show: Path) -> None:
    folder = next((show / "episodes").glob("ep0002-*"))
    html = (folder / "article.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; 夥伴" in html
    assert 'href="https://news.example.com/a?x=1&amp;y=2"' in html
    md = (folder / "article.md").read_text(encoding="utf-8")
    assert "<script>" not in md and "\\<script\\>" in md
    parsed = feedparser.parse((show / "episodes" / "feed.xml").read_bytes())
    assert not parsed.bozo
    notes = parsed.entries[0].content[0].value
    assert "<script>" not in notes and "&lt;script&gt;" in notes


def test_safe_url_and_md_escape() -> None:
    assert safe_url("javascript:alert(1)") == ""
    assert safe_url("https://a.example/x") == "https://a.example/x"
    assert safe_url("//evil.example") == ""
    assert md_escape("a*b_[c]<d>") == "a\\*b\\_\\[c\\]\\<d\\>"
    assert clock(3) == "00:03" and clock(605.6) == "10:05" and clock(3725) == "1:02:05"


# --------------------------------------------------------------------------- pages


def test_article_shape(show: Path) -> None:
    folder = next((show / "episodes").glob("ep0001-*"))
    html = (folder / "article.html").read_text(encoding="utf-8")
    assert "<title>晶片與程式碼 EP1 - 第一集：晶片新製程</title>" in html
    order = ["大家好，歡迎收聽", "快速重點摘要", "晶圓廠的新賽局", "資料庫的新版本", "資料來源", "感謝收聽", "AI 協助產生"]
    pos = html.index('class="intro"')
    for text in order:  # each part comes after the one before it
        pos = html.index(text, pos + 1)
    assert '<audio id="player" controls preload="metadata" src="episode.mp3">' in html
    assert 'data-start="1.5"' in html and "audio.currentTime" in html
    assert '<a class="ref" href="#src-1">[1]</a>' in html and 'id="src-1"' in html
    assert f'property="og:image" content="{BASE}ep0001-test-1/cover.png"' in html
    assert 'name="viewport"' in html and "Noto Sans TC" in html
    md = (folder / "article.md").read_text(encoding="utf-8")
    assert md.startswith("# 晶片與程式碼 EP1 - 第一集：晶片新製程\n")
    assert "## 快速重點摘要" in md and "## 資料來源" in md
    assert "1. [第一個來源](https://news.example.com/a?x=1&y=2)" in md
    assert "[\\[1\\]](https://news.example.com/a?x=1&y=2)" in md
    assert "<" not in md.replace("\\<", "")


def test_index_lists_every_episode(show: Path) -> None:
    html = (show / "episodes" / "index.html").read_text(encoding="utf-8")
    assert 'href="feed.xml"' in html and 'src="cover.png"' in html
    a, b = html.index("ep0002-test-2/article.html"), html.index("ep0001-test-1/article.html")
    assert a < b  # newest first
    assert 'src="ep0001-test-1/episode.mp3"' in html
    assert "00:03" in html and "2026/03/02" in html


def test_user_template_overrides_default(show: Path) -> None:
    (show / "templates").mkdir()
    (show / "templates" / "index.html.j2").write_text(
        "<p>自訂首頁 {% for e in episodes %}[{{ e.meta.title }}]{% endfor %}</p>\n", encoding="utf-8"
    )
    publish(show, make_config())
    assert (show / "episodes" / "index.html").read_text(encoding="utf-8").startswith("<p>自訂首頁 [第二集")
    assert "<audio" in next((show / "episodes").glob("ep0001-*/article.html")).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- robustness


def test_deleted_episode_leaves_feed_and_index(show: Path) -> None:
    shutil.rmtree(next((show / "episodes").glob("ep0001-*")))
    result = publish(show, make_config())
    parsed = feedparser.parse(result.feed.read_bytes())
    assert [e.itunes_episode for e in parsed.entries] == ["2"]
    assert "ep0001" not in result.index.read_text(encoding="utf-8")
    assert [m.number for m in result.episodes] == [2]


def test_crash_while_serializing_keeps_old_feed(show: Path, mp3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feedgen.feed import FeedGenerator

    feed = show / "episodes" / "feed.xml"
    before = feed.read_bytes()
    make_episode(show / "episodes", mp3, 3, "第三集：新的一集")

    def boom(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(FeedGenerator, "rss_str", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        publish(show, make_config())
    assert feed.read_bytes() == before
    assert not list((show / "episodes").glob(".feed.xml.*"))


def test_crash_before_rename_keeps_old_feed(show: Path, mp3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import podcast.util

    feed = show / "episodes" / "feed.xml"
    before = feed.read_bytes()
    make_episode(show / "episodes", mp3, 3, "第三集：新的一集")
    real_replace = podcast.util.os.replace

    def crash_on_feed(src: str, dest: object) -> None:
        if Path(str(dest)).name == "feed.xml":
            raise OSError("disk vanished")
        real_replace(src, dest)

    monkeypatch.setattr(podcast.util.os, "replace", crash_on_feed)
    with pytest.raises(OSError, match="disk vanished"):
        publish(show, make_config())
    assert feed.read_bytes() == before
    assert not list((show / "episodes").glob(".feed.xml.*"))
    monkeypatch.undo()
    result = publish(show, make_config())
    assert [m.number for m in result.episodes] == [3, 2, 1]


def test_broken_episode_is_skipped_others_publish(show: Path, mp3: Path) -> None:
    bad_json = make_episode(show / "episodes", mp3, 3, "第三集")
    (bad_json / "episode.json").write_text("{not json", encoding="utf-8")
    bad_script = make_episode(show / "episodes", mp3, 4, "第四集")
    (bad_script / "script.md").write_text("no front matter\n", encoding="utf-8")
    bad_chapters = make_episode(show / "episodes", mp3, 5, "第五集")
    (bad_chapters / "chapters.json").write_text("[{]", encoding="utf-8")
    result = publish(show, make_config())
    assert [m.number for m in result.episodes] == [2, 1]
    joined = "\n".join(result.warnings)
    for name in (bad_json.name, bad_script.name, bad_chapters.name):
        assert name in joined
    assert "script.md:1" in joined
    parsed = feedparser.parse(result.feed.read_bytes())
    assert not parsed.bozo and len(parsed.entries) == 2


def test_list_episodes_skips_broken_and_unfinished(tmp_path: Path, mp3: Path, caplog: pytest.LogCaptureFixture) -> None:
    eps = tmp_path / "episodes"
    make_episode(eps, mp3, 2, "二")
    make_episode(eps, mp3, 1, "一")
    broken = make_episode(eps, mp3, 3, "三")
    (broken / "episode.json").write_text('{"guid": ""}', encoding="utf-8")
    unfinished = make_episode(eps, mp3, 4, "四")
    (unfinished / "episode.mp3").unlink()
    (eps / "notes").mkdir()
    with caplog.at_level(logging.WARNING):
        found = list_episodes(eps)
    assert [m.number for _, m in found] == [1, 2]
    assert "ep0003-test-3" in caplog.text


def test_episode_meta_round_trip_and_validation(tmp_path: Path) -> None:
    meta = EpisodeMeta(
        guid="g-1", number=7, title="標題", slug="biao-ti", folder="ep0007-biao-ti",
        pub_date=dt.datetime(2026, 6, 13, 7, tzinfo=TZ), duration_s=61.5, bytes=10,
        generated_at=dt.datetime(2026, 6, 13, tzinfo=dt.UTC),
    )
    save_episode(tmp_path, meta)
    assert load_episode(tmp_path) == meta
    assert meta.revision == 1
    with pytest.raises(ValueError):
        EpisodeMeta.model_validate({**meta.model_dump(), "pub_date": "2026-06-13T07:00:00"})
    with pytest.raises(ValueError):
        EpisodeMeta.model_validate({**meta.model_dump(), "folder": "../etc"})
    (tmp_path / "episode.json").write_text('{"guid": 1}', encoding="utf-8")
    with pytest.raises(PodcastError, match="episode.json"):
        load_episode(tmp_path)


# --------------------------------------------------------------------------- cover


def test_covers_are_3000_rgb_png(show: Path) -> None:
    for path in [show / "episodes" / "cover.png", *(show / "episodes").glob("ep*/cover.png")]:
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "RGB", (3000, 3000))


def test_cover_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cover_mod.make_episode_cover(a, "晶片與程式碼", "一個很長很長的標題，測試自動換行與縮小字級是否正常運作", 12)
    cover_mod.make_episode_cover(b, "晶片與程式碼", "一個很長很長的標題，測試自動換行與縮小字級是否正常運作", 12)
    assert a.read_bytes() == b.read_bytes()
    assert not cover_mod.make_episode_cover(a, "晶片與程式碼", "一個很長很長的標題，測試自動換行與縮小字級是否正常運作", 12)
    with Image.open(io.BytesIO(a.read_bytes())) as im:
        colors = im.resize((64, 64)).getcolors(64 * 64)
        assert colors is None or len(colors) > 50  # a gradient with text, not a flat fill


def test_user_artwork_is_copied(show: Path) -> None:
    art = show / "art.jpg"
    Image.new("RGB", (1400, 1400), (200, 30, 30)).save(art, "JPEG")
    publish(show, make_config(artwork="art.jpg"))
    with Image.open(show / "episodes" / "cover.png") as im:
        assert (im.format, im.size) == ("PNG", (1400, 1400))
        assert im.getpixel((700, 700))[0] > 150
    Image.new("RGB", (800, 600)).save(art, "JPEG")
    with pytest.raises(PodcastError, match="square"):
        publish(show, make_config(artwork="art.jpg"))
    with pytest.raises(PodcastError, match="not found"):
        publish(show, make_config(artwork="missing.png"))


def test_missing_cjk_font_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cover_mod, "FONT_DIRS", (tmp_path,))
    cover_mod.find_cjk_font.cache_clear()
    try:
        with pytest.raises(PodcastError, match="apt-get install fonts-noto-cjk"):
            cover_mod.make_show_cover(tmp_path / "c.png", "標題", "副標")
    finally:
        cover_mod.find_cjk_font.cache_clear()


def test_empty_show_publishes_valid_feed(tmp_path: Path) -> None:
    result = publish(tmp_path, make_config())
    parsed = feedparser.parse(result.feed.read_bytes())
    assert not parsed.bozo and parsed.entries == []
    assert "還沒有任何一集" in result.index.read_text(encoding="utf-8")
    first = result.feed.read_bytes()
    publish(tmp_path, make_config())
    assert result.feed.read_bytes() == first


def test_description_is_capped_at_4000_bytes(show: Path) -> None:
    folder = next((show / "episodes").glob("ep0001-*"))
    meta = load_episode(folder)
    save_episode(folder, meta.model_copy(update={"summary": "很長的摘要。" * 1000}))
    result = publish(show, make_config())
    root = ET.fromstring(result.feed.read_bytes())
    descs = [i.findtext("description") for i in root.iter("item")]
    assert max(len(d.encode()) for d in descs) <= 4000
    assert any(d.endswith("…") for d in descs)


_line = st.text(min_size=1, max_size=40).map(lambda s: " ".join(s.split())).filter(bool)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source_title=_line, episode_title=_line)
def test_any_untrusted_text_keeps_feed_and_article_valid(
    built_site: Path, source_title: str, episode_title: str
) -> None:
    """Whatever a scraped title holds, the feed parses and the article carries no live markup."""
    folder = next((built_site / "episodes").glob("ep0001-*"))
    meta = load_episode(folder).model_copy(update={"title": episode_title, "summary": source_title})
    try:
        script = make_script(1, "標題", source_title)
    except ValueError:
        return  # script.md rejects it (e.g. trailing [n]); nothing to publish
    page = EpisodePage(folder=folder, meta=meta, script=script, chapters=[])
    config = make_config()
    data, _ = build_feed([page], config)
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 1
    html = render_article_html(make_env(), page, config)
    body = html[html.index('class="intro"'):html.index("<script>\n")]
    assert "<script" not in body.lower().replace("<script>\n", "")
    md = render_article_md(make_env(), page, config)
    assert re.search(r"(?<!\\)<", md) is None


def test_title_edited_in_script_md_is_published(show: Path) -> None:
    folder = next((show / "episodes").glob("ep0001-*"))
    text = (folder / "script.md").read_text(encoding="utf-8")
    (folder / "script.md").write_text(text.replace("title: 第一集：晶片新製程", "title: 改過的標題"), encoding="utf-8")
    result = publish(show, make_config())
    titles = [e.title for e in feedparser.parse(result.feed.read_bytes()).entries]
    assert titles == ["第二集：資料庫大改版", "改過的標題"]
    assert "EP1 - 改過的標題" in (folder / "article.html").read_text(encoding="utf-8")
    assert load_episode(folder).title == "第一集：晶片新製程"  # publish never rewrites episode.json
