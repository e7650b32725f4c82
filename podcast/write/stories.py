"""From items to stories and themes: clustering, ranking, sentence choice.

A story is one event, possibly reported by several items. Everything here is
selection and ordering; no text is produced, so nothing can be invented.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..collect.digest import IMPORTANCE, is_generic_section
from ..models import Item
from .chinese import bigrams, is_simplified, jaccard, sentences, to_taiwan

# Words that make a tech story matter to this show's listeners.
KEYWORDS = ("AI", "模型", "晶片", "資料中心", "投資", "募資", "億", "監理", "法規", "開源", "發表", "收購", "GPU")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*\s*(?:%|％|億|萬|美元|元|奈米|倍|K\b|GB|TB)?")
_ANAPHORA = ("此", "這", "該", "其", "它", "他們", "同時", "此外", "另外", "而", "但")


@dataclass
class Sentence:
    text: str  # Taiwan script, taken verbatim from the item
    item: Item
    in_summary: bool  # from 核心摘要 (what happened) rather than the details


@dataclass
class Story:
    items: list[Item]
    title: str = ""
    section: str = ""
    score: float = 0.0
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def lead(self) -> Item:
        return self.items[0]

    def entities(self) -> list[str]:
        return list(dict.fromkeys(e for it in self.items for e in it.entities))


def taiwan_item(item: Item) -> Item:
    """A copy of the item with every text field in Taiwan script."""
    simp = item.language == "zh-CN" or is_simplified(item.title + item.text)

    def tw(s: str) -> str:
        return to_taiwan(s, simplified=simp)

    return Item(
        id=item.id, url=item.url, title=tw(item.title), text=tw(item.text), source=item.source,
        summary=tw(item.summary), published=item.published, language=item.language,
        entities=[tw(e) for e in item.entities], importance=item.importance,
        section=tw(item.section), links=list(item.links),
    )


def _numbers(text: str) -> set[str]:
    found = {m.group(0).replace(" ", "") for m in _NUMBER.finditer(text)}
    return {n for n in found if not re.fullmatch(r"(19|20)\d\d|\d", n)}


def _same_event(a: Item, b: Item) -> bool:
    title_sim = jaccard(bigrams(a.title), bigrams(b.title))
    ents = {e.lower() for e in a.entities} & {e.lower() for e in b.entities}
    nums = _numbers(a.title + a.text) & _numbers(b.title + b.text)
    text_sim = jaccard(bigrams(a.text), bigrams(b.text))
    if title_sim >= 0.5:
        return True
    if len(ents) >= 2 and (title_sim >= 0.2 or len(nums) >= 1 or text_sim >= 0.25):
        return True
    return len(ents) >= 1 and len(nums) >= 2 and text_sim >= 0.15


def cluster(items: list[Item]) -> list[Story]:
    """Union-find over 'same event' pairs; the highest-ranked item leads."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if _same_event(items[i], items[j]):
                parent[find(j)] = find(i)
    groups: dict[int, list[Item]] = {}
    for i, it in enumerate(items):
        groups.setdefault(find(i), []).append(it)
    stories = []
    for members in groups.values():
        members.sort(key=lambda it: -IMPORTANCE.get(it.importance, 1.5))
        sections = [it.section for it in members if it.section]
        specific = [s for s in sections if not is_generic_section(s)]
        story = Story(items=members, title=members[0].title, section=(specific or sections or [""])[0])
        story.sentences = _story_sentences(members)
        stories.append(story)
    return stories


def _story_sentences(items: list[Item]) -> list[Sentence]:
    """All sentences of the story in reading order, near-duplicates dropped."""
    out: list[Sentence] = []
    seen: list[set[str]] = []
    for it in items:
        summary_sents = set(sentences(it.summary or it.text))
        for s in sentences(it.text):
            if re.search(r"\[\d+\]$", s) or s.startswith(("-", "#", "*")):
                continue  # would clash with script markup
            bg = bigrams(s)
            if any(jaccard(bg, other) > 0.6 for other in seen):
                continue
            seen.append(bg)
            out.append(Sentence(s, it, s in summary_sents))
    return out


KEYWORD_WEIGHT = 5.0  # per configured keyword found; two hits weigh as much as one importance step (10)
MAX_KEYWORD_HITS = 3


def keyword_hits(story: Story, keywords: Sequence[str]) -> int:
    """How many of the show's configured keywords (case-insensitive) the story mentions."""
    if not keywords:
        return 0
    blob = " ".join([story.title, *(f"{it.title} {it.text} {' '.join(it.entities)}" for it in story.items)]).lower()
    return sum(1 for k in dict.fromkeys(k.strip().lower() for k in keywords) if k and k in blob)


