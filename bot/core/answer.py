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

_SENTENCE = re.compile("[^。！？!?；;\n]+(?:[。！？!?；;]+[”’\"」』）)]*)?")  # closing quotes stay with their sentence
_PUNCT = re.compile(r"[\s，。！？、；：“”‘’（）()《》\-—…·,.!?;:\"'<>\[\]{}#*|>]+")
_FINISH_UP_TO = 1.5  # a run that stops mid-paragraph may finish it, up to this many times max_chars
_FILLER = set("的了吗呢吧啊呀么是在有和与我你他她它这那哪什怎请问一下能可以")


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation]
    matched: bool = True  # False: no sentence meets the question's words, the passage's opening stands in


_NUMERALS = str.maketrans({"一": "1", "二": "2", "两": "2", "俩": "2", "三": "3", "四": "4", "五": "5",
                           "六": "6", "七": "7", "八": "8", "九": "9"})
_COUNTED = re.compile(r"(?<![0-9一二两三四五六七八九十])([一二两俩三四五六七八九])(?=[个口名位户人岁级次天年月])")
_PEOPLE = re.compile(r"([0-9])\s*[个口名位]\s*(?=人)")


def _numbers(text: str) -> str:
    """Counts written as words or with a measure word match the documents' digits: 两口人 -> 2人, 三级 -> 3级;
    the everyday word for a meal matches the documents' (午饭 -> 午餐)."""
    text = _COUNTED.sub(lambda m: m.group(1).translate(_NUMERALS), text)
    return _PEOPLE.sub(r"\1", text).replace("饭", "餐")


# Disclaimers and notices that say nothing about the question are never an answer.
_BOILERPLATE = re.compile(r"本文件为示例|示例内容|示例值|供系统演示|不代表正式政策|仅供参考|以正式文件为准|版权所有")

# What kind of fact a question asks for, and how that fact looks in a sentence: a sentence holding a fact
# of the asked kind weighs a quarter more ("几点开门" -> "17:00"; "补多少" -> "900元").
_ANSWER_TYPES = [
    (re.compile(r"几点|什么时[间候]开|开门|关门|营业|上班时间|办公时间|开放时间|几点到几点|"
                r"(周末|礼拜|星期|周[六日天]).{0,12}(上班|值班|开门|办公|有人)"),
     re.compile(r"\d{1,2}[:：]\d{2}|\d{1,2}点|[上下]午|全天")),
    (re.compile(r"多少钱|[补给领发交收花赔付退报费]多少|多少元|多少块|几块|便宜|收费|费用|价格|标准是多少|能补|金额"),
     re.compile(r"\d+(\.\d+)?\s*(元|块|万元)|免费|不收")),
    (re.compile(r"多久|多长时间|几天|多少天|几个工作日|期限|时限|多快"),
     re.compile(r"\d+\s*(个)?(工作日|天|日|小时|个月|周)|[一二三四五六七八九十]+(个)?(工作日|天|日|小时|个月)")),
    (re.compile(r"电话|热线|怎么联系|联系方式"), re.compile(r"\d{3,4}-?\d{4}-?\d{3,4}|\d{5,}")),
    (re.compile(r"在哪|地址|什么地方|哪里办|去哪"), re.compile(r"[路街道里号楼层]|中心|服务站|大厅")),
]


ANSWER_TYPE_BONUS = 1.1


def _answer_type(question: str):
    for asks, looks in _ANSWER_TYPES:
        if asks.search(question):
            return looks
    return None


def asked_kind(question: str) -> int | None:
    """Which kind of fact a question asks for (hours, amount, duration, phone, place), or None."""
    return next((i for i, (asks, _) in enumerate(_ANSWER_TYPES) if asks.search(question)), None)


def bigrams(text: str) -> set[str]:
    clean = _PUNCT.sub(" ", _numbers(text).lower())
    grams = set()
    for part in clean.split():
        if len(part) == 1 and part not in _FILLER:
            grams.add(part)
        grams.update(part[i : i + 2] for i in range(len(part) - 1))
    return {g for g in grams if not all(ch in _FILLER for ch in g)}


