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


def compose(question: str, hits: Sequence[Hit], max_chars: int = 300, max_sentences: int = 3) -> Answer:
    """Pick the sentences that answer the question, mostly from the best passage.

    A query bigram that occurs in most candidate sentences (the topic, e.g. 老人家食堂)
    says little about which sentence answers; rare ones (材料) say much, so each is
    weighted by its inverse frequency among the candidates. A sentence under a
    heading that matches (三、办卡需要带什么) inherits half of the heading's weight.
    """
    if not hits:
        return Answer("", [])
    q = bigrams(question)
    pool: list[tuple[int, int, str, set[str], set[str]]] = []
    for rank, hit in enumerate(hits[:3]):
        for pos, (sentence, heading) in enumerate(sentences_with_headings(hit.text)):
            pool.append((rank, pos, sentence, bigrams(sentence) & q, bigrams(heading) & q))
    n = len(pool) or 1
    df: dict[str, int] = {}
    for *_, own, head in pool:
        for g in own | head:
            df[g] = df.get(g, 0) + 1
    topic = bigrams(hits[0].title)  # words of the document's title say which document, not which sentence
    weight = {g: 0.0 if g in topic else math.log(1 + n / df[g]) for g in df}
    candidates = []
    for rank, pos, sentence, own, head in pool:
        score = sum(weight[g] for g in own) + 0.5 * sum(weight[g] for g in head - own)
        score *= (1.0, 0.8, 0.6)[rank] / (1 + 0.003 * len(sentence))  # later passages must earn their place
        candidates.append((score, rank, pos, sentence))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    best = candidates[0][0] if candidates else 0
    chosen: list[tuple[int, int, str]] = []
    used = 0
    for score, rank, pos, sentence in candidates:
        if chosen and (score < 0.6 * best or score <= 0):
            break
        if chosen and used + len(sentence) > max_chars:
            continue
        chosen.append((rank, pos, sentence[:max_chars]))
        used += len(sentence)
        if len(chosen) >= max_sentences:
            break
    chosen = _expand_headings(chosen, hits, max_chars)
    if not chosen:  # nothing overlaps: the passage's opening is the safest summary
        first = sentences(hits[0].text)
        chosen = [(0, 0, first[0][:max_chars] if first else hits[0].text[:max_chars])]
    chosen.sort()
    text = _join([s for _, _, s in chosen])
    citations, seen = [], set()
    for rank in sorted({r for r, _, _ in chosen}):
        hit = hits[rank]
        key = (hit.source, hit.section)
        if key not in seen:
            seen.add(key)
            citations.append(Citation(hit.title, hit.section, hit.date, hit.source))
    return Answer(text, citations)


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


def _expand_headings(chosen, hits, max_chars):
    """A heading answers nothing by itself: replace it with what follows it in the passage."""
    out = []
    for rank, pos, sentence in chosen:
        if not (_is_heading(sentence) or sentence.endswith(("：", ":"))):
            out.append((rank, pos, sentence))
            continue
        following = sentences(hits[rank].text)[pos + 1 : pos + 6]
        taken, used = [], 0
        for nxt in following:
            if _is_heading(nxt) and taken:
                break
            if used + len(nxt) > max_chars and taken:
                break
            taken.append(nxt)
            used += len(nxt)
        joiner = "" if sentence.endswith(("：", ":")) else "："
        out.append((rank, pos, sentence + joiner + "".join(taken) if taken else sentence))
    return out


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


def _join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        if out and not out.endswith(("。", "！", "？", "；", "：", "\n")):
            out += "；"
        out += s
    return out
