"""The companion article (HTML and Markdown), the show notes and the index page.

Templates live in podcast/templates/; a file of the same name in the show's
own templates/ folder overrides one. HTML templates autoescape everything;
Markdown output goes through the ``md`` filter instead, which escapes Markdown
and HTML specials so a pasted post never carries live markup.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
)

from ..config import ShowConfig
from ..errors import PodcastError
from ..script import Bullet, Script, SourceRef
from ..util import clock, sha256_text
from .episodes import EpisodeMeta

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CHAPTERS_FILE = "chapters.json"
COVER_FILE = "cover.png"
DESCRIPTION_MAX_BYTES = 4000


@dataclass
class ChapterLink:
    title: str
    start_s: float


@dataclass
class EpisodePage:
    """Everything known about one publishable episode."""

    folder: Path
    meta: EpisodeMeta
    script: Script
    chapters: list[ChapterLink]


# --------------------------------------------------------------------------- inputs


def load_chapters(path: Path) -> list[ChapterLink]:
    """Read chapters.json (Podcasting 2.0 JSON chapters: {"version", "chapters": [{startTime, title}]}).

    A missing file means no chapters; a broken one raises PodcastError.
    """
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = data["chapters"] if isinstance(data, dict) else data
        out = []
        for c in raw:
            start = c["startTime"] if "startTime" in c else c["start_ms"] / 1000
            start = float(start)
            if not math.isfinite(start) or start < 0:
                raise ValueError(f"bad start time {start}")
            out.append(ChapterLink(title=str(c["title"]), start_s=start))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PodcastError(f"{path}: not valid JSON chapters ({exc}); rerun 'podcast regenerate'") from None
    return sorted(out, key=lambda c: c.start_s)


# --------------------------------------------------------------------------- formatting


def safe_url(url: str) -> str:
    """The URL if it is a plain http(s) link, else "" (no javascript:, data:, relative tricks)."""
    url = (url or "").strip()
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        return ""
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


_MD_SPECIALS = re.compile(r"([\\`*_\[\]<>#])")


def md_escape(text: str) -> str:
    return _MD_SPECIALS.sub(r"\\\1", str(text))


def _md_refs(bullet: Bullet, sources: list[SourceRef]) -> str:
    by_n = {s.n: s for s in sources}
    out = []
    for r in bullet.refs:
        url = safe_url(by_n[r].url) if r in by_n else ""
        out.append(f"[\\[{r}\\]]({url})" if url else f"\\[{r}\\]")
    return "".join(out)


def date_text(meta: EpisodeMeta) -> str:
    return meta.pub_date.strftime("%Y/%m/%d")


def truncate_bytes(text: str, limit: int = DESCRIPTION_MAX_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[: limit - len("…".encode())].decode("utf-8", "ignore")
    return cut.rstrip() + "…"


def episode_description(page: EpisodePage) -> str:
    """One paragraph for the feed and link previews: episode.json's summary, else the script's themes."""
    if page.meta.summary.strip():
        text = " ".join(page.meta.summary.split())
    else:
        topics = [g.title for g in page.script.summary] + [d.title for d in page.script.deep_dives]
        text = "本集重點：" + "；".join(topics) + "。" if topics else page.meta.title
    return truncate_bytes(text)


def page_title(config: ShowConfig, meta: EpisodeMeta) -> str:
    return f"{config.show.title} EP{meta.number} - {meta.title}"


def episode_url(config: ShowConfig, folder: str, name: str = "") -> str:
    return f"{config.show.base_url}{quote(folder)}/{name}"


# --------------------------------------------------------------------------- rendering


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(".md.j2")


def make_env(show_dir: Path | None = None) -> Environment:
    loaders = []
    if show_dir is not None and (show_dir / "templates").is_dir():
        loaders.append(FileSystemLoader(str(show_dir / "templates")))
    loaders.append(FileSystemLoader(str(PACKAGE_TEMPLATES)))
    options: dict[str, Any] = dict(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    cache = None
    if show_dir is not None:
        # Compiled templates are kept, keyed by their source (compiling the four took ≈0.1 s of
        # each publish); the folder is per Jinja version and options, which the code depends on too.
        folder = show_dir / ".cache" / "jinja" / sha256_text(jinja2.__version__, repr(sorted(options.items())))[:12]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            cache = FileSystemBytecodeCache(str(folder))
        except OSError:
            cache = None  # a read-only show still publishes
    env = Environment(
        loader=ChoiceLoader(loaders),
        bytecode_cache=cache,
        autoescape=_autoescape,
        undefined=StrictUndefined,
        **options,
    )
    env.filters.update(clock=clock, safe_url=safe_url, md=md_escape, md_refs=_md_refs)
    return env


def _render(env: Environment, name: str, ctx: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(**ctx)
    except TemplateError as exc:
        where = getattr(exc, "filename", None) or name
        lineno = getattr(exc, "lineno", None)
        at = f":{lineno}" if lineno else ""
        raise PodcastError(f"template {where}{at}: {exc}; fix the template or delete the override") from None


def article_context(page: EpisodePage, config: ShowConfig) -> dict[str, Any]:
    folder = page.folder.name
    cover_url = episode_url(config, folder, COVER_FILE)
    return {
        "show": config.show,
        "meta": page.meta,
        "script": page.script,
        "sources": page.script.sources,
        "chapters": page.chapters,
        "page_title": page_title(config, page.meta),
        "description": episode_description(page),
        "date_text": date_text(page.meta),
        "duration_text": clock(page.meta.duration_s),
        "audio_src": "episode.mp3",
        "cover_src": COVER_FILE,
        "article_url": episode_url(config, folder, "article.html"),
        "audio_url": episode_url(config, folder, "episode.mp3"),
        "image_url": cover_url,
        "feed_url": config.show.base_url + "feed.xml",
    }


def render_article_html(env: Environment, page: EpisodePage, config: ShowConfig) -> str:
    return _render(env, "article.html.j2", article_context(page, config))


def render_article_md(env: Environment, page: EpisodePage, config: ShowConfig) -> str:
    text = _render(env, "article.md.j2", article_context(page, config))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_index(env: Environment, pages: list[EpisodePage], config: ShowConfig) -> str:
    """``pages`` newest first."""
    episodes = [
        {
            "meta": p.meta,
            "folder_href": quote(p.folder.name),
            "cover_src": f"{quote(p.folder.name)}/{COVER_FILE}",
            "date_text": date_text(p.meta),
            "duration_text": clock(p.meta.duration_s),
        }
        for p in pages
    ]
    ctx = {
        "show": config.show,
        "episodes": episodes,
        "site_url": config.show.base_url + "index.html",
        "cover_url": config.show.base_url + COVER_FILE,
    }
    return _render(env, "index.html.j2", ctx)


_SHOW_NOTES = """\
<p>{{ description }}</p>
<h3>快速重點摘要</h3>
<ol>
{% for g in script.summary %}
<li>{{ g.title }}<ul>
{% for b in g.bullets %}
<li>{{ b.text }}{% for r in b.refs %}{% set u = urls.get(r, "") %}{% if u %} <a href="{{ u }}">[{{ r }}]</a>{% else %} [{{ r }}]{% endif %}{% endfor %}</li>
{% endfor %}
</ul></li>
{% endfor %}
</ol>
{% if chapters %}
<h3>章節</h3>
<ul>
{% for c in chapters %}
<li>{{ c.start_s|clock }} {{ c.title }}</li>
{% endfor %}
</ul>
{% endif %}
<h3>資料來源</h3>
<ol>
{% for s in script.sources %}
<li>{% if urls.get(s.n) %}<a href="{{ urls[s.n] }}">{{ s.title }}</a>{% else %}{{ s.title }}{% endif %}</li>
{% endfor %}
</ol>
<p><a href="{{ article_url }}">完整文字版</a></p>
"""


def render_show_notes(env: Environment, page: EpisodePage, config: ShowConfig) -> str:
    """The HTML for the feed's content:encoded (escaped; safe to wrap in CDATA)."""
    ctx = article_context(page, config)
    ctx["urls"] = {s.n: safe_url(s.url) for s in page.script.sources}
    html = env.from_string(_SHOW_NOTES).render(**ctx)
    # "]]>" would end the CDATA section early; autoescape already turns ">" into "&gt;".
    return html.replace("]]>", "]]&gt;")
