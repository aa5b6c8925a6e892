"""Chinese-aware chunking that keeps the heading path of every chunk.

Headings come from markdown ``#`` lines and from the structure of Chinese
official documents: 第X编 / 第X章 / 第X节, articles 第X条, and short
``一、`` / ``（一）`` lines. A chunk's ``section`` is its heading path, e.g.
``第三章 法律责任 > 第十二条``. Chunks are cut at sentence ends so that each
fits the embedding model's input (m3e: 512 tokens, about one per character).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHUNKER_VERSION = 3  # bump when the splitting (or what is read with it) changes: ingest re-reads every file
_NUM = "[一二三四五六七八九十百千零〇两0-9]+"
# (pattern, level): larger level = deeper. Markdown headings use 1-6.
_CN_HEADINGS = [
    (re.compile(rf"^第{_NUM}编\s*\S*"), 10),
    (re.compile(rf"^第{_NUM}章\s*\S*"), 11),
    (re.compile(rf"^第{_NUM}节\s*\S*"), 12),
    (re.compile(rf"^{_NUM[:-1]}+、\s*\S*"), 13),
    (re.compile(rf"^[（(]{_NUM}[）)]\s*\S*"), 14),
]
_ARTICLE = re.compile(rf"^(第{_NUM}条)(?:\s|$|之)")
_ARTICLE_LEVEL = 15
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|\n")
_SHORT_HEADING = 40


@dataclass(frozen=True)
class Chunk:
    text: str
    section: str
    ordinal: int


@dataclass
class _Section:
    path: tuple[str, ...]
    lines: list[str]


def split_document(text: str, chunk_chars: int = 420, overlap: int = 60, title: str = "") -> list[Chunk]:
    """Split a document's text into chunks that carry their heading path (without the title)."""
    sections = _sections(text)
    pieces: list[tuple[tuple[str, ...], str]] = []
    for section in sections:
        if title and section.path and section.path[0] == title:
            section.path = section.path[1:]  # the title is cited separately
        body = "\n".join(line for line in section.lines if line.strip()).strip()
        if body:
            pieces.extend((section.path, part) for part in _split_long(body, chunk_chars, overlap))
    merged = _merge_small(pieces, chunk_chars)
    return [Chunk(text=body, section=label, ordinal=i) for i, (label, body) in enumerate(merged)]


def _heading(line: str) -> tuple[int, str] | None:
    """Return (level, label) when the line opens a section."""
    stripped = line.strip()
    if stripped.startswith("#"):
        hashes = len(stripped) - len(stripped.lstrip("#"))
        label = stripped[hashes:].strip()
        if 1 <= hashes <= 6 and label:
            return hashes, label
        return None
    article = _ARTICLE.match(stripped)
    if article:
        return _ARTICLE_LEVEL, article.group(1)
    if len(stripped) > _SHORT_HEADING or stripped.endswith(("。", "；", "：", ":", "，")):
        return None  # a long line starting with 一、 is a list item, not a heading
    for pattern, level in _CN_HEADINGS:
        if pattern.match(stripped):
            return level, stripped
    return None


def _sections(text: str) -> list[_Section]:
    stack: list[tuple[int, str]] = []
    current = _Section(path=(), lines=[])
    sections = [current]
    for line in text.split("\n"):
        found = _heading(line)
        if found is None:
            current.lines.append(line)
            continue
        level, label = found
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, label))
        current = _Section(path=tuple(lbl for _, lbl in stack), lines=[])
        sections.append(current)
        if level == _ARTICLE_LEVEL:
            current.lines.append(line.strip())  # the article's own text starts on its line
    return sections


def _split_long(body: str, chunk_chars: int, overlap: int) -> list[str]:
    if len(body) <= chunk_chars:
        return [body]
    sentences = [s for s in _SENTENCE_END.split(body) if s and s.strip()]
    parts: list[str] = []
    current = ""
    for sentence in sentences:
        while len(sentence) > chunk_chars:  # one enormous sentence: hard cut
            head, sentence = sentence[:chunk_chars], sentence[chunk_chars:]
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        if current and len(current) + len(sentence) > chunk_chars:
            parts.append(current)
            # the repeated tail must leave room for the sentence, or the chunk outgrows chunk_chars
            current = _tail(current, min(overlap, chunk_chars - len(sentence)))
        current += sentence
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _tail(text: str, overlap: int) -> str:
    """The last whole sentences of text, up to `overlap` characters, to repeat in the next chunk."""
    if overlap <= 0:
        return ""
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    tail = ""
    for sentence in reversed(sentences):
        if len(tail) + len(sentence) > overlap:
            break
        tail = sentence + tail
    return tail


def _merge_small(pieces: list[tuple[tuple[str, ...], str]], chunk_chars: int) -> list[tuple[str, str]]:
    """Join neighbouring short sections of the same parent (e.g. short articles) into one chunk."""
    merged: list[tuple[str, str]] = []
    group_path: tuple[str, ...] | None = None
    group_last: tuple[str, ...] | None = None
    group_text = ""
    for path, body in pieces:
        # a preamble (empty path) has no siblings: merging it would erase the next section's heading
        same_parent = bool(group_path) and path[:-1] == group_path[:-1] and path != group_last
        if group_path is not None and same_parent:
            # the group's first section now shares its label: keep its heading (and count it)
            head = _with_heading(group_path, group_text) if group_last == group_path else group_text
            candidate = head + "\n" + _with_heading(path, body)
            if len(candidate) <= chunk_chars:
                group_text, group_last = candidate, path
                continue
        if group_path is not None:
            merged.append((_label(group_path, group_last), group_text))
        group_path, group_last, group_text = path, path, body
    if group_path is not None:
        merged.append((_label(group_path, group_last), group_text))
    return merged


def _with_heading(path: tuple[str, ...], body: str) -> str:
    """Keep a merged section's own heading in the text, so that its content stays findable."""
    if not path or body.startswith(path[-1]):
        return body
    return f"{path[-1]}\n{body}"


def _label(first: tuple[str, ...], last: tuple[str, ...] | None) -> str:
    if last is None or last == first or not first:
        return " > ".join(first)
    return " > ".join(first[:-1] + (f"{first[-1]}至{last[-1]}",))