def compose(question: str, hits: Sequence[Hit], max_chars: int = 380, passages: int = 3,
            ranked: bool = True) -> Answer:
    """The run of consecutive sentences, within one of the best passages, that best answers the question.

    A run reads as the document does (a list stays under its heading, an answer
    stays after the sentence that repeats the question), which cherry-picked
    sentences do not; measured on 420 real questions (bench/answers.py) it also
    contains the official answer far more often.

    Neighbouring chunks of one document among the hits (they repeat a sentence
    or two) are first joined back into one passage, so that an answer that goes
    on after the end of a chunk is not cut there.

    A query bigram that occurs in most candidate sentences (the topic, e.g. 老人家食堂)
    says little about which sentence answers; rare ones (材料) say much, so each is
    weighted by its inverse frequency among the candidates, and the words of the
    document's title weigh nothing. A sentence's weight grows with the square root
    of its length, not linearly, so that a long preamble that happens to repeat
    many words does not outweigh the short sentence that names what is asked; a
    sentence that opens a point (三是…, （二）…, 2.…, a short line ending in ？ or ：)
    counts half again, as what answers it follows. A sentence under a matching
    heading (三、办卡需要带什么) inherits half of the heading's weight. Once chosen,
    a run that stops in the middle of a paragraph finishes it, up to 1.5 × max_chars.

    ranked=False: the hits' order says nothing of which answers best (the passages of
    one document found by a follow-up with the document's title), so a later passage
    is not discounted.
    """
    if not hits:
        return Answer("", [])
    q = bigrams(question)
    wanted = _answer_type(question)
    groups = _stitch(list(hits))[:passages]
    pool = [(rank, [(s, h) for s, h in _sentences_with_headings(_joined(group)) if not _BOILERPLATE.search(s.text)])
            for rank, group in enumerate(groups)]
    seen = [(bigrams(s.text) & q, bigrams(h) & q) for _, items in pool for s, h in items]
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
            own, head = bigrams(sentence.text) & q, bigrams(heading) & q
            score = sum(weight[g] for g in own) + 0.5 * sum(weight[g] for g in head - own)
            if _OPENS_A_POINT.match(sentence.text):
                score *= 1.5
            if wanted is not None and score > 0 and wanted.search(sentence.text):
                score *= ANSWER_TYPE_BONUS
            scores.append(score / math.sqrt(max(1.0, len(sentence.text) / 40)))
        for first in range(len(items)):
            if scores[first] <= 0:
                continue  # a run starts where the question is met
            end, length, run, listing = first, 0, [], False
            while end < len(items) and (end == first or length + len(items[end][0].text) <= max_chars):
                if listing and items[end][0].heading:
                    listing = False  # the next heading ends the list
                if end - first >= 2 and run[-1] <= 0 and run[-2] <= 0 and scores[end] <= 0 and not listing:
                    break  # the run has moved on to something else
                listing = listing or items[end][0].text.endswith(("：", ":"))  # "下列条件：" keeps the whole list
                length += len(items[end][0].text)
                run.append(scores[end])
                end += 1
            # the best sentence decides; what follows it adds a little (repeated words must not win),
            # what comes before it adds nothing (it only spends the length)
            top = run.index(max(run))
            score = (run[top] + 0.25 * sum(run[top + 1:])) * ((1.0, 0.8, 0.6)[min(rank, 2)] if ranked else 1.0)
            if best is None or score > best[0]:
                best = (score, rank, first, end)
    if best is None and wanted is not None:  # no word meets the question, but a fact of the asked kind may
        best = _first_of_kind(pool, wanted, max_chars)
    if best is None:  # the question's words are nowhere: the passage's opening is the safest summary
        opening = _render([s for s, _ in pool[0][1]]) if pool and pool[0][1] else hits[0].text
        return Answer(opening[:max_chars], [_cite(hits[0])], matched=False)
    _, rank, first, end = best
    items = pool[rank][1]
    length = sum(len(s.text) for s, _ in items[first:end])
    while (end < len(items) and items[end][0].line == items[end - 1][0].line and items[end][0].gap == ""
           and length + len(items[end][0].text) <= max_chars * _FINISH_UP_TO):
        length += len(items[end][0].text)  # the paragraph goes on (no line break, no space): finish it
        end += 1
    chosen = [sentence for sentence, _ in items[first:end]]
    while len(chosen) > 1 and chosen[-1].heading:
        chosen.pop()  # a heading at the end introduces nothing that follows
    text = _render(chosen)
    if len(text) > max_chars * 2:  # one enormous sentence
        text = text[: max_chars * 2] + "……"
    group = groups[rank]
    cited = next((hit for hit in group if chosen[0].text in hit.text), group[0])
    return Answer(text, [_cite(cited)])


# the opening of a point: 三是…, 二、…, （二）…, 2.…, 第五条…, or a short sentence ending in ？ or ：
_OPENS_A_POINT = re.compile(r"^([一二三四五六七八九十]+[、是]|[（(][一二三四五六七八九十0-9]+[）)]|[0-9]+[、.．]"
                            r"|第[一二三四五六七八九十百0-9]+[条章节])|^.{2,24}[。：:？?]$")


