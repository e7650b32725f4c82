"""The LLM writer: one chat-completions request per story, over any OpenAI-compatible API.

Story selection, ranking, themes and source numbering are the offline
writer's (so both writers cover the same news); only the wording comes from
the model. For each story the model gets its sources fenced in
``<source id="n">`` blocks and answers JSON (:class:`StoryAnswer`). An answer
that is not valid JSON, misses fields or cites an id that is not one of the
story's sources is sent back with the error (at most ``MAX_FIXES`` times);
a story the model cannot get right, or that the endpoint cannot serve, is
written by the offline writer and named in the warnings. One last request
names the episode and its themes. Everything the model says goes through
OpenCC (Taiwan script) and then :func:`check_grounding`.

Transport: the ``openai`` client with ``max_retries=0``; this module retries
429/5xx/timeouts itself with exponential backoff, honouring Retry-After.
Validated answers are cached in ``<show>/.cache/llm/<hash>.json`` by a hash of
(model, first prompt), so regenerating an episode does not pay twice.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..collect.files import site_name
from ..config import LLMConfig, ShowMeta, WriterConfig
from ..errors import PodcastError
from ..models import Item
from ..script import FIXED_SECTIONS, Bullet, DeepDive, Group, Script, SourceRef
from ..util import sha256_text, write_text_atomic
from .chinese import to_taiwan
from .grounding import check_grounding
from .offline import (
    CHARS_PER_MINUTE,
    TOLERANCE,
    _deep_dive,
    _disclaimer,
    _intro,
    _outro,
    _Sources,
    _summary_bullet,
    cap_for_budget,
    one_line,
    plan_length,
    spoken_chars,
    target_chars,
)
from .stories import Story, cluster, rank, taiwan_item, themes

log = logging.getLogger("podcast.write.llm")

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
MAX_FIXES = 2  # re-asks after a malformed answer
SOURCE_CHARS = 4000  # per source in a prompt; digests and articles fit, whole pages get cut
MAX_RETRY_AFTER = 60.0
SUMMARY_CHARS = 60  # a summary bullet's length, as the story prompt asks


# --------------------------------------------------------------------------- answer schema


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")  # models like to add fields; harmless


class BulletAnswer(_Answer):
    text: str = Field(min_length=1)
    refs: list[int] = Field(min_length=1)


class SubsectionAnswer(_Answer):
    title: str = Field(min_length=1)
    bullets: list[BulletAnswer] = Field(min_length=1)


class DeepDiveAnswer(_Answer):
    title: str = Field(min_length=1)
    subsections: list[SubsectionAnswer] = Field(min_length=1)


class StoryAnswer(_Answer):
    summary_bullet: BulletAnswer
    deep_dive: DeepDiveAnswer | None = None


class EpisodeAnswer(_Answer):
    title: str = Field(min_length=1, max_length=80)
    themes: list[str]


class AnswerError(ValueError):
    """The answer cannot be used; the message is sent back to the model."""


def _json_object(content: str | None) -> Any:
    if not content or not content.strip():
        raise AnswerError("the answer was empty")
    text = content.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.S)
    if fenced:  # a common habit even in JSON mode; the JSON inside is what counts
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"the answer is not valid JSON ({exc})") from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {'missing' if err['type'] == 'missing' else err['msg']}")
    return "the JSON does not match the required shape: " + "; ".join(parts)


_TRAILING_REFS = re.compile(r"(?:\s*\[\d+\])+\s*$")


def _clean(text: str) -> str:
    """One line of Taiwan-script text, without markup or [n] marks at the end."""
    text = one_line(to_taiwan(text))
    text = _TRAILING_REFS.sub("", text).lstrip("-*#> ").strip()
    return text


def _bullet(ans: BulletAnswer, allowed: dict[int, list[int]], where: str) -> Bullet:
    bad = [r for r in ans.refs if r not in allowed]
    if bad:
        ok = ", ".join(str(k) for k in allowed)
        raise AnswerError(f"{where} cites source id {bad[0]}, which is not one of this story's sources ({ok})")
    text = _clean(ans.text)
    if not text:
        raise AnswerError(f"{where} has no text")
    refs = list(dict.fromkeys(n for r in ans.refs for n in allowed[r]))
    try:
        return Bullet(text=text, refs=refs)
    except ValueError as exc:
        raise AnswerError(f"{where}: {exc}") from None


def parse_story_answer(
    content: str | None, allowed: dict[int, list[int]], want_deep_dive: bool
) -> tuple[Bullet, DeepDive | None]:
    """Validate one story's answer. ``allowed`` maps a prompt source id to the
    資料來源 numbers it stands for. Raises :class:`AnswerError`."""
    try:
        ans = StoryAnswer.model_validate(_json_object(content))
    except ValidationError as exc:
        raise AnswerError(_describe(exc)) from None
    summary = _bullet(ans.summary_bullet, allowed, "summary_bullet")
    if not want_deep_dive:
        return summary, None
    if ans.deep_dive is None:
        raise AnswerError("deep_dive is missing")
    groups = []
    for i, sub in enumerate(ans.deep_dive.subsections):
        bullets = [
            _bullet(b, allowed, f"deep_dive.subsections.{i}.bullets.{j}") for j, b in enumerate(sub.bullets)
        ]
        title = _clean(sub.title)
        if not title:
            raise AnswerError(f"deep_dive.subsections.{i}.title is empty")
        groups.append(Group(title=title, bullets=bullets))
    title = _clean(ans.deep_dive.title)
    if not title or title in FIXED_SECTIONS:
        raise AnswerError(f"deep_dive.title {title!r} cannot be used as a section heading")
    return summary, DeepDive(title=title, subsections=groups)


def parse_episode_answer(content: str | None, n_themes: int) -> tuple[str, list[str]]:
    try:
        ans = EpisodeAnswer.model_validate(_json_object(content))
    except ValidationError as exc:
        raise AnswerError(_describe(exc)) from None
    if len(ans.themes) != n_themes:
        raise AnswerError(f"themes has {len(ans.themes)} titles; exactly {n_themes} are needed")
    title = _clean(ans.title)
    names = [_clean(t) for t in ans.themes]
    if not title or not all(names):
        raise AnswerError("title and every theme title must be non-empty text")
    return title, names


# --------------------------------------------------------------------------- prompts

_FENCE_TAGS = re.compile(r"<(\s*/?\s*)(source|theme)\b", re.I)


def fence_safe(text: str) -> str:
    """Neutralise anything in untrusted text that could close or open a data block."""
    return _FENCE_TAGS.sub(lambda m: "＜" + m.group(1) + m.group(2), text)


class Prompts:
    """Jinja2 templates: ``<show>/prompts/<name>`` overrides the bundled one."""

    def __init__(self, show_dir: Path | None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if show_dir is not None and (show_dir / "prompts").is_dir():
            loaders.append(jinja2.FileSystemLoader(show_dir / "prompts"))
        loaders.append(jinja2.FileSystemLoader(PROMPTS_DIR))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
            autoescape=False, keep_trailing_newline=False,
        )

    def render(self, name: str, **values: Any) -> str:
        try:
            return self.env.get_template(name).render(**values).strip()
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or name
            raise PodcastError(f"prompt template {where}: {exc}: fix or delete the override") from None


def _source_block(sid: int, item: Item) -> dict[str, str | int]:
    text = item.text or item.summary or item.title
    if len(text) > SOURCE_CHARS:
        text = text[:SOURCE_CHARS] + "……（以下省略）"
    return {
        "id": sid,
        "title": fence_safe(one_line(item.title)),
        "site": fence_safe(item.source or site_name(item.url, "")),
        "language": item.language,
        "text": fence_safe(text.strip()),
    }


# --------------------------------------------------------------------------- transport


class CallFailed(Exception):
    """The endpoint could not answer (after retries): the story falls back."""


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return float(ms) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return (when - dt.datetime.now(when.tzinfo)).total_seconds()
    except (TypeError, ValueError):
        return None


class Endpoint:
    """chat.completions with our own retries, JSON mode with graceful fallback, a breaker."""

    def __init__(
        self,
        llm: LLMConfig,
        *,
        base_delay: float = 1.0,
        transient_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = llm.api_key()
        url = llm.endpoint()
        if not url and not key:
            raise PodcastError(
                "LLM writer: no endpoint configured: set [llm] base_url in show.toml or OPENAI_BASE_URL "
                f"(and {llm.api_key_env} if the server needs a key), or use [writer] engine = \"offline\""
            )
        self.llm = llm
        self.where = url or "https://api.openai.com/v1"
        # Local servers (Ollama, vLLM, LM Studio) take any key; the client insists on one.
        self.client = openai.OpenAI(
            base_url=url or None, api_key=key or "not-needed", timeout=llm.timeout, max_retries=0
        )
        self.base_delay = base_delay
        self.transient_retries = transient_retries
        self.sleep = sleep
        self.json_mode = True
        self.down: str | None = None  # set when the endpoint stopped answering; skip the rest
        self.requests = 0

    def complete(self, messages: list[dict[str, str]]) -> str | None:
        if self.down:
            raise CallFailed(self.down)
        attempt = 0
        while True:
            try:
                return self._once(messages)
            except openai.BadRequestError as exc:
                if self.json_mode:
                    # Not every server knows response_format; the prompt asks for JSON anyway.
                    log.info("endpoint rejected response_format (%s); retrying without it", exc.status_code)
                    self.json_mode = False
                    continue
                raise CallFailed(f"the endpoint rejected the request (400: {_error_text(exc)})") from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise PodcastError(
                    f"LLM endpoint {self.where}: the API key was refused ({exc.status_code}): "
                    f"set {self.llm.api_key_env} to a valid key"
                ) from None
            except openai.NotFoundError:
                raise PodcastError(
                    f"LLM endpoint {self.where}: model {self.llm.model!r} or the chat completions API was not "
                    "found (404): check [llm] base_url (often ends in /v1) and model in show.toml"
                ) from None
            except (openai.APITimeoutError, openai.APIConnectionError, openai.APIStatusError) as exc:
                reason, wait = self._transient(exc, attempt)
                if reason is None:
                    raise CallFailed(f"the endpoint answered {_error_text(exc)}") from None
                if attempt >= self.transient_retries:
                    self.down = f"{reason} ({attempt + 1} tries)"
                    raise CallFailed(self.down) from None
                log.info("LLM request failed (%s); retrying in %.2fs", reason, wait)
                self.sleep(wait)
                attempt += 1

    def _transient(self, exc: Exception, attempt: int) -> tuple[str | None, float]:
        backoff = self.base_delay * (2**attempt)
        if isinstance(exc, openai.APITimeoutError):
            return f"timed out after {self.llm.timeout:g}s", backoff
        if isinstance(exc, openai.APIConnectionError):
            return f"could not connect to {self.where}", backoff
        assert isinstance(exc, openai.APIStatusError)
        code = exc.status_code
        if code in (408, 409, 429) or code >= 500:
            after = _retry_after(exc)
            wait = backoff if after is None else min(max(after, 0.0), MAX_RETRY_AFTER)
            return ("rate limited (429)" if code == 429 else f"server error {code}"), wait
        return None, 0.0

    def _once(self, messages: list[dict[str, str]]) -> str | None:
        self.requests += 1
        kwargs: dict[str, Any] = {"model": self.llm.model, "messages": messages, "temperature": 0.3}
        if self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        resp = self.client.chat.completions.create(**kwargs)
        if not resp.choices:
            return None
        # A reply cut off by max tokens is invalid JSON and gets re-asked like any other.
        return resp.choices[0].message.content


def _error_text(exc: Exception) -> str:
    code = getattr(exc, "status_code", None)
    msg = one_line(str(getattr(exc, "message", exc)))[:200]
    return f"{code}: {msg}" if code else msg


class Cache:
    """Validated answers by hash of (model, first prompt); atomic writes, corrupt files ignored."""

    def __init__(self, show_dir: Path | None, model: str) -> None:
        self.dir = show_dir / ".cache" / "llm" if show_dir is not None else None
        self.model = model

    def _path(self, messages: list[dict[str, str]]) -> Path | None:
        if self.dir is None:
            return None
        key = sha256_text(self.model, json.dumps(messages, ensure_ascii=False, sort_keys=True))
        return self.dir / f"{key}.json"

    def get(self, messages: list[dict[str, str]]) -> str | None:
        path = self._path(messages)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data["content"] if data.get("model") == self.model else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, messages: list[dict[str, str]], content: str) -> None:
        path = self._path(messages)
        if path is not None:
            write_text_atomic(path, json.dumps({"model": self.model, "content": content}, ensure_ascii=False))


def ask(
    endpoint: Endpoint, cache: Cache, messages: list[dict[str, str]], parse: Callable[[str | None], Any]
) -> Any:
    """Ask, validate, re-ask with the error (``MAX_FIXES`` times). Raises CallFailed/AnswerError."""
    cached = cache.get(messages)
    if cached is not None:
        try:
            return parse(cached)
        except AnswerError:
            pass  # e.g. written by an older version; ask again
    convo = list(messages)
    for fix in range(MAX_FIXES + 1):
        content = endpoint.complete(convo)
        try:
            result = parse(content)
        except AnswerError as exc:
            if fix == MAX_FIXES:
                raise
            convo += [
                {"role": "assistant", "content": content or ""},
                {"role": "user", "content": f"這個回答無法使用：{exc}。請修正後只回傳 JSON 物件。"
                 f" (The answer was invalid: {exc}. Reply with the corrected JSON object only.)"},
            ]
            continue
        cache.put(messages, content or "")
        return result
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- the writer


def _renumber(script: Script, sources: _Sources) -> list[dict]:
    """Keep only the sources a bullet cites, numbered in order of first citation."""
    new: dict[int, int] = {}
    for b in script.bullets():
        for r in b.refs:
            new.setdefault(r, len(new) + 1)
    for b in script.bullets():
        b.refs = [new[r] for r in b.refs]
    rows = {row["n"]: row for row in sources.rows}
    out_rows, refs = [], []
    for old, n in sorted(new.items(), key=lambda kv: kv[1]):
        row = {**rows[old], "n": n}
        out_rows.append(row)
        refs.append(SourceRef(n, row["title"], row["url"]))
    script.sources = refs
    return out_rows


def write_llm(
    items: list[Item],
    *,
    show: ShowMeta,
    writer: WriterConfig,
    llm: LLMConfig | None = None,
    episode: int,
    date: dt.date,
    show_dir: Path | None = None,
    base_delay: float = 1.0,
    transient_retries: int = 3,
    chars_per_minute: float = CHARS_PER_MINUTE,
) -> tuple[Script, list[dict], list[str]]:
    """The script, its sources (n, title, url, item_id) and warnings (fallbacks,
    grounding, length). How many stories and deep dives, and each deep dive's
    character budget (in its prompt), come from the offline writer's length plan
    for ``writer.minutes`` at ``chars_per_minute``."""
    llm = llm or LLMConfig()
    if not items:
        raise PodcastError("no items to write about: collect some news first (podcast collect)")
    stories = [s for s in rank(cluster([taiwan_item(it) for it in items]), keywords=writer.keywords) if s.sentences]
    if not stories:
        raise PodcastError("the collected items have no usable sentences: check the sources' text")
    endpoint = Endpoint(llm, base_delay=base_delay, transient_retries=transient_retries)
    cache = Cache(show_dir, llm.model)
    prompts = Prompts(show_dir)
    system = prompts.render("system.j2", show_title=one_line(show.title))
    warnings: list[str] = []
    sources = _Sources()

    eligible = [s for k, s in enumerate(stories) if k == 0 or len(s.sentences) >= 2]
    skeleton = Script(
        episode=episode, title=one_line(stories[0].title), date=date, intro=_intro(show, date, stories),
        summary=[], deep_dives=[], sources=[], outro=_outro(show), disclaimer=_disclaimer(show),
    )
    target = target_chars(writer.minutes, chars_per_minute)
    plan, _, _ = plan_length(stories, eligible, skeleton=skeleton, writer=writer, target=target)
    grouped = themes(stories[: plan.summary], writer.themes)
    # Number every source up front, in the offline writer's order, so prompts can name them.
    for _, members in grouped:
        for s in members:
            sources.cite_all(s.items)
    dive_stories = eligible[: plan.dives]
    n_dives = len(dive_stories)
    dive_ids = {id(s) for s in dive_stories}
    # What is left of the target after the fixed parts and ~SUMMARY_CHARS per summary bullet.
    left = target - spoken_chars(skeleton) - (SUMMARY_CHARS + 4) * plan.summary - 12 * len(grouped)
    per_dive = max(120, left // max(1, n_dives))

    written: dict[int, tuple[Bullet | None, DeepDive | None]] = {}
    for _, members in grouped:
        for pos, story in enumerate(members):
            want = id(story) in dive_ids
            try:
                written[id(story)] = _write_story(
                    story, want, per_dive, system, prompts, endpoint, cache, sources
                )
            except (AnswerError, CallFailed) as exc:
                warnings.append(
                    f"LLM writer: story 「{one_line(story.title)}」 written offline: {exc}"
                )
                written[id(story)] = (
                    _summary_bullet(story, pos, sources),
                    _deep_dive(story, cap_for_budget(per_dive), sources) if want else None,
                )

    summary: list[Group] = []
    for title, members in grouped:
        bullets = [b for s in members if (b := written[id(s)][0])]
        if bullets:
            summary.append(Group(title=one_line(to_taiwan(title)), bullets=bullets))
    dives: list[DeepDive] = []
    for s in dive_stories:
        d = written[id(s)][1]
        if d and d.subsections:
            if any(d.title == other.title for other in dives):  # chapters need telling apart
                d.title = one_line(s.title) if s.title not in FIXED_SECTIONS else f"深度解析：{s.title}"
            dives.append(d)

    title = one_line(stories[0].title)
    try:
        theme_block = [
            {"id": i, "bullets": [fence_safe(b.text) for b in g.bullets]} for i, g in enumerate(summary, 1)
        ]
        user = prompts.render("episode.j2", themes=theme_block)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        title, names = ask(endpoint, cache, messages, lambda c: parse_episode_answer(c, len(summary)))
        for g, name in zip(summary, names, strict=True):
            g.title = name
    except (AnswerError, CallFailed) as exc:
        warnings.append(f"LLM writer: episode and theme titles written offline: {exc}")

    script = Script(
        episode=episode, title=title, date=date, intro=_intro(show, date, stories), summary=summary,
        deep_dives=dives, sources=[], outro=_outro(show), disclaimer=_disclaimer(show),
    )
    rows = _renumber(script, sources)
    said = spoken_chars(script)
    # Only a missed budget is news; thin sources were already visible in the plan.
    if abs(plan.chars - target) <= TOLERANCE * target and abs(said - target) > TOLERANCE * target:
        warnings.append(
            f"LLM writer: the script runs ~{said / chars_per_minute:.1f} minutes, "
            f"not the {writer.minutes:g} asked for ([writer] minutes)"
        )
    warnings += check_grounding(script, rows, items)
    log.info("LLM writer: %d requests to %s", endpoint.requests, endpoint.where)
    return script, rows, warnings


def _write_story(
    story: Story,
    want_deep_dive: bool,
    budget: int,
    system: str,
    prompts: Prompts,
    endpoint: Endpoint,
    cache: Cache,
    sources: _Sources,
) -> tuple[Bullet, DeepDive | None]:
    blocks, allowed = [], {}
    for it in story.items:
        numbers = sources.cite(it)
        allowed[numbers[0]] = numbers  # one block per item; its extra links share the citation
        blocks.append(_source_block(numbers[0], it))
    user = prompts.render(
        "story.j2", sources=blocks, ids=list(allowed),
        deep_dive=want_deep_dive, min_subsections=2, max_subsections=3, budget=budget,
        summary_chars=SUMMARY_CHARS,
    )
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return ask(endpoint, cache, messages, lambda c: parse_story_answer(c, allowed, want_deep_dive))
