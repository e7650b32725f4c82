"""show.toml and voices/*.toml: loaded with tomllib, validated with pydantic.

A wrong, missing or unknown field becomes one :class:`PodcastError` line that
names the file and the field, never a traceback.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import PodcastError

if TYPE_CHECKING:
    from .script import Pauses

SHOW_FILE = "show.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ShowMeta(_Strict):
    title: Annotated[str, Field(min_length=1)]
    author: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    language: str = "zh-TW"
    base_url: Annotated[str, Field(min_length=1)]
    link: str = ""
    owner_name: str = ""
    owner_email: str = ""
    category: str = "Technology"
    subcategory: str = ""
    explicit: bool = False
    artwork: str = ""
    greeting: str = ""
    outro: str = ""
    disclaimer: str = ""

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL, e.g. https://example.com/podcast/")
        return v if v.endswith("/") else v + "/"


class SourcesConfig(_Strict):
    items: list[str] = []
    since: str = "24h"


class WriterConfig(_Strict):
    engine: Literal["auto", "offline", "llm"] = "auto"
    deep_dives: Annotated[int, Field(ge=2, le=8)] = 4
    themes: Annotated[int, Field(ge=2, le=6)] = 3
    minutes: Annotated[float, Field(gt=0, le=180)] = 8.0
    # Stories whose title or text mention one of these rank higher.
    keywords: list[str] = []


class LLMConfig(_Strict):
    base_url: str = ""
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    timeout: Annotated[float, Field(gt=0)] = 60.0

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def endpoint(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None


class VoiceConfig(_Strict):
    preset: str = "default"


class AudioConfig(_Strict):
    loudness_lufs: Annotated[float, Field(ge=-30, le=-10)] = -16.0
    true_peak_db: Annotated[float, Field(ge=-6, le=0)] = -1.0
    bitrate_kbps: Annotated[int, Field(ge=32, le=320)] = 64
    channels: Literal[1, 2] = 1
    sample_rate: Literal[44100, 48000] = 44100
    stings: bool = True
    # A synthesized pad under the intro (開場) and the outro (結尾), ducked under speech.
    music_bed: bool = False
    music_bed_lu: Annotated[float, Field(ge=-40, le=-3)] = -15.0  # its level between words, vs the target
    music_bed_duck_db: Annotated[float, Field(ge=0, le=40)] = 12.0  # how far it dips under speech
    # Silence inserted when stitching (the online voice cannot take SSML breaks).
    pause_sentence_ms: Annotated[int, Field(ge=0, le=5000)] = 350  # between sentences within a segment
    pause_bullet_ms: Annotated[int, Field(ge=0, le=5000)] = 350  # after a bullet or paragraph
    pause_heading_ms: Annotated[int, Field(ge=0, le=5000)] = 600  # after a heading
    pause_section_ms: Annotated[int, Field(ge=0, le=10000)] = 1200  # at the end of a section

    def pauses(self) -> Pauses:
        """The pauses that end segments, for :func:`podcast.script.spoken_segments`."""
        from .script import Pauses

        return Pauses(self.pause_bullet_ms, self.pause_heading_ms, self.pause_section_ms)


class ShowConfig(_Strict):
    show: ShowMeta
    sources: SourcesConfig = SourcesConfig()
    writer: WriterConfig = WriterConfig()
    llm: LLMConfig = LLMConfig()
    voice: VoiceConfig = VoiceConfig()
    audio: AudioConfig = AudioConfig()


class VoicePreset(_Strict):
    """voices/<name>.toml: one voice of one engine."""

    name: str = ""
    engine: Annotated[str, Field(min_length=1)]
    voice: str = ""
    rate: Annotated[float, Field(gt=0.25, le=4.0)] = 1.0
    pitch: Annotated[float, Field(ge=-12, le=12)] = 0.0
    volume: Annotated[float, Field(ge=-20, le=20)] = 0.0
    fallback: str = ""
    # Requests in flight at once (edge-tts; default 4); the offline engines run one at a time.
    concurrency: Annotated[int, Field(ge=1, le=16)] | None = None
    # Measured speaking rate in characters per minute at rate 1.0 (see
    # scripts/measure_rate.py); it turns --minutes into a script length.
    chars_per_minute: Annotated[float, Field(gt=50, le=1000)] | None = None


M = TypeVar("M", bound=BaseModel)


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "missing":
        what = "is missing"
    elif kind == "extra_forbidden":
        what = "is not a known setting"
    else:
        what = f"is invalid: {err['msg']}"
        if "input" in err and not isinstance(err["input"], dict):
            what += f" (got {err['input']!r})"
    more = len(exc.errors()) - 1
    return f"{loc} {what}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def load_toml(path: Path, model: type[M]) -> M:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PodcastError(f"{path}: not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PodcastError(f"{path}: not valid TOML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PodcastError(f"{path}: {_describe(exc)}") from None


def find_show_dir(start: Path | None = None) -> Path:
    """The folder holding show.toml: ``start`` or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for d in [here, *here.parents]:
        if (d / SHOW_FILE).is_file():
            return d
    raise PodcastError(f"no {SHOW_FILE} in {here} or its parents: run 'podcast init' first")


def load_show(show_dir: Path) -> ShowConfig:
    return load_toml(show_dir / SHOW_FILE, ShowConfig)


def load_preset(show_dir: Path, name: str) -> VoicePreset:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise PodcastError(f"voice preset name {name!r} is not valid")
    path = show_dir / "voices" / f"{name}.toml"
    preset = load_toml(path, VoicePreset)
    return preset.model_copy(update={"name": name})
