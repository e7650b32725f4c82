"""feed.xml: RSS 2.0 with iTunes and Podcasting 2.0 tags, built with feedgen.

feedgen has no Podcasting 2.0 support, writes itunes:explicit only as yes/no
(Apple now documents true/false), and knows only Apple's pre-2019 category
list, so those tags come from the small :class:`PodcastIndexExtension` below.
The rest of its quirks are guarded where they are used: <link> is taken from
the *last* link() call, and enclosure lengths must be strings.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

import lxml.etree  # noqa: F401  (must be imported before feedgen: lxml 6 import-order trap)
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem
from jinja2 import Environment

from ..config import ShowConfig
from ..errors import PodcastError
from .pages import (
    COVER_FILE,
    EpisodePage,
    episode_description,
    episode_url,
    make_env,
    render_show_notes,
)

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
# Podcasting 2.0: podcast:guid is UUIDv5 of the feed URL (no scheme, no trailing slash) in this namespace.
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

# Apple Podcasts categories (the 2019+ list). Only these pass Apple's validation.
APPLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Arts": ("Books", "Design", "Fashion & Beauty", "Food", "Performing Arts", "Visual Arts"),
    "Business": ("Careers", "Entrepreneurship", "Investing", "Management", "Marketing", "Non-Profit"),
    "Comedy": ("Comedy Interviews", "Improv", "Stand-Up"),
    "Education": ("Courses", "How To", "Language Learning", "Self-Improvement"),
    "Fiction": ("Comedy Fiction", "Drama", "Science Fiction"),
    "Government": (),
    "History": (),
    "Health & Fitness": (
        "Alternative Health", "Fitness", "Medicine", "Mental Health", "Nutrition", "Sexuality",
    ),
    "Kids & Family": ("Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"),
    "Leisure": (
        "Animation & Manga", "Automotive", "Aviation", "Crafts", "Games", "Hobbies",
        "Home & Garden", "Video Games",
    ),
    "Music": ("Music Commentary", "Music History", "Music Interviews"),
    "News": (
        "Business News", "Daily News", "Entertainment News", "News Commentary", "Politics",
        "Sports News", "Tech News",
    ),
    "Religion & Spirituality": (
        "Buddhism", "Christianity", "Hinduism", "Islam", "Judaism", "Religion", "Spirituality",
    ),
    "Science": (
        "Astronomy", "Chemistry", "Earth Sciences", "Life Sciences", "Mathematics",
        "Natural Sciences", "Nature", "Physics", "Social Sciences",
    ),
    "Society & Culture": (
        "Documentary", "Personal Journals", "Philosophy", "Places & Travel", "Relationships",
    ),
    "Sports": (
        "Baseball", "Basketball", "Cricket", "Fantasy Sports", "Football", "Golf", "Hockey",
        "Rugby", "Running", "Soccer", "Swimming", "Tennis", "Volleyball", "Wilderness", "Wrestling",
    ),
    "Technology": (),
    "True Crime": (),
    "TV & Film": ("After Shows", "Film History", "Film Interviews", "Film Reviews", "TV Reviews"),
}


_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters from scraped pages would crash lxml)."""
    return _XML_INVALID.sub("", text)


def podcast_guid(feed_url: str) -> str:
    """The Podcasting 2.0 podcast:guid of a feed URL."""
    bare = feed_url.split("://", 1)[-1].rstrip("/")
    return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, bare))


def apple_category(category: str, subcategory: str) -> tuple[str, str, list[str]]:
    """Validate against Apple's list: (category, subcategory or "", warnings)."""
    if category not in APPLE_CATEGORIES:
        raise PodcastError(
            f"show.toml: show.category {category!r} is not an Apple Podcasts category; "
            f"use one of: {', '.join(APPLE_CATEGORIES)}"
        )
    if subcategory and subcategory not in APPLE_CATEGORIES[category]:
        allowed = ", ".join(APPLE_CATEGORIES[category]) or "none"
        return category, "", [
            f"show.toml: show.subcategory {subcategory!r} is not under {category!r} in Apple's list "
            f"(allowed: {allowed}); the feed lists only {category!r}"
        ]
    return category, subcategory, []


# --------------------------------------------------------------------------- feedgen extension


class PodcastIndexExtension(BaseExtension):
    """Channel tags feedgen lacks or gets wrong: podcast:guid/locked, itunes:explicit/category."""

    def __init__(self) -> None:
        self.guid: str | None = None
        self.locked: bool | None = None
        self.locked_owner: str = ""
        self.explicit: bool | None = None
        self.category: tuple[str, str] | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS, "itunes": ITUNES_NS}

    def extend_rss(self, rss_feed):  # type: ignore[no-untyped-def]
        channel = rss_feed[0]
        if self.category:
            cat = xml_elem(f"{{{ITUNES_NS}}}category", channel, text=self.category[0])
            if self.category[1]:
                xml_elem(f"{{{ITUNES_NS}}}category", cat, text=self.category[1])
        if self.explicit is not None:
            xml_elem(f"{{{ITUNES_NS}}}explicit", channel).text = "true" if self.explicit else "false"
        if self.guid:
            xml_elem(f"{{{PODCAST_NS}}}guid", channel).text = self.guid
        if self.locked is not None:
            locked = xml_elem(f"{{{PODCAST_NS}}}locked", channel)
            locked.text = "yes" if self.locked else "no"
            if self.locked_owner:
                locked.attrib["owner"] = self.locked_owner
        return rss_feed

    def extend_atom(self, atom_feed):  # type: ignore[no-untyped-def]
        return atom_feed


