"""The item store: one SQLite file, items keyed by a stable id.

An item's id is a hash of its canonical URL (tracking parameters stripped), or
of its title and text when it has no link, so collecting the same news twice
adds nothing. A second table records which items each episode used.

Besides the item itself a row keeps where it came from (``origin``: the feed,
page or file as the user named it), when it was first fetched, and the
SimHash of its text (hex), so near-duplicates are caught across runs, not
only within one. Stores written before those columns existed are migrated
in place (ALTER TABLE) the first time they are opened.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import PodcastError
from ..models import Item
from ..util import sha256_text
from .dedup import simhash

# Query parameters that only track the click, never select the content.
_TRACKING = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "ref", "ref_src", "spm"}


_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, fragment or tracking params, sorted query."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    scheme = parts.scheme.lower()
    host = parts.netloc.lower()
    if parts.port is not None and _DEFAULT_PORTS.get(scheme) == parts.port:
        host = host.rpartition(":")[0]  # https://x:443/ is https://x/
    if host.startswith("www."):
        host = host[4:]
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in _TRACKING
    ]
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    return urlunsplit((scheme, host, path, urlencode(sorted(query)), ""))


def item_id(url: str, title: str = "", text: str = "") -> str:
    canon = canonical_url(url)
    return sha256_text("url", canon)[:16] if canon else sha256_text("text", title, text)[:16]


def content_hash(item: Item) -> str:
    return sha256_text(item.title, item.text)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    summary TEXT NOT NULL,
    source TEXT NOT NULL,
    published TEXT,
    fetched TEXT NOT NULL,
    language TEXT NOT NULL,
    hash TEXT NOT NULL,
    extra TEXT NOT NULL,
    simhash TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS items_url ON items(url);
CREATE INDEX IF NOT EXISTS items_published ON items(published);
CREATE INDEX IF NOT EXISTS items_fetched ON items(fetched);
CREATE TABLE IF NOT EXISTS episode_items (
    episode INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (episode, item_id)
);
"""


_ADDED_COLUMNS = ("simhash", "origin")  # after the first release: migrated by Store._migrate


def aware(when: dt.datetime) -> dt.datetime:
    """``when`` with a time zone: naive times are taken as UTC."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _row_to_item(row: sqlite3.Row) -> Item:
    extra = json.loads(row["extra"])
    return Item(
        id=row["id"],
        url=extra.get("url", row["url"]),
        title=row["title"],
        text=row["text"],
        source=row["source"],
        summary=row["summary"],
        published=dt.datetime.fromisoformat(row["published"]) if row["published"] else None,
        language=row["language"],
        entities=list(extra.get("entities", [])),
        importance=extra.get("importance", ""),
        section=extra.get("section", ""),
        links=list(extra.get("links", [])),
    )


class Store:
    """A thin wrapper over one SQLite file; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path)
            self.db.row_factory = sqlite3.Row
            self.db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise PodcastError(f"{self.path}: not a usable item store ({exc}): move it aside and collect again") from None

    def _migrate(self) -> None:
        """Add the columns older stores lack; fill simhash for the rows that predate it (once:
        add() always writes one, so later opens need no scan)."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(items)")}
        missing = [name for name in _ADDED_COLUMNS if name not in have]
        if not missing:
            return
        with self.db:
            for name in missing:
                self.db.execute(f"ALTER TABLE items ADD COLUMN {name} TEXT NOT NULL DEFAULT ''")
            if "simhash" not in missing:
                return
            rows = self.db.execute("SELECT id, text FROM items").fetchall()
            self.db.executemany(
                "UPDATE items SET simhash = ? WHERE id = ?", [(f"{simhash(r[1]):016x}", r[0]) for r in rows]
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def add(self, items: list[Item], *, fetched: dt.datetime | None = None, origin: str = "") -> list[str]:
        """Insert items not seen before (by id); return the ids that were new.
        ``origin`` is the source (feed/page URL, file path) they came from."""
        # UTC always, so the window query can compare the ISO strings.
        now = aware(fetched or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
        new: list[str] = []
        with self.db:
            for it in items:
                extra = {
                    "url": it.url,
                    "entities": it.entities,
                    "importance": it.importance,
                    "section": it.section,
                    "links": it.links,
                }
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO items (id, url, title, text, summary, source, published, fetched,"
                    " language, hash, extra, simhash, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        it.id,
                        canonical_url(it.url),
                        it.title,
                        it.text,
                        it.summary,
                        it.source,
                        it.published.isoformat() if it.published else None,
                        now,
                        it.language,
                        content_hash(it),
                        json.dumps(extra, ensure_ascii=False, sort_keys=True),
                        f"{simhash(it.text):016x}",
                        origin,
                    ),
                )
                if cur.rowcount:
                    new.append(it.id)
        return new

    def get(self, item_id: str) -> Item | None:
        row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return _row_to_item(row) if row else None

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def hashes(self) -> dict[str, str]:
        return {r["id"]: r["hash"] for r in self.db.execute("SELECT id, hash FROM items")}

    def simhashes(self, min_chars: int = 0) -> list[tuple[str, int]]:
        """(id, SimHash) of the stored items with at least ``min_chars`` of text, oldest first."""
        rows = self.db.execute(
            "SELECT id, simhash FROM items WHERE simhash != '' AND length(text) >= ? ORDER BY rowid", (min_chars,)
        )
        return [(r[0], int(r[1], 16)) for r in rows]

    def fetched(self, ids: list[str]) -> dict[str, dt.datetime]:
        """When each stored item was first fetched (aware, UTC)."""
        out: dict[str, dt.datetime] = {}
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.db.execute(f"SELECT id, fetched FROM items WHERE id IN ({marks})", chunk):
                out[r[0]] = aware(dt.datetime.fromisoformat(r[1]))
        return out

    def recent(self, origins: list[str], since: dt.datetime) -> list[Item]:
        """Items first fetched from one of ``origins`` at or after ``since`` (for a
        feed that answers 'not modified' today but had news earlier in the window)."""
        if not origins:
            return []
        marks = ",".join("?" * len(origins))
        rows = self.db.execute(
            f"SELECT * FROM items WHERE origin IN ({marks}) AND fetched >= ? ORDER BY rowid",
            [*origins, aware(since).astimezone(dt.UTC).isoformat(timespec="seconds")],
        )
        return [_row_to_item(r) for r in rows]

    def mark_used(self, episode: int, item_ids: list[str]) -> None:
        """Record that ``episode`` tells these items, replacing what it was recorded with
        before (a rebuild from sources, or a run that died before its episode was published)."""
        with self.db:
            self.db.execute("DELETE FROM episode_items WHERE episode = ?", (episode,))
            self.db.executemany(
                "INSERT OR IGNORE INTO episode_items VALUES (?, ?)",
                [(episode, i) for i in dict.fromkeys(item_ids) if i],
            )

    def used_before(self, episode: int) -> dict[str, int]:
        """Item id → the first episode (numbered below ``episode``) that used it."""
        rows = self.db.execute(
            "SELECT item_id, MIN(episode) FROM episode_items WHERE episode < ? GROUP BY item_id", (episode,)
        )
        return {r[0]: int(r[1]) for r in rows}

    def used_ids(self, episode: int | None = None) -> set[str]:
        if episode is None:
            rows = self.db.execute("SELECT item_id FROM episode_items")
        else:
            rows = self.db.execute("SELECT item_id FROM episode_items WHERE episode = ?", (episode,))
        return {r[0] for r in rows}
