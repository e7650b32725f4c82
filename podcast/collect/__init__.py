"""collect: sources in, deduplicated items out (and into the SQLite store).

For now sources are local files: Markdown news digests (detected by their
'### ' headlines with **核心摘要**) and plain .txt/.md articles (one item each).
One failing source is reported and the others still run; only when nothing
at all came out is that an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PodcastError
from ..models import Item
from .dedup import dedup_items
from .digest import looks_like_digest, parse_digest
from .feeds import ProgressFn, collect_web
from .files import read_plain, read_text
from .opml import looks_like_opml, read_opml_file
from .store import Store

__all__ = ["CollectResult", "SourceOutcome", "collect", "read_source"]


@dataclass
class SourceOutcome:
    source: str
    kind: str = ""  # "digest" / "file"
    items: int = 0
    new: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class CollectResult:
    items: list[Item]
    outcomes: list[SourceOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def report_lines(self) -> list[str]:
        lines = []
        for o in self.outcomes:
            if o.ok:
                lines.append(f"{o.source}: {o.items} items ({o.new} new) from a {o.kind}")
            else:
                lines.append(f"{o.source}: FAILED: {o.error}")
        lines.append(f"{len(self.items)} items collected from {len(self.outcomes)} sources")
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


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def collect(
    sources: list[str],
    store_path: Path,
    *,
    since: dt.datetime | None = None,
    progress: ProgressFn | None = None,
) -> CollectResult:
    """Read every source, store what is new, return the items (deduplicated by id
    and by near-duplicate text). URLs and the feeds of OPML lists are fetched
    concurrently; local files are read in order."""
    result = CollectResult(items=[])
    collected: list[Item] = []
    with Store(store_path) as store:
        urls: list[str] = []
        for source in sources:
            source = str(source)
            if is_url(source):
                urls.append(source)
                continue
            outcome = SourceOutcome(source=source)
            result.outcomes.append(outcome)
            try:
                if is_opml_file(Path(source)):
                    outcome.kind = "opml"
                    refs = read_opml_file(Path(source))
                    urls += [ref.url for ref in refs]
                    continue
                outcome.kind, items = read_source(source)
            except PodcastError as exc:
                outcome.error = str(exc)
                continue
            outcome.items = len(items)
            outcome.new = len(store.add(items))
            collected += items
        for web in collect_web(urls, store, progress=progress) if urls else []:
            kind = web.kind or "feed"
            if web.status == "not modified":
                kind += " (not modified)"
            outcome = SourceOutcome(source=web.source, kind=kind, items=len(web.items), error=web.message)
            result.outcomes.append(outcome)
            outcome.new = len(store.add(web.items))
            collected += web.items
        items, _near_dups = dedup_items(collected)
        for it in items:
            if since and it.published and _aware(it.published) < _aware(since):
                continue
            result.items.append(it)
    if not result.items:
        failed = result.failed
        if not failed:
            raise PodcastError(f"{', '.join(map(str, sources)) or '(no sources)'}: no items newer than {since}")
        more = f" (and {len(failed) - 1} more failed sources)" if len(failed) > 1 else ""
        raise PodcastError(failed[0].error + more)
    return result
