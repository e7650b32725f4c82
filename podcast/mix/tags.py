"""ID3v2.3 tags for the episode MP3 (mutagen): metadata, cover, transcript, chapters.

Podcast apps read ID3v2.3 most reliably, so that is what is written. Chapters
are one CHAP frame per chapter (ids chp0, chp1, ...) with a TIT2 sub-frame,
listed in order by one top-level CTOC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from mutagen.id3 import (
    APIC,
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCON,
    TDRC,
    TIT2,
    TPE1,
    TRCK,
    USLT,
    CTOCFlags,
    ID3NoHeaderError,
    PictureType,
)
from mutagen.id3._tags import save_frame

from podcast.errors import PodcastError
from podcast.models import Chapter

# ISO 639-2 code for Chinese, used by COMM/USLT.
_LANG = "chi"


@dataclass
class EpisodeTags:
    """What the MP3 says about itself."""

    title: str
    show: str
    author: str
    episode: int
    date: dt.date
    comment: str = ""
    cover: Path | None = None  # PNG or JPEG
    transcript: str = ""


_FIRST = ["TIT2", "TPE1", "TRCK", "TALB", "TDRC", "TYER", "TDAT", "TCON", "COMM", "CTOC", "CHAP", "USLT"]


def _rank(frame) -> tuple:
    fid = frame.FrameID
    order = _FIRST.index(fid) if fid in _FIRST else len(_FIRST)
    if fid == "APIC":
        order = len(_FIRST) + 1  # big picture last
    return (order, frame.start_time if fid == "CHAP" else 0)


class _OrderedID3(ID3):
    """mutagen orders frames by size; ffmpeg and some apps list CHAP frames in file
    order, so write them in time order (CTOC first)."""

    def _write(self, config):  # type: ignore[override]
        return bytearray().join(save_frame(f, config=config) for f in sorted(self.values(), key=_rank))


def _cover_mime(path: Path) -> tuple[str, bytes]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PodcastError(f"cover image {path}: cannot read it ({exc.strerror}); fix the path in show.toml") from exc
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", data
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", data
    raise PodcastError(f"cover image {path}: not a PNG or JPEG file; convert it to PNG or JPEG")


def check_cover(path: Path) -> None:
    """Fail early (before minutes of encoding) if the cover is unreadable or not PNG/JPEG."""
    _cover_mime(path)


def write_tags(mp3: Path, tags: EpisodeTags, chapters: list[Chapter]) -> None:
    """Replace any ID3 tag on ``mp3`` with ours (ID3v2.3, UTF-16 text)."""
    cover = _cover_mime(tags.cover) if tags.cover else None  # fail before touching the file
    try:
        id3 = ID3(mp3)
        id3.delete(mp3)
    except ID3NoHeaderError:
        pass
    id3 = _OrderedID3()
    id3.add(TIT2(encoding=3, text=tags.title))
    id3.add(TALB(encoding=3, text=tags.show))
    id3.add(TPE1(encoding=3, text=tags.author))
    id3.add(TRCK(encoding=3, text=str(tags.episode)))
    id3.add(TDRC(encoding=3, text=tags.date.isoformat()))  # saved as TYER+TDAT in v2.3
    id3.add(TCON(encoding=3, text="Podcast"))
    if tags.comment:
        id3.add(COMM(encoding=3, lang=_LANG, desc="", text=tags.comment))
    if cover:
        mime, data = cover
        id3.add(APIC(encoding=3, mime=mime, type=PictureType.COVER_FRONT, desc="Cover", data=data))
    if tags.transcript:
        id3.add(USLT(encoding=3, lang=_LANG, desc="transcript", text=tags.transcript))
    ids = [f"chp{i}" for i in range(len(chapters))]
    for eid, ch in zip(ids, chapters, strict=True):
        id3.add(
            CHAP(
                element_id=eid,
                start_time=int(ch.start_ms),
                end_time=int(ch.end_ms),
                # 0xFFFFFFFF: "no byte offset", readers use the times
                start_offset=0xFFFFFFFF,
                end_offset=0xFFFFFFFF,
                sub_frames=[TIT2(encoding=3, text=ch.title)],
            )
        )
    if ids:
        id3.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text="Chapters")],
            )
        )
    id3.update_to_v23()  # TDRC -> TYER/TDAT etc.; save() alone does not convert
    try:
        id3.save(mp3, v2_version=3)
    except OSError as exc:
        raise PodcastError(f"{mp3}: cannot write ID3 tags ({exc.strerror}); check the folder is writable") from exc
