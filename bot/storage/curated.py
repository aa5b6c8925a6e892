"""Curated answers: the official answer an admin wrote to a question, given first to questions that match it.

Like an annotation reply: when the documents answer a question badly (or a 2025
amount changed in 2026), an admin writes the answer in minutes instead of editing a
document. A resident's question whose embedding is close enough to a curated
question's (``knowledge.curated_min_similarity``, measured by bench/curated.py) gets
the curated answer, cited as the staff's answer with the day it was written and what
it rests on. Each use counts a hit; an answer can be edited or retired.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import numpy as np
from sqlalchemy import DateTime, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.core.answer import asked_kind
from bot.core.ports import CuratedMatch
from bot.storage.db import Base


class CuratedAnswerRow(Base):
    __tablename__ = "curated_answer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200), default="")  # the document or rule it rests on
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    written_by: Mapped[str] = mapped_column(String(64), default="")
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Curated:
    id: int
    question: str
    answer: str
    source: str
    written_at: datetime
    retired: bool
    hits: int


class SqlCuratedAnswers:
    """Implements core.ports.CuratedAnswers, and what the console's editor needs."""

    MAX_ANSWER = 2000

    def __init__(self, sessions: sessionmaker[Session], embed: Callable[[list[str]], np.ndarray],
                 min_similarity: float, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._sessions = sessions
        self._embed = embed
        self.min_similarity = min_similarity
        self.clock = clock
        self._vectors: dict[str, np.ndarray] = {}  # question text -> its vector (the questions change rarely)
        self._lock = threading.Lock()

    # -- answering ------------------------------------------------------------------------------
    def match(self, question: str, count: bool = True) -> CuratedMatch | None:
        """count=False: a look from the console's 问答 page, which is not a resident's use."""
        # a question asking for another kind of fact (几点 vs 多少钱) is another question, however close its words
        kind = asked_kind(question)
        active = [c for c in self.all() if not c.retired and asked_kind(c.question) == kind]
        if not active or not question.strip():
            return None
        vectors = self._vectors_of([c.question for c in active])
        asked = self._embed([question])[0]
        sims = vectors @ asked
        best = int(np.argmax(sims))
        if float(sims[best]) < self.min_similarity:
            return None
        chosen = active[best]
        if count:
            with self._sessions.begin() as s:
                s.execute(update(CuratedAnswerRow).where(CuratedAnswerRow.id == chosen.id)
                          .values(hits=CuratedAnswerRow.hits + 1))
        written = chosen.written_at if chosen.written_at.tzinfo else chosen.written_at.replace(tzinfo=timezone.utc)
        return CuratedMatch(chosen.id, chosen.answer, chosen.source, written, float(sims[best]))

    def _vectors_of(self, questions: list[str]) -> np.ndarray:
        with self._lock:
            missing = [q for q in dict.fromkeys(questions) if q not in self._vectors]
            if missing:
                for q, v in zip(missing, self._embed(missing)):
                    self._vectors[q] = v
            return np.stack([self._vectors[q] for q in questions])

    # -- editing --------------------------------------------------------------------------------
    def all(self) -> list[Curated]:
        with self._sessions() as s:
            return [Curated(r.id, r.question, r.answer, r.source, r.written_at, r.retired_at is not None, r.hits)
                    for r in s.scalars(select(CuratedAnswerRow).order_by(CuratedAnswerRow.id.desc()))]

    def get(self, curated_id: int) -> Curated | None:
        with self._sessions() as s:
            r = s.get(CuratedAnswerRow, curated_id)
            return None if r is None else Curated(r.id, r.question, r.answer, r.source, r.written_at,
                                                  r.retired_at is not None, r.hits)

    def save(self, question: str, answer: str, source: str, by: str, curated_id: int | None = None) -> int:
        """Write a new curated answer, or a new text of one (its date becomes today's: the admin vouches anew)."""
        question, answer, source = question.strip()[:500], answer.strip()[: self.MAX_ANSWER], source.strip()[:200]
        if not question or not answer:
            raise ValueError("请填写问题和答复。")
        with self._sessions.begin() as s:
            if curated_id is None:
                row = CuratedAnswerRow(question=question, answer=answer, source=source, written_at=self.clock(),
                                       written_by=by[:64])
                s.add(row)
                s.flush()
                return row.id
            done = s.execute(update(CuratedAnswerRow).where(CuratedAnswerRow.id == curated_id)
                             .values(question=question, answer=answer, source=source, written_at=self.clock(),
                                     written_by=by[:64], retired_at=None))
            if done.rowcount != 1:
                raise ValueError("没有这条答复。")
            return curated_id

    def retire(self, curated_id: int) -> bool:
        with self._sessions.begin() as s:
            return s.execute(update(CuratedAnswerRow).where(CuratedAnswerRow.id == curated_id,
                                                            CuratedAnswerRow.retired_at.is_(None))
                             .values(retired_at=self.clock())).rowcount == 1