def rank(stories: list[Story], now: dt.datetime | None = None, *, keywords: Sequence[str] = ()) -> list[Story]:
    """Importance first, then the show's configured ``keywords`` ([writer] keywords),
    how many sources carry it, built-in topic words and recency."""
    dates = [it.published for s in stories for it in s.items if it.published]
    newest = max(dates) if dates else None
    for s in stories:
        imp = max(IMPORTANCE.get(it.importance, 1.5) for it in s.items)
        links = {u for it in s.items for u in (it.links or [it.url]) if u}
        blob = s.title + " ".join(it.summary for it in s.items)
        hits = sum(1 for k in KEYWORDS if k in blob)
        recency = 0.0
        pub = [it.published for it in s.items if it.published]
        if newest and pub:
            age_h = (newest - max(pub)).total_seconds() / 3600
            recency = max(0.0, 1.0 - age_h / 72)
        s.score = KEYWORD_WEIGHT * min(keyword_hits(s, keywords), MAX_KEYWORD_HITS)
        s.score += 10 * imp + 3 * (len(s.items) - 1) + 1 * (len(links) - 1) + 0.5 * min(hits, 6) + recency
    order = {id(s): i for i, s in enumerate(stories)}
    return sorted(stories, key=lambda s: (-s.score, order[id(s)]))


def info_score(sent: Sentence, story: Story) -> float:
    """How much a sentence says: centrality in the story plus numbers and names."""
    bg = bigrams(sent.text)
    others = [bigrams(o.text) for o in story.sentences if o is not sent]
    centrality = sum(jaccard(bg, o) for o in others) / len(others) if others else 0.0
    nums = len(_numbers(sent.text))
    ents = sum(1 for e in story.entities() if e and e in sent.text)
    latin = len(re.findall(r"\b[A-Z][A-Za-z0-9\-]+", sent.text))
    n = len(sent.text)
    length = 1.0 if 25 <= n <= 110 else 0.4
    anaphora = -1.5 if sent.text.startswith(_ANAPHORA) else 0.0
    return 3 * centrality + 0.8 * min(nums, 3) + 0.6 * min(ents, 3) + 0.2 * min(latin, 3) + length + anaphora + (
        0.5 if sent.in_summary else 0.0
    ) + (1.0 if sent.item is story.lead else 0.0)


def best_sentence(story: Story) -> Sentence | None:
    if not story.sentences:
        return None
    return max(story.sentences, key=lambda s: (info_score(s, story), -story.sentences.index(s)))


def themes(stories: list[Story], target: int) -> list[tuple[str, list[Story]]]:
    """2–4 themes of 2–4 stories (fewer when there are few stories), in rank order.

    Stories are bucketed by digest section; single-story buckets join the
    bucket they share most entities with; oversized buckets split.
    """
    if not stories:
        return []
    want = max(1, min(target, 4, len(stories) // 2 or 1))
    buckets: list[tuple[list[str], list[Story]]] = []
    for s in stories:
        key = s.section or ""
        for names, members in buckets:
            if key and names == [key]:
                members.append(s)
                break
        else:
            buckets.append(([key] if key else [], [s]))
    # Split buckets holding more than four stories.
    split: list[tuple[list[str], list[Story]]] = []
    for names, members in buckets:
        for k in range(0, len(members), 4):
            split.append((names if k == 0 else [], members[k : k + 4]))
    buckets = split

    def overlap(a: list[Story], b: list[Story]) -> int:
        ea = {e.lower() for s in a for e in s.entities()}
        return len(ea & {e.lower() for s in b for e in s.entities()})

    # Merge the smallest bucket into its best partner while too many or too thin.
    while len(buckets) > 1 and (len(buckets) > want or min(len(m) for _, m in buckets) < 2):
        i = min(range(len(buckets)), key=lambda k: (len(buckets[k][1]), -k))
        names, members = buckets.pop(i)
        fits = [k for k in range(len(buckets)) if len(buckets[k][1]) + len(members) <= 4]
        if not fits:
            buckets.insert(i, (names, members))
            break
        j = max(fits, key=lambda k: (overlap(buckets[k][1], members), -len(buckets[k][1])))
        tnames, tmembers = buckets[j]
        buckets[j] = (tnames + [n for n in names if n not in tnames], tmembers + members)
    out = []
    for names, members in buckets:
        members.sort(key=lambda s: -s.score)
        out.append((theme_title(names, members), members))
    out.sort(key=lambda t: -max(s.score for s in t[1]))
    return out


def theme_title(names: list[str], members: list[Story]) -> str:
    """A heading: the section name(s), or a template over shared entities."""
    names = [n for n in names if n]
    if names:
        return "與".join(names[:2])
    counts: dict[str, int] = {}
    for s in members:
        for e in s.entities():
            counts[e] = counts.get(e, 0) + 1
    shared = [e for e, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c > 1]
    if shared:
        return f"{shared[0]} 相關動態"
    return "更多科技動態"
