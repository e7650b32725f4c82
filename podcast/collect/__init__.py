"""collect: sources in, deduplicated items of the time window out (and into the SQLite store).

Sources are feed/page/OPML URLs, OPML files, Markdown news digests (detected
by their '### ' headlines with **核心摘要**) and plain .txt/.md articles (one
item each).
One failing source is reported and the others still run; only when nothing
at all came out is that an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PodcastError
from ..models import Item
from .dedup import MIN_DUP_CHARS, NearDupIndex, dedup_items
from .digest import looks_like_digest, parse_digest
from .files import read_plain, read_text
from .opml import looks_like_opml, read_opml_file
from .store import Store, aware
from .window import fresh_items, in_window, parse_since

if TYPE_CHECKING:
    from .feeds import ProgressFn

__all__ = ["CollectResult", "SourceOutcome", "collect", "fresh_items", "parse_since", "read_source"]


@dataclass
class SourceOutcome:
    source: str
    kind: str = ""  # "digest" / "file" / "opml" / "feed" / "page"
    items: int = 0
    new: int = 0
    error: str = ""
    status: str = ""  # "ok" / "not modified" / "failed"
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class CollectResult:
    items: list[Item]
    outcomes: list[SourceOutcome] = field(default_factory=list)
    since: dt.datetime | None = None
    near_duplicates: int = 0  # dropped as copies of another item (this run or stored)
    outside_window: int = 0  # web items older than ``since``

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def report_lines(self) -> list[str]:
        """'12 sources: 10 ok, 1 not modified, 1 failed: <url>: <reason>', then one
        line per further failure and per warning (malformed feeds, fallbacks),
        then what was kept."""
        failed = self.failed
        unchanged = sum(o.status == "not modified" for o in self.outcomes if o.ok)
        ok = len(self.outcomes) - len(failed) - unchanged
        head = f"{len(self.outcomes)} sources: {ok} ok, {unchanged} not modified, {len(failed)} failed"
        lines = [head + (f": {failed[0].error}" if len(failed) == 1 else "")]
        if len(failed) > 1:
            lines += [f"failed: {o.error}" for o in failed]
        lines += [f"warning: {o.source}: {w}" for o in self.outcomes for w in o.warnings]
        new = sum(o.new for o in self.outcomes)
        tail = f"{len(self.items)} items ({new} new"
        if self.near_duplicates:
            tail += f", {self.near_duplicates} near-duplicates dropped"
        if self.since is not None:
            tail += f", {self.outside_window} older than {self.since.isoformat(timespec='minutes')} left out"
        lines.append(tail + ")")
        return lines


def read_source(source: str) -> tuple[str, list[Item]]:
    """(kind, items) of one local source; raises PodcastError naming it."""
    path = Path(source)
    text = read_text(path)
    if not text.strip():
        raise PodcastError(f"{path}: empty file: nothing to collect")
    if path.suffix.lower() in (".md", ".markdown") and looks_like_digest(text):
        return "digest", parse_digest(text, path)
    return "file", [read_plain(path, text)]


def is_url(source: str) -> bool:
    return source.strip().lower().startswith(("http://", "https://"))


def is_opml_file(path: Path) -> bool:
    """A .opml file, or an .xml file whose root is <opml>."""
    suffix = path.suffix.lower()
    if suffix == ".opml":
        return True
    if suffix != ".xml":
        return False
    try:
        with open(path, "rb") as fh:
            return looks_like_opml(fh.read(2048))
    except OSError:
        return False


def _local_items(source: str, outcome: SourceOutcome) -> tuple[list[Item], list[str]]:
    """Items of one local source, or the feed URLs of an OPML file."""
    if is_opml_file(Path(source)):
        outcome.kind = "opml"
        return [], [ref.url for ref in read_opml_file(Path(source))]
    outcome.kind, items = read_source(source)
    return items, []


def collect(
    sources: list[str],
    store_path: Path,
    *,
    since: dt.datetime | str | None = None,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
) -> CollectResult:
    """Read every source, store what is new, return the items of the window.

    Deduplicated by id (canonical URL) and by near-duplicate text, also against
    items stored by earlier runs: a copy of a stored article is not stored
    again; the stored original stands in for it. ``since`` (a datetime, or text
    for :func:`parse_since` such as ``"24h"``; None = no window) applies to web
    items only — see :mod:`podcast.collect.window` for the rule; items from
    local files named in ``sources`` are always kept. Web sources also bring
    back what they yielded earlier in the window (a feed that answers 'not
    modified' today still contributes this morning's news). URLs and the feeds
    of OPML lists are fetched concurrently; local files are read in order.
    ``now`` fixes the clock (tests)."""
    now = aware(now or dt.datetime.now(dt.UTC))
    start = parse_since(since, now) if isinstance(since, str) else (aware(since) if since else None)
    result = CollectResult(items=[], since=start)
    batches: list[tuple[SourceOutcome, list[Item], bool]] = []  # (outcome, items, local?)
    with Store(store_path) as store:
        urls: list[str] = []
        for source in map(str, sources):
            if is_url(source):
                urls.append(source)
                continue
            outcome = SourceOutcome(source=source, status="ok")
            result.outcomes.append(outcome)
            try:
                items, feeds = _local_items(source, outcome)
            except PodcastError as exc:
                outcome.error, outcome.status = str(exc), "failed"
                continue
            urls += feeds
            outcome.items = len(items)
            batches.append((outcome, items, True))
        from .feeds import collect_web  # httpx and trafilatura: only when a URL is collected

        for web in collect_web(urls, store, progress=progress) if urls else []:
            outcome = SourceOutcome(
                source=web.source, kind=web.kind or "feed", items=len(web.items), error=web.message,
                status=web.status, warnings=list(web.warnings),
            )
            result.outcomes.append(outcome)
            batches.append((outcome, web.items, False))

        index = NearDupIndex()
        for key, fingerprint in store.simhashes(MIN_DUP_CHARS):
            index.add(fingerprint, key)
        local_ids: set[str] = set()
        kept: list[Item] = []
        seen: set[str] = set()
        for outcome, items, local in batches:
            fresh, dropped = dedup_items([it for it in items if it.id not in seen], index)
            result.near_duplicates += len(dropped)
            outcome.new = len(store.add(fresh, fetched=now, origin=outcome.source))
            for it in fresh:
                seen.add(it.id)
                kept.append(it)
                if local:
                    local_ids.add(it.id)
            for _copy, twin in dropped:
                if twin not in seen:  # a copy of an earlier run's item (store.get finds it)
                    original = store.get(twin)
                    if original is not None:
                        seen.add(twin)
                        kept.append(original)
                        if local:
                            local_ids.add(twin)
        if start is not None:
            web_origins = [o.source for o, _, local in batches if not local]
            for it in store.recent(web_origins, start):
                if it.id not in seen:
                    seen.add(it.id)
                    kept.append(it)
            fetched = store.fetched([it.id for it in kept if it.published is None])
            for it in kept:
                if it.id in local_ids or in_window(it, start, fetched.get(it.id)):
                    result.items.append(it)
                else:
                    result.outside_window += 1
        else:
            result.items = kept
    if not result.items:
        failed = result.failed
        if not failed:
            where = ", ".join(map(str, sources)) or "(no sources)"
            if start is not None:
                raise PodcastError(
                    f"{where}: no items newer than {start.isoformat(timespec='minutes')}: "
                    "widen the window (--since 7d) or add sources"
                )
            raise PodcastError(f"{where}: no items found")
        more = f" (and {len(failed) - 1} more failed sources)" if len(failed) > 1 else ""
        raise PodcastError(failed[0].error + more)
    return result
