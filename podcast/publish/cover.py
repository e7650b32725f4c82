"""Cover art: 3000×3000 RGB PNGs with the title set in Noto Sans CJK.

Apple Podcasts wants square RGB JPEG/PNG art of 1400–3000 px. The picture is a
pure function of its text (colours come from a hash of the show title), so a
rerun makes the same bytes; the inputs' hash is stored in a PNG text chunk so
publish can skip redrawing art that is already current.
"""

from __future__ import annotations

import hashlib
import io
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from ..errors import PodcastError
from ..util import write_bytes_atomic

SIZE = 3000
MARGIN = 260
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
_TC_INDEX = 3  # face 3 of NotoSansCJK-*.ttc is "Noto Sans CJK TC" (Traditional Chinese glyph forms)
_KEY_CHUNK = "podcast-cover-key"
# Where a too-long Latin run may break first: after / > & ? = and before <.
_URLISH_BREAKS = re.compile(r"(?<=[/>&?=])|(?=<)")
_NO_LINE_START = set("，。、：；！？）」』】〉》…,.:;!?)")


@lru_cache(maxsize=4)
def find_cjk_font(weight: str = "Bold") -> Path:
    """The NotoSansCJK-<weight>.ttc from Debian's fonts-noto-cjk (any weight if that one is absent)."""
    found: list[Path] = []
    for root in FONT_DIRS:
        if root.is_dir():
            found += sorted(root.rglob("NotoSansCJK-*.ttc"))
    if not found:
        raise PodcastError(
            "no CJK font (NotoSansCJK-*.ttc) under /usr/share/fonts for the cover art: "
            "run `apt-get install fonts-noto-cjk`"
        )
    for path in found:
        if path.name == f"NotoSansCJK-{weight}.ttc":
            return path
    return found[0]


def _font(weight: str, size: int) -> ImageFont.FreeTypeFont:
    path = find_cjk_font(weight)
    try:
        return ImageFont.truetype(str(path), size, index=_TC_INDEX)
    except OSError:  # a .ttc with fewer faces: take its first one
        return ImageFont.truetype(str(path), size)


def _palette(seed: str) -> tuple[np.ndarray, np.ndarray]:
    """Two dark, saturated colours picked deterministically from ``seed``."""
    import colorsys

    h = hashlib.sha256(seed.encode("utf-8")).digest()
    hue = h[0] / 255
    top = colorsys.hsv_to_rgb(hue, 0.70, 0.42)
    bottom = colorsys.hsv_to_rgb((hue + 0.12) % 1.0, 0.80, 0.16)
    return np.array(top) * 255, np.array(bottom) * 255


