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
from .digest import looks_like_digest, parse_digest
from .files import read_plain, read_text
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


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def collect(sources: list[str], store_path: Path, *, since: dt.datetime | None = None) -> CollectResult:
    """Read every source, store what is new, return the items (deduplicated by id)."""
    result = CollectResult(items=[])
    seen: set[str] = set()
    with Store(store_path) as store:
        for source in sources:
            outcome = SourceOutcome(source=str(source))
            result.outcomes.append(outcome)
            try:
                outcome.kind, items = read_source(str(source))
            except PodcastError as exc:
                outcome.error = str(exc)
                continue
            outcome.items = len(items)
            outcome.new = len(store.add(items))
            for it in items:
                if since and it.published and _aware(it.published) < _aware(since):
                    continue
                if it.id not in seen:
                    seen.add(it.id)
                    result.items.append(it)
    if not result.items:
        failed = result.failed
        if not failed:
            raise PodcastError(f"{', '.join(map(str, sources)) or '(no sources)'}: no items newer than {since}")
        more = f" (and {len(failed) - 1} more failed sources)" if len(failed) > 1 else ""
        raise PodcastError(failed[0].error + more)
    return result