@dataclass
class _Link:
    url: str
    type: str
    attrs: dict[str, str] = field(default_factory=dict)


class PodcastIndexEntryExtension(BaseEntryExtension):
    """Item tags: podcast:transcript, podcast:chapters, itunes:explicit as true/false."""

    def __init__(self) -> None:
        self.transcripts: list[_Link] = []
        self.chapters: _Link | None = None
        self.explicit: bool | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS, "itunes": ITUNES_NS}

    def transcript(self, url: str, mime: str, **attrs: str) -> None:
        self.transcripts.append(_Link(url, mime, attrs))

    def extend_rss(self, entry):  # type: ignore[no-untyped-def]
        if self.explicit is not None:
            xml_elem(f"{{{ITUNES_NS}}}explicit", entry).text = "true" if self.explicit else "false"
        for t in self.transcripts:
            xml_elem(f"{{{PODCAST_NS}}}transcript", entry, url=t.url, type=t.type, **t.attrs)
        if self.chapters:
            xml_elem(f"{{{PODCAST_NS}}}chapters", entry, url=self.chapters.url, type=self.chapters.type)
        return entry

    def extend_atom(self, entry):  # type: ignore[no-untyped-def]
        return entry


# --------------------------------------------------------------------------- the feed


def _serialize(fg: FeedGenerator) -> bytes:
    return fg.rss_str(pretty=True)


def build_feed(
    pages: list[EpisodePage], config: ShowConfig, env: Environment | None = None
) -> tuple[bytes, list[str]]:
    """The feed.xml bytes for ``pages`` (any order; written newest first) and any warnings."""
    show = config.show
    env = env or make_env()
    warnings: list[str] = []
    feed_url = show.base_url + "feed.xml"
    site_link = show.link or show.base_url
    cover_url = show.base_url + COVER_FILE

    fg = FeedGenerator()
    fg.load_extension("podcast", rss=True, atom=False)
    fg.register_extension("podcastindex", PodcastIndexExtension, PodcastIndexEntryExtension, atom=False)
    fg.title(xml_text(show.title))
    # feedgen's RSS <link> is the href of the *last* link() call, so the self link goes first.
    fg.link(href=feed_url, rel="self", type="application/rss+xml")
    fg.link(href=site_link, rel="alternate")
    fg.description(xml_text(show.description))
    fg.language(show.language)
    fg.generator("podcast (python-feedgen)")
    fg.image(url=cover_url, title=xml_text(show.title), link=site_link)
    fg.podcast.itunes_author(xml_text(show.author))
    fg.podcast.itunes_summary(xml_text(show.description))
    fg.podcast.itunes_image(cover_url)
    fg.podcast.itunes_type("episodic")
    owner = show.owner_name or show.author
    if show.owner_email:
        fg.podcast.itunes_owner(name=xml_text(owner), email=xml_text(show.owner_email))
    else:
        warnings.append("show.toml: show.owner_email is empty; Apple Podcasts needs an owner e-mail")
    ext = fg.podcastindex
    cat, sub, cat_warnings = apple_category(show.category, show.subcategory)
    warnings += cat_warnings
    ext.category = (cat, sub)
    ext.explicit = show.explicit
    ext.guid = podcast_guid(feed_url)
    ext.locked = False
    ext.locked_owner = xml_text(show.owner_email)

    newest_first = sorted(pages, key=lambda p: (p.meta.pub_date, p.meta.number), reverse=True)
    if newest_first:
        # Reproducible reruns: the feed changes only when an episode does.
        fg.lastBuildDate(newest_first[0].meta.pub_date)
        fg.pubDate(newest_first[0].meta.pub_date)
    else:
        fg.lastBuildDate(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))

    for page in newest_first:
        _add_item(fg, page, config, env)
    try:
        return _serialize(fg), warnings
    except ValueError as exc:  # feedgen's own checks, e.g. a missing required field
        raise PodcastError(
            f"feed.xml: cannot be built ({exc}); check show.toml [show] and the episodes' episode.json"
        ) from None


def _add_item(fg: FeedGenerator, page: EpisodePage, config: ShowConfig, env: Environment) -> None:
    meta, folder = page.meta, page.folder
    fe = fg.add_entry(order="append")
    fe.title(xml_text(meta.title))
    fe.link(href=episode_url(config, folder.name, "article.html"))
    fe.guid(meta.guid, permalink=False)
    fe.pubDate(meta.pub_date)
    fe.description(xml_text(episode_description(page)))
    fe.content(xml_text(render_show_notes(env, page, config)), type="CDATA")
    # The real size on disk, not episode.json's: apps check Content-Length against it.
    size = (folder / "episode.mp3").stat().st_size
    fe.enclosure(episode_url(config, folder.name, "episode.mp3"), str(size), "audio/mpeg")
    fe.podcast.itunes_duration(str(round(meta.duration_s)))
    fe.podcast.itunes_episode(meta.number)
    fe.podcast.itunes_episode_type("full")
    fe.podcast.itunes_image(episode_url(config, folder.name, COVER_FILE))
    ext = fe.podcastindex
    ext.explicit = config.show.explicit
    lang = config.show.language
    if (folder / "transcript.vtt").is_file():
        ext.transcript(episode_url(config, folder.name, "transcript.vtt"), "text/vtt", language=lang, rel="captions")
    if (folder / "transcript.srt").is_file():
        ext.transcript(episode_url(config, folder.name, "transcript.srt"), "application/x-subrip", language=lang)
    if (folder / "chapters.json").is_file():
        ext.chapters = _Link(episode_url(config, folder.name, "chapters.json"), "application/json+chapters")
