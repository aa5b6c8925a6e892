"""Extractive answers: the best sentences of the best passages, with their citations.

Nothing is written that the documents do not say: every sentence of an answer
is copied from a retrieved passage, so no number, phone or address is invented.
Sentences are scored by character-bigram overlap with the question (robust to
typos and needs no tokenizer), and kept in document order to read naturally.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from bot.core.messages import Citation
from bot.core.ports import Hit

_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]?")
_PUNCT = re.compile(r"[\s，。！？、；：“”‘’（）()《》\-—…·,.!?;:\"'<>\[\]{}#*|>]+")
_FILLER = set("的了吗呢吧啊呀么是在有和与我你他她它这那哪什怎请问一下能可以")


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation]


def bigrams(text: str) -> set[str]:
    clean = _PUNCT.sub(" ", text.lower())
    grams = set()
    for part in clean.split():
        if len(part) == 1 and part not in _FILLER:
            grams.add(part)
        grams.update(part[i : i + 2] for i in range(len(part) - 1))
    return {g for g in grams if not all(ch in _FILLER for ch in g)}


def compose(question: str, hits: Sequence[Hit], max_chars: int = 260, passages: int = 3) -> Answer:
    """The run of consecutive sentences, within one of the best passages, that best answers the question.

    A run reads as the document does (a list stays under its heading, an answer
    stays after the sentence that repeats the question), which cherry-picked
    sentences do not; measured on 420 real questions (bench/answers.py) it also
    contains the official answer far more often.

    A query bigram that occurs in most candidate sentences (the topic, e.g. 老人家食堂)
    says little about which sentence answers; rare ones (材料) say much, so each is
    weighted by its inverse frequency among the candidates, and the words of the
    document's title weigh nothing. A sentence under a matching heading
    (三、办卡需要带什么) inherits half of the heading's weight.
    """
    if not hits:
        return Answer("", [])
    q = bigrams(question)
    pool = [(rank, sentences_with_headings(hit.text)) for rank, hit in enumerate(hits[:passages])]
    seen = [(bigrams(s) & q, bigrams(h) & q) for _, items in pool for s, h in items]
    n = len(seen) or 1
    df: dict[str, int] = {}
    for own, head in seen:
        for g in own | head:
            df[g] = df.get(g, 0) + 1
    topic = bigrams(hits[0].title)
    weight = {g: 0.0 if g in topic else math.log(1 + n / df[g]) for g in df}
    best: tuple[float, int, int, int] | None = None  # (score, rank, first, end)
    for rank, items in pool:
        scores = []
        for sentence, heading in items:
            own, head = bigrams(sentence) & q, bigrams(heading) & q
            scores.append(sum(weight[g] for g in own) + 0.5 * sum(weight[g] for g in head - own))
        for first in range(len(items)):
            if scores[first] <= 0:
                continue  # a run starts where the question is met
            end, length, run, listing = first, 0, [], False
            while end < len(items) and (end == first or length + len(items[end][0]) <= max_chars):
                if end - first >= 2 and run[-1] <= 0 and run[-2] <= 0 and scores[end] <= 0 and not listing:
                    break  # the run has moved on to something else
                listing = listing or items[end][0].endswith(("：", ":"))  # "下列条件：" keeps the whole list
                length += len(items[end][0])
                run.append(scores[end])
                end += 1
            # the best sentence decides; the rest of the run adds a little (repeated words must not win)
            score = (max(run) + 0.25 * (sum(run) - max(run))) * (1.0, 0.8, 0.6)[min(rank, 2)]
            if best is None or score > best[0]:
                best = (score, rank, first, end)
    if best is None:  # the question's words are nowhere: the passage's opening is the safest summary
        opening = _render([s for s, _ in pool[0][1]]) if pool and pool[0][1] else hits[0].text
        return Answer(opening[:max_chars], [_cite(hits[0])])
    _, rank, first, end = best
    chosen = [sentence for sentence, _ in pool[rank][1][first:end]]
    text = _render(chosen)
    if len(text) > max_chars * 2:  # one enormous sentence
        text = text[: max_chars * 2] + "……"
    return Answer(text, [_cite(hits[rank])])


def _cite(hit: Hit) -> Citation:
    return Citation(hit.title, hit.section, hit.date, hit.source)


def sentences_with_headings(text: str) -> list[tuple[str, str]]:
    """Each sentence of a passage with the heading line it stands under ("" before any)."""
    out, heading = [], ""
    for sentence in sentences(text):
        if _is_heading(sentence):
            heading = sentence
        out.append((sentence, heading))
    return out


def _is_heading(sentence: str) -> bool:
    return (len(sentence) <= 24 and "，" not in sentence and "：" not in sentence
            and not sentence.endswith(("。", "；", "！", "？", ";", "!", "?")))


def sentences(text: str) -> list[str]:
    """Split a passage into clean sentences: markdown list marks and table pipes removed."""
    out = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or set(line) <= set("|-: "):
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|") if c.strip()]
            line = "：".join(cells[:1]) + ("，".join([""] + cells[1:]) if len(cells) > 1 else "")
            line = line.replace("：，", "：")
        line = re.sub(r"^([-*+>]\s*|\d+[.、]\s+)", "", line)
        out.extend(s.strip() for s in _SENTENCE.findall(line) if len(s.strip()) > 1)
    return out


def _render(sentences: list[str]) -> str:
    """Sentences as one paragraph; a heading starts its own line and introduces what follows."""
    out = ""
    for s in sentences:
        if _is_heading(s):
            out += ("\n" if out else "") + s + "："
        else:
            out = _join([out, s]) if out and not out.endswith(("：", "\n")) else out + s
    return out.strip()


def _join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        if out and not out.endswith(("。", "！", "？", "；", "：", "\n")):
            out += "；"
        out += s
    return out
