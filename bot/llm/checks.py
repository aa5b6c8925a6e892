"""Checks a model's answer must pass before a resident sees it; any problem means: use the extractive answer.

The checks are deliberately strict and simple. A model may rephrase, but every
figure a resident could act on (amount, date, age, percentage, phone) must be
copied from a passage the answer cites, every citation must name a passage it
was given, and nothing of the rules or the configuration may come back out.
Chinese numerals (一二三) are not checked: models rarely invent them, and
comparing 三月十五日 with 3月15日 would need a parser worth more than it catches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

NOT_COVERED = "文件里没有写"
MAX_ANSWER_CHARS = 600

_FULL_WIDTH = str.maketrans("０１２３４５６７８９．％，：［］／", "0123456789.%,:[]/")
# [1] [1][2] [1,2] [1、2] 【1】 ［1］: the ways models write a citation
_CITATION = re.compile(r"[\[【]\s*(\d{1,2}(?:\s*[,，、;；]\s*\d{1,2})*)\s*[\]】]")
_URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#@!$&*+=%]+|"
                  r"(?<![A-Za-z0-9.\-])[A-Za-z0-9][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]+)*"
                  r"\.(?:cn|com|net|org|gov|edu|top|xyz|io)(?![A-Za-z0-9\-])(?:/[A-Za-z0-9\-._~:/?#@!$&*+=%]*)?",
                  re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# digits joined by - or spaces (022-2800-5566, 2025-03-01): compared as one digit string when long
_JOINED = re.compile(r"\d+(?:[ \-–—]\d+)+")
_LIST_MARK = re.compile(r"^\s*[（(]?\d{1,2}[)）.、](?!\d)\s*", re.MULTILINE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass(frozen=True)
class Passage:
    """One numbered passage as the model saw it."""

    id: int
    title: str
    section: str
    date: str
    text: str

    @property
    def searchable(self) -> str:
        return "\n".join((self.title, self.section, self.date, self.text))


def normalise(text: str) -> str:
    """Full-width digits and signs to ASCII, thousands separators removed (1,000元 is 1000元)."""
    return _THOUSANDS.sub("", text.translate(_FULL_WIDTH))


def strip_thinking(text: str) -> str:
    """Drop the <think>…</think> block reasoning models put before their answer."""
    return _THINK.sub("", text).strip()


def says_not_covered(answer: str) -> bool:
    """True when the answer is the refusal: 文件里没有写, bare or with a citation, not a partial answer."""
    flat = re.sub(r"[\W_]+", "", _CITATION.sub("", normalise(answer)))
    return NOT_COVERED in flat and (len(flat) <= len(NOT_COVERED) + 4 or not cited_ids(answer))


def cited_ids(answer: str) -> list[int]:
    """The passage ids an answer cites, in order of first appearance."""
    out: list[int] = []
    for m in _CITATION.finditer(normalise(answer)):
        for part in re.split(r"[,，、;；]", m.group(1)):
            value = int(part.strip())
            if value not in out:
                out.append(value)
    return out


def strip_citations(answer: str) -> str:
    """Remove the [n] markers: the core lists the sources under the answer itself."""
    text = _CITATION.sub("", normalise_brackets(answer))
    text = re.sub(r"[ \t]+([，。；：！？、,.;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def normalise_brackets(text: str) -> str:
    return text.replace("［", "[").replace("］", "]")


def urls(text: str) -> list[str]:
    return [m.group(0).rstrip(".,;:") for m in _URL.finditer(text.translate(_FULL_WIDTH))]


def unsupported_urls(answer: str, passages: Sequence[Passage]) -> list[str]:
    """URLs and web addresses in the answer that no passage contains."""
    haystack = normalise("\n".join(p.searchable for p in passages)).lower()
    return [u for u in urls(answer) if u.lower() not in haystack]


def unsupported_numbers(answer: str, passages: Sequence[Passage]) -> list[str]:
    """Numbers in the answer that do not occur in the given passages' text."""
    body = normalise(_CITATION.sub(" ", normalise(answer)))
    for url in urls(body):
        body = body.replace(url, " ")  # addresses are checked whole by unsupported_urls
    body = _LIST_MARK.sub("", body)
    source = normalise("\n".join(p.searchable for p in passages))
    known = {_canonical(n) for n in _NUMBER.findall(source)}
    known_runs = {re.sub(r"\D", "", r) for r in _JOINED.findall(source)} | set(_NUMBER.findall(source))
    missing: list[str] = []
    for run in _JOINED.findall(body):
        digits = re.sub(r"\D", "", run)
        if len(digits) >= 7:  # a phone number: 022-2800-5566 must match whole, not part by part
            if digits not in known_runs:
                missing.append(run)
            body = body.replace(run, " ", 1)
    for number in _NUMBER.findall(body):
        if _canonical(number) not in known and number not in known_runs:
            missing.append(number)
    return missing


def leaks(answer: str, secrets: Iterable[str], window: int = 12) -> bool:
    """True when the answer repeats a stretch of `window` characters of any secret (rules, API key, URL)."""
    flat = re.sub(r"\s+", "", answer)
    for secret in secrets:
        s = re.sub(r"\s+", "", secret or "")
        if not s:
            continue
        size = min(window, len(s))
        if any(s[i:i + size] in flat for i in range(len(s) - size + 1)):
            return True
    return False


def problems(answer: str, passages: Sequence[Passage], secrets: Iterable[str] = ()) -> list[str]:
    """Everything wrong with an answer; empty when it may be shown to the resident."""
    text = answer.strip()
    if not text:
        return ["empty answer"]
    found: list[str] = []
    if len(text) > MAX_ANSWER_CHARS:
        found.append(f"too long ({len(text)} chars)")
    by_id = {p.id: p for p in passages}
    ids = cited_ids(text)
    if not ids:
        found.append("no citation")
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        found.append(f"cites unknown passages {unknown}")
    cited = [by_id[i] for i in ids if i in by_id]
    numbers = unsupported_numbers(text, cited)
    if numbers:
        found.append(f"numbers not in the cited passages: {numbers[:5]}")
    links = unsupported_urls(text, passages)
    if links:
        found.append(f"addresses not in the passages: {links[:3]}")
    if re.search(r"[<＜]\s*/?\s*(资料|问题|上一个问题|话题|追问)", text):
        found.append("repeats the prompt's markup")
    if leaks(text, secrets):
        found.append("repeats the rules or the configuration")
    return found


def _canonical(number: str) -> str:
    """One spelling per value: 03 is 3, 1.50 is 1.5, 2.0 is 2."""
    whole, _, fraction = number.partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole
