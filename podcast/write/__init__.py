"""write: items in, a Script (and the sources.json rows) out.

Writers are plain functions registered by name; the offline extractive
writer is always there and is what "auto" uses unless another writer (e.g. an
LLM writer) has registered itself as "llm" and is chosen by the config.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ..config import ShowMeta, WriterConfig
from ..errors import PodcastError
from ..models import Item
from ..script import Script
from .offline import write_offline

WriterFn = Callable[..., tuple[Script, list[dict]]]
WRITERS: dict[str, WriterFn] = {"offline": write_offline}

__all__ = ["WRITERS", "WriterFn", "register_writer", "write_script"]


def register_writer(name: str, fn: WriterFn) -> None:
    WRITERS[name] = fn


def write_script(
    items: list[Item], *, show: ShowMeta, writer: WriterConfig, episode: int, date: dt.date
) -> tuple[Script, list[dict]]:
    """The script of one episode and its sources list (n, title, url, item_id)."""
    name = "offline" if writer.engine == "auto" else writer.engine
    fn = WRITERS.get(name)
    if fn is None:
        raise PodcastError(f"show.toml [writer] engine = {writer.engine!r} is not available: use 'offline'")
    return fn(items, show=show, writer=writer, episode=episode, date=date)
