"""The time window (``--since``) and the reuse rule between episodes.

Window rule (applied by :func:`podcast.collect.collect`):

* Items from the web (feeds, pages, feeds listed in OPML files) are kept when
  they were published at or after the window's start; an item without a date
  counts from when the store first fetched it. So ``since = "24h"`` means
  "news of the last day", and re-running a day later drops yesterday's news.
* Items from a local file the user names explicitly (a digest, a text file)
  are always kept, whatever their date: naming the file is the choice. A
  digest compiled yesterday, or the bundled sample dated 2026-11-20, still
  makes an episode today. (Repeats are handled by the reuse rule instead.)

Reuse rule (:func:`fresh_items`): an item a previous episode already used is
dropped, unless its story gained a source this time (a not-yet-used item
clusters with it), in which case the whole story stays so the follow-up can
be told with its background.
"""

from __future__ import annotations

import datetime as dt
import re

from ..errors import PodcastError
from ..models import Item
from .store import Store, aware

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """The start of the window: ``90m``, ``24h``, ``7d``, ``2w`` before ``now``, or an
    ISO date/datetime (``2026-11-20``, ``2026-11-20T08:00+08:00``; a date without a
    time zone is midnight in ``now``'s zone). Always timezone-aware."""
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.astimezone()
    value = (text or "").strip()
    m = _RELATIVE.match(value)
    if m:
        amount = float(m.group(1))
        seconds = amount * _UNIT_SECONDS[m.group(2)[0].lower()]
        if seconds <= 0:
            raise PodcastError(f"since {text!r}: the window must be longer than zero, e.g. 24h")
        return now - dt.timedelta(seconds=seconds)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PodcastError(
            f"since {text!r} is not a time window: use 90m, 24h, 7d or a date such as 2026-11-20"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=now.tzinfo)
    if when > now:
        raise PodcastError(f"since {text!r} is in the future: give a past date or a span such as 24h")
    return when


def in_window(item: Item, since: dt.datetime, fetched: dt.datetime | None) -> bool:
    """Published at or after ``since``; undated items go by when they were first fetched."""
    when = item.published or fetched
    return when is None or aware(when) >= aware(since)


def fresh_items(items: list[Item], store: Store, *, episode: int) -> list[Item]:
    """``items`` minus the stories earlier episodes (numbered below ``episode``)
    already told; a story with at least one unused item stays whole. Order kept.
    Rebuilding episode N itself is unaffected (only earlier episodes count)."""
    from ..write.stories import cluster, taiwan_item  # the writer's notion of "same story"

    used = store.used_before(episode)
    if not any(it.id in used for it in items):
        return list(items)
    by_id = {it.id: it for it in items}
    keep: set[str] = set()
    for story in cluster([taiwan_item(it) for it in items]):
        ids = [it.id for it in story.items]
        if any(i not in used for i in ids):
            keep.update(ids)
    return [by_id[i] for i in dict.fromkeys(it.id for it in items) if i in keep]
