"""The answer log: each question with what it got (the documents cited, or "not covered") and the 👍/👎 on it.

Kept so that the district can see which questions went unanswered, which policies
are missing and which answers residents found wrong. The question is stored masked
(phone and ID numbers), the resident only as a hash of channel and id (so that only
the asker can vote, and nobody reading the log learns who asked), and everything is
erased after the tickets' retention period by the deadline watch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.core.district_time import DISTRICT_ZONE
from bot.core.privacy import mask
from bot.storage.db import Base


class AnswerLogRow(Base):
    __tablename__ = "answer_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    asker: Mapped[str] = mapped_column(String(64))  # sha256 of channel:user_id, never the id itself
    question: Mapped[str] = mapped_column(Text)
    sources: Mapped[list] = mapped_column(JSON, default=list)  # titles cited; [] = not covered
    covered: Mapped[bool] = mapped_column(Boolean, default=True)  # sources != []: the queue is filtered in SQL
    vote: Mapped[str | None] = mapped_column(String(8), nullable=True)  # up | down
    reason: Mapped[str] = mapped_column(String(100), default="")
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass
class QaFigures:
    questions: int = 0
    not_covered: int = 0
    voted: int = 0
    down: int = 0
    curated: int = 0  # answered by an admin's curated answer
    by_week: dict = None

    def __post_init__(self):
        self.by_week = self.by_week if self.by_week is not None else {}


@dataclass(frozen=True)
class LoggedAnswer:
    id: int
    at: datetime
    channel: str
    question: str
    sources: list[str]
    vote: str | None
    reason: str
    handled: bool


class SqlAnswerLog:
    """Implements core.ports.AnswerLog, and the queries of the console's 问答记录 page."""

    MAX_QUESTION = 500

    def __init__(self, sessions: sessionmaker[Session], keep: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._sessions = sessions
        self.keep = keep
        self.clock = clock

    def record(self, channel: str, user_id: str, question: str, sources: list[str]) -> int:
        row = AnswerLogRow(at=self.clock(), channel=channel[:16], asker=_asker(channel, user_id),
                           question=mask(question.strip())[: self.MAX_QUESTION], sources=list(dict.fromkeys(sources)),
                           covered=bool(sources))
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            return row.id

    def vote(self, entry_id: int, channel: str, user_id: str, vote: str, reason: str = "") -> bool:
        if vote not in ("up", "down"):
            return False
        values = {"vote": vote, "reason": reason[:100]} if reason or vote == "up" else {"vote": vote}
        with self._sessions.begin() as session:
            done = session.execute(update(AnswerLogRow).where(AnswerLogRow.id == entry_id,
                                                              AnswerLogRow.asker == _asker(channel, user_id))
                                   .values(**values))
            return done.rowcount == 1

    def mark_handled(self, entry_id: int) -> bool:
        with self._sessions.begin() as session:
            done = session.execute(update(AnswerLogRow).where(AnswerLogRow.id == entry_id,
                                                              AnswerLogRow.handled_at.is_(None))
                                   .values(handled_at=self.clock()))
            return done.rowcount == 1

    def recent(self, kind: str = "all", source: str = "", since: datetime | None = None,
               limit: int = 200) -> list[LoggedAnswer]:
        """Newest first. kind: all | not_covered | down | queue (not covered or 👎, not yet handled)."""
        query = select(AnswerLogRow).where(*self._kind(kind)).order_by(AnswerLogRow.id.desc())
        if since is not None:
            query = query.where(AnswerLogRow.at >= since)
        if not source:
            return self._rows(query.limit(limit))
        # the titles are JSON: matched here, over every row the other filters let through
        return [r for r in self._rows(query) if any(source in s for s in r.sources)][:limit]

    @staticmethod
    def _kind(kind: str) -> list:
        if kind == "not_covered":
            return [AnswerLogRow.covered.is_(False)]
        if kind == "down":
            return [AnswerLogRow.vote == "down"]
        if kind == "queue":
            return [or_(AnswerLogRow.covered.is_(False), AnswerLogRow.vote == "down"),
                    AnswerLogRow.handled_at.is_(None)]
        return []

    def top_sources(self, limit: int = 10) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for row in self._rows(select(AnswerLogRow).where(AnswerLogRow.at >= self.clock() - timedelta(days=30))):
            for source in row.sources[:1]:
                counts[source] = counts.get(source, 0) + 1
        return sorted(counts.items(), key=lambda kv: -kv[1])[:limit]

    def figures(self, since: datetime | None = None) -> "QaFigures":
        """Questions per ISO week (district time), and how many were not covered, rated 👎, rated at all."""
        query = select(AnswerLogRow)
        if since is not None:
            query = query.where(AnswerLogRow.at >= since)
        out = QaFigures()
        for row in self._rows(query):
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=timezone.utc)
            year, week, _ = at.astimezone(DISTRICT_ZONE).isocalendar()
            label = f"{year}-W{week:02d}"
            out.by_week[label] = out.by_week.get(label, 0) + 1
            out.questions += 1
            out.not_covered += not row.sources
            out.voted += row.vote is not None
            out.down += row.vote == "down"
            out.curated += any(source.startswith("工作人员答复") for source in row.sources)
        return out

    def queue_size(self) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(AnswerLogRow).where(*self._kind("queue"))) or 0

    def erase_before(self, cutoff: datetime) -> int:
        with self._sessions.begin() as session:
            return session.execute(delete(AnswerLogRow).where(AnswerLogRow.at < cutoff)).rowcount or 0

    def _rows(self, query) -> list[LoggedAnswer]:
        with self._sessions() as session:
            return [LoggedAnswer(r.id, r.at, r.channel, r.question, list(r.sources or []), r.vote, r.reason,
                                 r.handled_at is not None) for r in session.scalars(query)]


def _asker(channel: str, user_id: str) -> str:
    return hashlib.sha256(f"{channel}:{user_id}".encode()).hexdigest()
