"""HTTP transport for collecting: one bounded, polite fetch per URL.

httpx.AsyncClient with timeouts, redirects and a named User-Agent; bodies are
streamed and abandoned as soon as they pass the size cap, so an oversized page
costs a few chunks, not its whole length. ETag/Last-Modified are remembered per
URL in a small ``fetch_state`` table in the same SQLite file as the item store,
so a feed that has not changed answers 304 and is not parsed again.
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
import re
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from ..errors import PodcastError

USER_AGENT = "podcast/0.1 (tech-news podcast producer; +https://github.com/podcast-cli/podcast)"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 15.0
_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/html;q=0.8, */*;q=0.5"


class FetchError(PodcastError):
    """One URL could not be fetched; ``reason`` is the short cause for summaries."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass
class Fetched:
    url: str  # the final URL after redirects
    status: int
    content_type: str  # media type only, lower-case ("text/html")
    charset: str  # from the Content-Type header, "" when absent
    body: bytes
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def parse_content_type(value: str) -> tuple[str, str]:
    """('text/html', 'big5') from 'text/html; charset="Big5"'."""
    media, _, params = value.partition(";")
    charset = ""
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'")
    return media.strip().lower(), charset


def check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(url, "not an http(s) URL: write it as https://host/path")
    return url


def make_client(*, timeout: float = DEFAULT_TIMEOUT, max_connections: int = 32) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        follow_redirects=True,
        max_redirects=5,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": USER_AGENT, "Accept": _ACCEPT},
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    etag: str = "",
    last_modified: str = "",
    deadline: float | None = None,
) -> Fetched:
    """GET ``url``; raise FetchError naming it on any failure except 304.

    ``deadline`` bounds the whole exchange (a server trickling bytes never
    trips a per-read timeout); it defaults to twice the client's read timeout.
    """
    url = check_url(url)
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if deadline is None:
        deadline = 2 * (client.timeout.read or DEFAULT_TIMEOUT)
    try:
        return await asyncio.wait_for(_fetch(client, url, headers, max_bytes), deadline)
    except TimeoutError:
        raise FetchError(url, f"timed out after {deadline:g} s: the site is too slow or down") from None
    except httpx.TimeoutException:
        raise FetchError(url, "timed out: the site is too slow or down; try again later") from None
    except httpx.TooManyRedirects:
        raise FetchError(url, "too many redirects: check the URL") from None
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise FetchError(url, f"cannot connect ({reason}): check the URL and the network") from None


async def _fetch(client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int) -> Fetched:
    async with client.stream("GET", url, headers=headers) as resp:
        final = str(resp.url)
        media, charset = parse_content_type(resp.headers.get("content-type", ""))
        etag = resp.headers.get("etag", "")
        modified = resp.headers.get("last-modified", "")
        if resp.status_code == 304:
            return Fetched(final, 304, media, charset, b"", etag, modified)
        if resp.status_code >= 400:
            raise FetchError(url, f"HTTP {resp.status_code} {resp.reason_phrase}".rstrip())
        cap = _mb(max_bytes)
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(url, f"too large ({_mb(int(declared))} > {cap} cap): skipped")
        chunks: list[bytes] = []
        size = 0
        # Decoded bytes are counted, so a small gzip bomb is capped as well.
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                # Leaving the block closes the connection: the rest is never read.
                raise FetchError(url, f"too large (more than the {cap} cap): skipped")
            chunks.append(chunk)
        return Fetched(final, resp.status_code, media, charset, b"".join(chunks), etag, modified)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


# --- decoding HTML -----------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Labels pages use for a legacy encoding mapped to the superset browsers decode them with.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "cp950",
    "ascii": "cp1252",
    "latin_1": "cp1252",
    "iso8859-1": "cp1252",
}


def normalize_charset(label: str) -> str:
    """A Python codec name for an HTML/HTTP charset label; "" if unknown."""
    label = label.strip().lower()
    if not label:
        return ""
    if label in ("x-gbk", "gb_2312-80", "cn-gb", "euc-cn", "hz-gb-2312"):
        label = "gbk"
    elif label in ("big5-hkscs", "x-x-big5", "cn-big5"):
        label = "big5hkscs" if label == "big5-hkscs" else "big5"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return ""
    return _SUPERSETS.get(name, name)


def sniff_charset(body: bytes, header_charset: str = "") -> str:
    """Which codec decodes ``body``: BOM, HTTP header, <meta>, strict UTF-8, then detection."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    for label in (header_charset, *_meta_labels(body)):
        name = normalize_charset(label)
        if name:
            return name
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # imported late: only legacy pages need it

    best = from_bytes(body[:200_000]).best()
    return normalize_charset(best.encoding) if best else "utf-8"


def _meta_labels(body: bytes) -> list[str]:
    match = _META_CHARSET.search(body[:4096])
    return [match.group(1).decode("ascii", "replace")] if match else []


def decode_html(body: bytes, header_charset: str = "") -> str:
    name = sniff_charset(body, header_charset)
    text = body.decode(name or "utf-8", errors="replace")
    return text.removeprefix("\ufeff")


# --- per-URL conditional-GET state ---------------------------------------------------

_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS fetch_state (
    url TEXT PRIMARY KEY,
    etag TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '',
    checked TEXT NOT NULL
)
"""


class FetchState:
    """ETag/Last-Modified per source URL, in its own table of the store's SQLite file."""

    def __init__(self, path: Path | None) -> None:
        self.db: sqlite3.Connection | None = None
        if path is None:
            return
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path)
            self.db.execute(_STATE_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise PodcastError(
                f"{path}: not a usable item store ({exc}): move it aside and collect again"
            ) from None

    def __enter__(self) -> FetchState:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.db is not None:
            self.db.close()

    def get(self, url: str) -> tuple[str, str]:
        if self.db is None:
            return "", ""
        row = self.db.execute("SELECT etag, last_modified FROM fetch_state WHERE url = ?", (url,)).fetchone()
        return (row[0], row[1]) if row else ("", "")

    def put(self, url: str, etag: str, last_modified: str) -> None:
        if self.db is None or not (etag or last_modified):
            return
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO fetch_state VALUES (?, ?, ?, ?)", (url, etag, last_modified, now)
            )


# --- concurrency ----------------------------------------------------------------------


class HostLimiter:
    """A global cap on requests in flight plus a smaller one per host (be polite)."""

    def __init__(self, total: int = 16, per_host: int = 4) -> None:
        self.total = asyncio.Semaphore(total)
        self.per_host_n = per_host
        self.hosts: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.per_host_n))

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = (urlsplit(url).hostname or "").lower()
        async with self.hosts[host], self.total:
            yield
