"""write: items in, a Script (and the sources.json rows) out.

Two writers behind one entry function: the LLM writer (any OpenAI-compatible
endpoint) and the offline extractive writer, which needs nothing. ``auto``
picks the LLM only when an endpoint is configured (``[llm] base_url`` or
OPENAI_BASE_URL), so a stray API key never makes the offline demo go online.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ..config import LLMConfig, ShowMeta, WriterConfig
from ..models import Item
from ..script import Script
from .grounding import check_grounding
from .offline import CHARS_PER_MINUTE, spoken_chars, target_chars, write_offline

__all__ = ["CHARS_PER_MINUTE", "Written", "spoken_chars", "target_chars", "write_script"]


@dataclass
class Written:
    script: Script
    sources: list[dict]
    writer: str
    warnings: list[str] = field(default_factory=list)


def write_script(
    items: list[Item],
    *,
    show: ShowMeta,
    writer: WriterConfig,
    episode: int,
    date: dt.date,
    llm: LLMConfig | None = None,
    show_dir: Path | None = None,
    chars_per_minute: float = CHARS_PER_MINUTE,
) -> Written:
    """The script of one episode, its sources list (n, title, url, item_id) and warnings.

    The script aims at ``writer.minutes`` of audio: ``chars_per_minute`` is the
    voice's speaking rate (the preset's ``chars_per_minute`` when it has one)."""
    llm = llm or LLMConfig()
    if writer.engine == "llm" or (writer.engine == "auto" and llm.endpoint()):
        from .llm import write_llm

        script, rows, warnings = write_llm(
            items, show=show, writer=writer, llm=llm, episode=episode, date=date, show_dir=show_dir,
            chars_per_minute=chars_per_minute,
        )
        return Written(script, rows, "llm", warnings)
    warnings: list[str] = []
    script, rows = write_offline(
        items, show=show, writer=writer, episode=episode, date=date,
        chars_per_minute=chars_per_minute, warnings=warnings,
    )
    # The offline writer only quotes its sources; the check proves it stayed so.
    return Written(script, rows, "offline", warnings + check_grounding(script, rows, items))
