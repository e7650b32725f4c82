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
from ..script import FIXED_SECTIONS, Bullet, DeepDive, Group, Script, SourceRef
from .chinese import is_latin, to_taiwan
from .stories import Sentence, Story, best_sentence, cluster, info_score, rank, taiwan_item, themes

CHARS_PER_MINUTE = 250  # a later calibration may change this; keep it a parameter

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


def _subsections(story: Story, budget: int) -> list[tuple[str, list[Sentence]]]:
    """2–3 numbered parts from the story's sentences in reading order."""
    event = [s for s in story.sentences if s.in_summary]
    detail = [s for s in story.sentences if not s.in_summary]
    if len(event) >= 4 or (len(event) >= 3 and detail):
        half = (len(event) + 1) // 2
        parts = [(SUB_EVENT, event[:half]), (SUB_TECH, detail), (SUB_IMPACT, event[half:])]
    elif detail:
        parts = [(SUB_EVENT, event), (SUB_TECH, detail)]
    elif len(story.sentences) >= 2:
        half = (len(story.sentences) + 1) // 2
        parts = [(SUB_EVENT, story.sentences[:half]), (SUB_IMPACT, story.sentences[half:])]
    else:
        parts = [(SUB_EVENT, story.sentences)]
    parts = [(h, list(ss[:4])) for h, ss in parts if ss]

    # Trim to the length budget: drop the least informative sentence of the
    # fullest part, never below two bullets a part.
    def size() -> int:
        return sum(len(s.text) for _, ss in parts for s in ss)

    while size() > budget:
        cands = [ss for _, ss in parts if len(ss) > 2]
        if not cands:
            break
        ss = max(cands, key=len)
        ss.remove(min(ss, key=lambda s: info_score(s, story)))
    return parts


def _deep_dive(story: Story, budget: int, sources: _Sources) -> DeepDive:
    title = one_line(story.title)
    if title in FIXED_SECTIONS:
        title = f"深度解析：{title}"
    groups = []
    for heading, sents in _subsections(story, budget):
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


def write_offline(
    items: list[Item], *, show: ShowMeta, writer: WriterConfig, episode: int, date: dt.date
) -> tuple[Script, list[dict]]:
    if not items:
        raise PodcastError("no items to write about: collect some news first (podcast collect)")
    tw_items = [taiwan_item(it) for it in items]
    stories = [s for s in rank(cluster(tw_items)) if s.sentences]
    if not stories:
        raise PodcastError("the collected items have no usable sentences: check the sources' text")
    sources = _Sources()
    target = int(writer.minutes * CHARS_PER_MINUTE)

    # 快速重點摘要: at most 16 stories (4 themes × 4 bullets).
    summary: list[Group] = []
    for title, members in themes(stories[:16], writer.themes):
        bullets = [b for k, s in enumerate(members) if (b := _summary_bullet(s, k, sources))]
        if bullets:
            summary.append(Group(title=one_line(to_taiwan(title)), bullets=bullets))

    intro = _intro(show, date, stories)
    outro, disclaimer = _outro(show), _disclaimer(show)
    used = sum(len(p) for p in [*intro, *outro, *disclaimer])
    used += sum(len(b.text) + len(g.title) for g in summary for b in g.bullets)
    n_dives = min(len(stories), max(2, writer.deep_dives))
    per_dive = max(120, (target - used) // max(1, n_dives))
    dives = [_deep_dive(s, per_dive, sources) for s in stories[:n_dives]]

    top = stories[0]
    title = one_line(top.title)
    script = Script(
        episode=episode, title=title, date=date, intro=intro, summary=summary,
        deep_dives=[d for d in dives if d.subsections], sources=sources.refs,
        outro=outro, disclaimer=disclaimer,
    )
    return script, sources.rows
