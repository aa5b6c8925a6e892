"""Extractive answers: the best sentences of the best passages, with their citations.

Nothing is written that the documents do not say: every sentence of an answer
is copied from a retrieved passage, so no number, phone or address is invented.
Sentences are scored by character-bigram overlap with the question (robust to
typos and needs no tokenizer), and kept in document order to read naturally.
"""

from __future__ import annotations

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


def compose(question: str, hits: Sequence[Hit], max_chars: int = 320, max_passages: int = 2) -> Answer:
    """Pick the sentences that answer the question from the top passages."""
    if not hits:
        return Answer("", [])
    q = bigrams(question)
    chosen: list[tuple[int, int, str]] = []  # (passage rank, position, sentence)
    used: list[Hit] = []
    budget = max_chars
    for rank, hit in enumerate(hits[:max_passages]):
        sentences = [s.strip() for s in _SENTENCE.findall(hit.text) if len(s.strip()) > 1]
        if not sentences:
            continue
        scored = sorted(
            ((len(q & bigrams(s)) / (1 + 0.002 * len(s)), i, s) for i, s in enumerate(sentences)),
            key=lambda t: -t[0],
        )
        best_score = scored[0][0]
        if rank > 0 and best_score < 2:  # a second passage only when it clearly adds something
            break
        picked = []
        for score, i, s in scored:
            if score <= 0 and picked:
                break
            if len(s) > budget and picked:
                continue
            picked.append((i, s[: max(budget, 40)]))
            budget -= len(s)
            if budget <= 40 or len(picked) >= 3:
                break
        for i, s in sorted(picked):
            chosen.append((rank, i, s))
        used.append(hit)
        if budget <= 40:
            break
    text = _join([s for _, _, s in sorted(chosen)])
    citations = []
    seen = set()
    for hit in used:
        key = (hit.source, hit.section)
        if key not in seen:
            seen.add(key)
            citations.append(Citation(hit.title, hit.section, hit.date, hit.source))
    return Answer(text, citations)


def _join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        if out and not out.endswith(("。", "！", "？", "；", "\n")):
            out += "；"
        out += s
    return out