def _first_of_kind(pool, wanted, max_chars: int) -> tuple[float, int, int, int] | None:
    """The run from the first sentence, in rank order, that holds a fact of the asked kind ("怎么收费" -> "2元")."""
    for rank, items in pool:
        for first, (sentence, _) in enumerate(items):
            if wanted.search(sentence.text):
                start = first - 1 if first and items[first - 1][0].text.endswith(("：", ":")) else first
                end, length = start, 0
                while end < len(items) and (end == start or length + len(items[end][0].text) <= max_chars):
                    if end > first and items[end][0].heading:
                        break  # the section of the fact ends here
                    length += len(items[end][0].text)
                    end += 1
                return 0.0, rank, start, end
    return None


def _stitch(hits: list[Hit]) -> list[list[Hit]]:
    """The hits, with neighbouring chunks of one document joined in reading order; best-ranked first."""
    groups = [[hit] for hit in hits]
    joined = True
    while joined:
        joined = False
        for i, j in ((i, j) for i in range(len(groups)) for j in range(len(groups)) if i != j):
            a, b = groups[i], groups[j]
            if a[-1].source == b[0].source and _overlap(a[-1].text, b[0].text):
                groups[min(i, j)] = a + b
                del groups[max(i, j)]
                joined = True
                break
    return groups


def _overlap(a: str, b: str) -> int:
    """How many characters b repeats of a's end (neighbouring chunks share whole sentences); 0 if none."""
    for k in range(min(len(a), len(b), 200), 9, -1):
        if a.endswith(b[:k]):
            return k
    return 0


def _joined(group: list[Hit]) -> str:
    text = group[0].text
    for hit in group[1:]:
        text += hit.text[_overlap(text, hit.text):]
    return text


def _cite(hit: Hit) -> Citation:
    return Citation(hit.title, hit.section, hit.date, hit.source)


def _sentences_with_headings(text: str) -> list[tuple[_Sentence, str]]:
    """Each sentence of a passage with the heading line it stands under ("" before any)."""
    out, heading = [], ""
    for sentence in _split(text):
        if sentence.heading:
            heading = sentence.text
        out.append((sentence, heading))
    return out


def _is_heading(sentence: str) -> bool:
    return (len(sentence) <= 24 and "，" not in sentence and "：" not in sentence
            and not sentence.endswith(("。", "；", "！", "？", ";", "!", "?")))


@dataclass(frozen=True)
class _Sentence:
    text: str
    line: int  # which line of the passage it comes from
    gap: str | None  # the document's text between it and the previous sentence of its line (None: first)
    heading: bool  # a short line of its own, e.g. 三、办卡需要带什么


def _split(text: str) -> list[_Sentence]:
    """Split a passage into clean sentences: markdown list marks and table pipes removed."""
    out = []
    lines = text.split("\n")
    for number, line in enumerate(lines):
        line = line.strip()
        if not line or set(line) <= set("|-: "):
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|") if c.strip()]
            line = "：".join(cells[:1]) + ("，".join([""] + cells[1:]) if len(cells) > 1 else "")
            line = line.replace("：，", "：")
            following = lines[number + 1].strip() if number + 1 < len(lines) else ""
            if following and set(following) <= set("|-: "):
                line += "："  # a table's header row leads into its rows, as "下列条件：" leads into a list
        line = re.sub(r"^([-*+>]\s*|\d+[.、]\s+)", "", line)
        found, end = [], None
        for match in _SENTENCE.finditer(line):
            sentence = match.group().strip()
            if len(sentence) <= 1:
                continue
            start = match.start() + match.group().index(sentence)
            found.append((sentence, None if end is None else line[end:start]))
            end = start + len(sentence)
        for sentence, gap in found:
            out.append(_Sentence(sentence, number, gap, len(found) == 1 and _is_heading(sentence)))
    return out


_ENDS = ("。", "！", "？", "；", "：", "!", "?", ";", ":", "\n")


def _render(sentences: list[_Sentence]) -> str:
    """The sentences as the document writes them; a heading starts its own line and introduces what follows.

    Sentences of one line keep the document's own spacing between them, so that
    what the resident reads is a faithful copy; sentences from different lines
    are joined into one paragraph.
    """
    out, previous = "", None
    for s in sentences:
        if s.heading:
            out += ("\n" if out else "") + s.text + "："
        elif previous is not None and s.line == previous.line and s.gap is not None and not s.gap.strip():
            out += s.gap + s.text  # as written
        elif out and not out.endswith(_ENDS):
            out += "；" + s.text
        else:
            out += s.text
        previous = s
    return out.strip()