def _background(seed: str) -> Image.Image:
    top, bottom = _palette(seed)
    # The picture is smooth, so draw it small and upscale: 16× less numpy work.
    n = SIZE // 4
    y = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, n, dtype=np.float32)[None, :]
    t = np.clip(0.75 * y + 0.25 * x, 0.0, 1.0)[..., None]  # diagonal gradient
    rgb = top * (1 - t) + bottom * t
    # A soft light spot in the upper right keeps the flat gradient from looking dull.
    glow = np.exp(-(((x - 0.8) ** 2 + (y - 0.15) ** 2) / 0.08))[..., None]
    rgb = rgb + glow * 60
    small = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    return small.resize((SIZE, SIZE), Image.Resampling.BICUBIC)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy wrap that breaks between any two CJK characters and at spaces otherwise."""
    lines: list[str] = []
    line = ""
    tokens: list[str] = []
    for token in _tokens(text):
        # A Latin run wider than the picture (a URL, markup, a long name) is broken between
        # characters rather than drawn past the edge.
        if draw.textlength(token.rstrip(), font=font) <= width:
            tokens.append(token)
            continue
        for piece in _URLISH_BREAKS.split(token):
            wide = draw.textlength(piece.rstrip(), font=font) > width
            tokens.extend(piece if wide else [piece] if piece else [])
    for token in tokens:
        candidate = line + token
        if line and draw.textlength(candidate, font=font) > width:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line = candidate
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    """Latin words (with their trailing space) stay whole; every other character is its own token."""
    out: list[str] = []
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            out.append(word)
            word = ""
        if ch.isspace() and out:
            out[-1] += " "
        elif ch in _NO_LINE_START and out:
            out[-1] += ch  # kinsoku: closing punctuation never begins a line
        elif not ch.isspace():
            out.append(ch)
    if word:
        out.append(word)
    return out


def _fit(draw: ImageDraw.ImageDraw, text: str, weight: str, start: int, max_lines: int, width: int):
    """The largest font size (from ``start`` down) at which ``text`` fits in ``max_lines`` lines."""
    size = start
    while True:
        font = _font(weight, size)
        lines = _wrap(draw, text, font, width)
        if len(lines) <= max_lines or size <= 60:
            return font, lines[:max_lines]
        size = int(size * 0.9)


def _render(seed: str, kicker: str, title: str, subtitle: str, key: str) -> bytes:
    img = _background(seed)
    draw = ImageDraw.Draw(img)
    width = SIZE - 2 * MARGIN
    y = MARGIN
    if kicker:
        kfont = _font("Bold", 150)
        draw.text((MARGIN, y), kicker, font=kfont, fill=(255, 255, 255))
        y += 260
    # Accent bar, then the title as large as fits in four lines.
    draw.rectangle([MARGIN, y, MARGIN + 360, y + 36], fill=(255, 196, 64))
    y += 140
    tfont, tlines = _fit(draw, title, "Bold", 340 if not kicker else 260, 4, width)
    line_h = int(tfont.size * 1.25)
    for line in tlines:
        draw.text((MARGIN, y), line, font=tfont, fill=(255, 255, 255))
        y += line_h
    if subtitle:
        sfont, slines = _fit(draw, subtitle, "Regular", 150, 3, width)
        y = max(y + 80, SIZE - MARGIN - len(slines) * int(sfont.size * 1.35))
        for line in slines:
            draw.text((MARGIN, y), line, font=sfont, fill=(236, 236, 236))
            y += int(sfont.size * 1.35)
    info = PngImagePlugin.PngInfo()
    info.add_text(_KEY_CHUNK, key)
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info, compress_level=6)
    return buf.getvalue()


def _key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(("v2", *parts)).encode("utf-8")).hexdigest()


def _drawn_key(path: Path) -> str | None:
    """The key a cover we drew carries; "" for a readable PNG we did not draw (the user's own);
    None when there is no readable image at ``path`` (draw one)."""
    try:
        with Image.open(path) as im:
            # im.info holds the text chunks before the image data, where ours is written;
            # im.text would decode the whole 3000 px image first (≈0.13 s per cover checked).
            value = im.info.get(_KEY_CHUNK)
            if not isinstance(value, str):
                return ""
            return value if im.size == (SIZE, SIZE) else None  # ours, at an old size: redraw
    except (OSError, ValueError):
        return None


def make_show_cover(path: Path, title: str, subtitle: str, *, force: bool = False) -> bool:
    """Draw the show's cover at ``path``; returns False when the file there is already this cover."""
    key = _key("show", title, subtitle)
    if not force and _drawn_key(path) == key:
        return False
    write_bytes_atomic(path, _render(title, "", title, subtitle, key))
    return True


def make_episode_cover(
    path: Path, show_title: str, episode_title: str, number: int, *, force: bool = False
) -> bool:
    """Draw an episode's cover (show colours, "EP<n>", the episode title); False if already
    current, or if the file there is the user's own (a PNG this tool did not draw)."""
    key = _key("episode", show_title, episode_title, str(number))
    if not force and _drawn_key(path) in (key, ""):  # current, or the user's own
        return False
    write_bytes_atomic(path, _render(show_title, f"EP{number}", episode_title, show_title, key))
    return True


def copy_artwork(src: Path, dest: Path) -> None:
    """Install the user's artwork as ``dest`` (a PNG); other formats are converted to RGB PNG."""
    try:
        with Image.open(src) as im:
            im.load()
            if im.format == "PNG" and im.mode == "RGB":
                data = src.read_bytes()
            else:
                buf = io.BytesIO()
                im.convert("RGB").save(buf, "PNG")
                data = buf.getvalue()
            size = im.size
    except FileNotFoundError:
        raise PodcastError(f"{src}: artwork file not found (show.artwork in show.toml)") from None
    except (OSError, ValueError) as exc:
        raise PodcastError(f"{src}: not a readable image ({exc}); fix show.artwork in show.toml") from None
    if size[0] != size[1] or not 1400 <= size[0] <= 3000:
        # Apple Podcasts refuses such art, so fail before the feed points at it.
        raise PodcastError(
            f"{src}: artwork is {size[0]}×{size[1]}; podcast apps need a square image of 1400–3000 px"
        )
    if not dest.exists() or dest.read_bytes() != data:
        write_bytes_atomic(dest, data)
