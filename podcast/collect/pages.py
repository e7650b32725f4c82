"""Article pages: main text and metadata through trafilatura.

The HTML is decoded first (header charset, <meta>, detection — see
http.decode_html) so Big5/GBK pages reach trafilatura as correct text.
Navigation, sharing widgets, comments and "related articles" lists are left
out (favor_precision); what remains is the article a listener should hear.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import trafilatura

from ..errors import PodcastError
from ..models import Item
from .files import detect_language, parse_date, site_name
from .store import canonical_url, item_id


@dataclass
class Page:
    url: str
    title: str
    text: str
    author: str = ""
    date: dt.datetime | None = None
    site: str = ""
    description: str = ""
    language: str = ""


def extract_page(html: str, url: str) -> Page:
    """Main text and metadata of one article page; PodcastError when there is none."""
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
    )
    text = _clean_text(getattr(doc, "text", "") or "") if doc is not None else ""
    title = (getattr(doc, "title", "") or "").strip() if doc is not None else ""
    first, _, rest = text.partition("\n")
    if title and first == title and rest:
        text = rest  # the <h1> repeats the title: a listener would hear it twice
    if not text:
        raise PodcastError(f"{url}: no article text found on the page: link to the article itself")
    return Page(
        url=url,
        title=title,
        text=text,
        author=(getattr(doc, "author", "") or "").strip(),
        date=parse_date(getattr(doc, "date", "") or ""),
        site=(getattr(doc, "sitename", "") or "").strip(),
        description=(getattr(doc, "description", "") or "").strip(),
        language=page_language(title, text),
    )


def page_language(title: str, text: str) -> str:
    # The opening is enough to tell the script; OpenCC over a whole article is not cheap.
    return detect_language(title + "\n" + text[:1500])


def _clean_text(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln)


def first_paragraph(text: str, limit: int = 300) -> str:
    para = text.split("\n", 1)[0].strip()
    if len(para) <= limit:
        return para
    cut = para[:limit]
    # End on a sentence when one ends late enough, else on the limit.
    m = re.search(r".*[。！？.!?]", cut)
    return m.group(0) if m and len(m.group(0)) > limit // 2 else cut.rstrip() + "…"


def page_to_item(page: Page, source: str = "") -> Item:
    """A stand-alone article page as one item (its source is the site's name)."""
    url = canonical_url(page.url) or page.url
    title = page.title or first_paragraph(page.text, 60)
    return Item(
        id=item_id(url, title, page.text),
        url=page.url,
        title=title,
        text=page.text,
        source=source or page.site or site_name(page.url, page.url),
        summary=page.description or first_paragraph(page.text),
        published=page.date,
        language=page.language or page_language(title, page.text),
        links=[page.url],
    )
