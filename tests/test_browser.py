"""The published site in a real browser (issue 7): headless Chromium against `podcast serve`.

index.html and an article load without console errors, the audio element
loads the MP3 from the same server and reports its real duration, a chapter
link seeks the player, and screenshots (phone and desktop) are saved under
test-artifacts/ for a human to look at.

Chromium comes from the system (Debian's ``chromium`` package, or
$PODCAST_TEST_CHROMIUM): nothing is downloaded at run time. A missing browser
or a missing Playwright is a test failure, not a skip: CI installs both.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_feed_parsers import HOSTILE_TITLE, build_show, ffprobe_duration

from podcast.serve import make_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Chapter links call audio.play(); no user gesture exists in a test, and no sound card either.
    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
]


def chromium_path() -> str:
    path = os.environ.get("PODCAST_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail(
            "chromium is not installed: apt-get install chromium (or set PODCAST_TEST_CHROMIUM to a Chromium binary)"
        )
    return path


@dataclass
class Site:
    show: Path
    base: str  # http://127.0.0.1:PORT/


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    show = build_show(tmp_path_factory)
    server = make_server(show / "episodes", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(show, f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install playwright (no 'playwright install' needed)")
    exe = chromium_path()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, locale="zh-TW",
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class Watched:
    """Everything a page reported that a reader would call broken."""

    errors: list[str] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)


def _media_abort(request: Any) -> bool:
    """A seek cancels the audio's in-flight Range request: normal for media, not a failure."""
    return request.resource_type == "media" and "ERR_ABORTED" in (request.failure or "")


def open_page(context: Any, url: str, width: int = 1280, height: int = 900) -> tuple[Any, Watched]:
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    seen = Watched()
    page.on("console", lambda m: seen.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.errors.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: None if _media_abort(r) else seen.errors.append(f"requestfailed: {r.url} {r.failure}"))
    page.on("response", lambda r: seen.responses.append((r.url, r.status)))
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, url
    return page, seen


def article_url(site: Site, number: int) -> str:
    folder = next((site.show / "episodes").glob(f"ep{number:04d}-*"))
    return f"{site.base}{folder.name}/article.html"


def wait_for_metadata(page: Any) -> float:
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=20_000)
    return float(page.evaluate("document.getElementById('player').duration"))


def test_index_loads_cleanly(site: Site, browser_context: Any) -> None:
    page, seen = open_page(browser_context, site.base + "index.html")
    try:
        page.wait_for_load_state("networkidle")
        links = page.locator("ol.episodes h2 a")
        assert links.count() == 2
        # Newest first; the hostile title is shown as text, not run.
        assert HOSTILE_TITLE in links.nth(1).inner_text()
        assert page.evaluate("window.xssRan === undefined")
        covers = page.locator("img")
        for i in range(covers.count()):
            assert covers.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), f"image {i} broken"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "index-desktop.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / "index-phone.png"), full_page=True)
        assert seen.errors == []
        assert all(status < 400 for _, status in seen.responses), seen.responses
    finally:
        page.close()


def test_article_plays_and_seeks(site: Site, browser_context: Any) -> None:
    url = article_url(site, 1)
    page, seen = open_page(browser_context, url)
    try:
        mp3 = next((site.show / "episodes").glob("ep0001-*/episode.mp3"))
        duration = wait_for_metadata(page)
        assert abs(duration - ffprobe_duration(mp3)) <= 1.0, duration
        src = page.evaluate("document.getElementById('player').currentSrc")
        assert src == url.rsplit("/", 1)[0] + "/episode.mp3"
        assert any(u == src and status in (200, 206) for u, status in seen.responses), seen.responses

        chapters = json.loads((mp3.parent / "chapters.json").read_text(encoding="utf-8"))["chapters"]
        links = page.locator("ol.chapters a[data-start]")
        assert links.count() == len(chapters)
        for index in (2, len(chapters) - 1, 1):
            start = float(chapters[index]["startTime"])
            links.nth(index).click()
            # The player plays on after the seek, so catch currentTime while it is still near the start.
            page.wait_for_function(
                """start => { const a = document.getElementById('player');
                   return !a.seeking && Math.abs(a.currentTime - start) < 0.5; }""",
                arg=start, timeout=10_000, polling="raf",
            )
            assert page.url == url  # the click seeks; it does not navigate
        assert not page.evaluate("document.getElementById('player').error")
        assert seen.errors == []
        assert all(status < 400 for _, status in seen.responses), seen.responses
    finally:
        page.close()


@pytest.mark.parametrize(("name", "width", "height"), [("phone", 390, 844), ("desktop", 1280, 900)])
def test_article_screenshots(site: Site, browser_context: Any, name: str, width: int, height: int) -> None:
    page, seen = open_page(browser_context, article_url(site, 1), width, height)
    try:
        page.wait_for_load_state("networkidle")
        wait_for_metadata(page)
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert HOSTILE_TITLE in page.locator("h1").inner_text()
        assert page.locator("script").count() == 1  # only the page's own chapter script
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"article-{name}.png"), full_page=True)
        page.screenshot(path=str(ARTIFACTS / f"article-{name}-top.png"))
        assert seen.errors == []
    finally:
        page.close()


def test_cover_keeps_long_latin_titles_inside_the_picture(tmp_path: Path) -> None:
    # Seen in the screenshots: the "<script>…</script>" title is one Latin run and ran off the cover's edge.
    import numpy as np
    from PIL import Image

    from podcast.publish.cover import MARGIN, SIZE, make_episode_cover

    for title in (
        HOSTILE_TITLE,
        "https://example.com/a/very/long/path/without/any/spaces/at/all 的新聞",
        "Supercalifragilisticexpialidociousandevenlongerwordhere 新聞",
    ):
        path = tmp_path / "cover.png"
        make_episode_cover(path, "科技碎碎念", title, 1, force=True)
        pixels = np.asarray(Image.open(path).convert("RGB"))
        # The title is pure white; the background never is. Nothing white in the right margin.
        right_margin = pixels[:, SIZE - MARGIN + 40 :, :]
        assert int((right_margin.min(axis=2) > 230).sum()) == 0, title
        assert int((pixels[:, : SIZE - MARGIN].min(axis=2) > 230).sum()) > 10_000  # the title was drawn


def test_server_stays_quiet_when_a_player_drops_the_connection(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Every seek cancels the player's in-flight Range request; `podcast serve` used to print a traceback each time.
    import socket
    import struct
    import time

    (tmp_path / "episode.mp3").write_bytes(os.urandom(8 * 1024 * 1024))
    server = make_server(tmp_path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for extra in ("", "Range: bytes=0-\r\n", "Range: bytes=1000-\r\n"):
            sock = socket.create_connection(server.server_address[:2])
            sock.sendall(f"GET /episode.mp3 HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode())
            assert sock.recv(12).startswith(b"HTTP/1.")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
            sock.close()
        time.sleep(1.0)  # let the handler threads hit the reset
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err
