"""Slugs, atomic writes, show.toml validation and the Range-capable preview server."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podcast.config import load_show
from podcast.errors import PodcastError
from podcast.serve import make_server
from podcast.util import atomic_open, slugify, write_text_atomic


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("科技巨頭的 AI 戰略布局", "ke-ji-ju-tou-de-ai-zhan-lve-bu-ju"),
        ("../../etc/passwd", "etc-passwd"),
        ("", "2026-11-20"),
        ("。！？", "2026-11-20"),
        ("Meta 與 Scale AI", "meta-yu-scale-ai"),
    ],
)
def test_slugify(title: str, expected: str) -> None:
    assert slugify(title, "2026-11-20") == expected


@given(st.text(max_size=80))
def test_slug_is_always_path_safe(title: str) -> None:
    slug = slugify(title, "2026-11-20")
    assert slug and slug not in (".", "..")
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in slug)
    assert len(slug) <= 48


def test_atomic_write_keeps_old_file_on_crash(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.xml"]


def test_show_toml_base_url_must_be_absolute(tmp_path: Path) -> None:
    (tmp_path / "show.toml").write_text(
        '[show]\ntitle="t"\nauthor="a"\ndescription="d"\nbase_url="podcast.example.com"\n', encoding="utf-8"
    )
    with pytest.raises(PodcastError, match=r"show\.toml: show\.base_url is invalid"):
        load_show(tmp_path)


def test_show_toml_minimal_gets_defaults(tmp_path: Path) -> None:
    (tmp_path / "show.toml").write_text(
        '[show]\ntitle="t"\nauthor="a"\ndescription="d"\nbase_url="https://x.example/p"\n', encoding="utf-8"
    )
    cfg = load_show(tmp_path)
    assert cfg.show.base_url == "https://x.example/p/"
    assert cfg.audio.loudness_lufs == -16.0 and cfg.voice.preset == "default"


def test_serve_honours_range_requests(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    (tmp_path / "episode.mp3").write_bytes(data)
    server = make_server(tmp_path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/episode.mp3"
        req = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
            assert resp.headers["Content-Type"] == "audio/mpeg"
            assert resp.read() == data[100:200]
        req = urllib.request.Request(url, headers={"Range": "bytes=-10"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.read() == data[-10:]
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200 and resp.read() == data
            assert resp.headers["Accept-Ranges"] == "bytes"
    finally:
        server.shutdown()
        server.server_close()
