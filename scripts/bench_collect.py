"""Benchmark the HTTP collect stage on loopback.

Serves 50 feeds x 20 entries (short teasers, so every entry's article page is
fetched) and 200 article pages from tests/news_server.py, runs
podcast.collect.feeds.fetch_sources over them, and reports items per second
plus the ratio of the whole stage's wall time to trafilatura's own extraction
time over the same 200 pages, measured in the same run (the floor: no stage
can be faster than extracting the text once).

    .venv/bin/python scripts/bench_collect.py [--feeds 50] [--entries 20] [--pages 200]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import feedparser  # noqa: E402
import trafilatura  # noqa: E402
from news_server import (  # noqa: E402
    BIG5_PARAS,
    CHIP_PARAS,
    CLUTTER_PARAS,
    DB_PARAS,
    FULL_PARAS,
    GBK_PARAS,
    RELATED_TITLES,
    NewsServer,
    article_html,
    rss,
)

from podcast.collect.dedup import dedup_items  # noqa: E402
from podcast.collect.feeds import fetch_sources, summarize  # noqa: E402
from podcast.collect.http import decode_html  # noqa: E402

POOL = CHIP_PARAS + CLUTTER_PARAS + FULL_PARAS + BIG5_PARAS + GBK_PARAS + DB_PARAS


def make_page(i: int, rng: random.Random) -> bytes:
    paras = rng.sample(POOL, 8)
    paras = [f"（第 {i} 篇）{paras[0]}", *paras[1:]]
    related = "".join(f'<li><a href="/r/{k}">{t}</a></li>' for k, t in enumerate(RELATED_TITLES))
    extra = (
        f'<div class="share">分享到 Facebook · LINE</div><aside class="related"><ul>{related}</ul></aside>'
    )
    page = article_html(f"基準測試文章 {i} 號", paras, date=f"2026-11-{1 + i % 28:02d}")
    # Site chrome after the article, as real pages have: extraction must skip it.
    return page.replace("</main>", f"</main>{extra}").encode("utf-8")


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _extract(url: str, html: str) -> object:
    return trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )


def build_site(srv: NewsServer, args: argparse.Namespace) -> tuple[dict[str, bytes], list[str]]:
    rng = random.Random(7)
    site = srv.site
    pages = {f"/bench/article/{i}": make_page(i, rng) for i in range(args.pages)}
    for path, body in pages.items():
        site.pages[path] = ("text/html; charset=utf-8", body)
    feed_urls = []
    for f in range(args.feeds):
        entries = []
        for e in range(args.entries):
            k = (f * args.entries + e) % args.pages
            # Feeds link the same article with different tracking tags: one item, one fetch.
            entries.append(
                {
                    "title": f"基準測試文章 {k} 號",
                    "link": f"{site.base}/bench/article/{k}?utm_source=feed{f}",
                    "summary": "短摘要，需要抓取全文。",
                }
            )
        path = f"/bench/feed/{f}.xml"
        site.pages[path] = ("application/rss+xml", rss(f"基準來源 {f}", site.base, entries).encode())
        feed_urls.append(site.base + path)
    return pages, feed_urls


def serve(args: argparse.Namespace, conn: Connection) -> None:
    """The site runs in its own process so its CPU time is not charged to the stage."""
    with NewsServer() as srv:
        pages, feed_urls = build_site(srv, args)
        feed_bytes = {u: srv.site.pages[u.removeprefix(srv.site.base)][1] for u in feed_urls}
        conn.send((srv.site.base, pages, feed_urls, feed_bytes))
        conn.recv()  # until the client is done
        conn.send(dict(srv.site.hits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=50)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--per-host", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (the machine is noisy)")
    args = ap.parse_args()

    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args, theirs), daemon=True)
    server.start()
    base, pages, feed_urls, feed_bytes = ours.recv()
    try:
        # The floor: trafilatura alone, same options, over the same decoded pages.
        decoded = [(base + p, decode_html(b, "utf-8")) for p, b in pages.items()]
        floor = min(_time(lambda: [_extract(url, html) for url, html in decoded]) for _ in range(args.repeat))
        # A second floor, for the record: feedparser alone over the feeds' bytes.
        feed_bodies = [feed_bytes[u] for u in feed_urls]
        parse_floor = min(
            _time(lambda: [feedparser.parse(body) for body in feed_bodies]) for _ in range(args.repeat)
        )

        stage = float("inf")
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                results = fetch_sources(
                    feed_urls,
                    Path(tmp) / "store.sqlite",
                    timeout=10.0,
                    max_connections=16,
                    per_host=args.per_host,
                )
                items, dropped = dedup_items([it for r in results for it in r.items])
                stage = min(stage, time.perf_counter() - t0)
        ours.send("done")
        hits = ours.recv()
    finally:
        server.join(timeout=5)

    entries = sum(len(r.items) for r in results)
    page_hits = sum(n for p, n in hits.items() if p.startswith("/bench/article/"))
    print(summarize(results)[0])
    print(f"feeds: {args.feeds} x {args.entries} entries = {entries} entries; {len(items)} unique items")
    print(f"article pages fetched: {page_hits} over {args.repeat} runs (of {args.pages} distinct)")
    print(
        f"stage (fetch + parse + extract + dedup), best of {args.repeat}: {stage:.2f} s (per-host limit {args.per_host})"
    )
    print(f"  {entries / stage:.0f} entries/s, {len(items) / stage:.0f} unique items/s")
    print(
        f"trafilatura alone over the {len(decoded)} pages: {floor:.2f} s ({floor / len(decoded) * 1000:.1f} ms/page)"
    )
    print(f"feedparser alone over the {len(feed_urls)} feeds: {parse_floor:.2f} s")
    print(f"ratio stage / trafilatura floor: {stage / floor:.2f}")
    print(f"ratio stage / (trafilatura + feedparser) floor: {stage / (floor + parse_floor):.2f}")
    if dropped:
        print(f"near-duplicates dropped: {len(dropped)}")


if __name__ == "__main__":
    main()
