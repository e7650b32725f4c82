"""OPML subscription lists: every outline with an xmlUrl is a feed source.

Outlines nest (folders of feeds); all levels are read, in document order,
each feed URL once. The XML is parsed with entity expansion off, since an
OPML file may come from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ..errors import PodcastError


@dataclass
class FeedRef:
    url: str
    title: str = ""
    folder: str = ""  # the enclosing outline's text, if any


def looks_like_opml(data: bytes | str) -> bool:
    head = data[:2048]
    if isinstance(head, bytes):
        head = head.decode("utf-8", "ignore")
    return "<opml" in head.lower()


def parse_opml(data: bytes | str, origin: str) -> list[FeedRef]:
    """Feed references in an OPML document; ``origin`` names it in errors."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise PodcastError(f"{origin}: not valid OPML ({exc}): export the subscription list again") from None
    if etree.QName(root).localname.lower() != "opml":
        raise PodcastError(f"{origin}: not an OPML file (root is <{etree.QName(root).localname}>)")
    body = next((el for el in root if etree.QName(el).localname.lower() == "body"), None)
    refs: list[FeedRef] = []
    seen: set[str] = set()
    if body is not None:
        _walk(body, "", refs, seen)
    return refs


def _walk(node: etree._Element, folder: str, refs: list[FeedRef], seen: set[str]) -> None:
    for el in node:
        if not isinstance(el.tag, str) or etree.QName(el).localname.lower() != "outline":
            continue
        attrs = {k.lower(): (v or "").strip() for k, v in el.attrib.items()}
        label = attrs.get("title") or attrs.get("text", "")
        url = attrs.get("xmlurl", "")
        if url and url not in seen:
            seen.add(url)
            refs.append(FeedRef(url=url, title=label, folder=folder))
        _walk(el, label if not url else folder, refs, seen)


def read_opml_file(path: Path) -> list[FeedRef]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PodcastError(f"{path}: file not found: check the path") from None
    except OSError as exc:
        raise PodcastError(f"{path}: cannot be read ({exc.strerror})") from None
    refs = parse_opml(data, str(path))
    if not refs:
        raise PodcastError(f"{path}: OPML file lists no feeds (no outline has an xmlUrl)")
    return refs
