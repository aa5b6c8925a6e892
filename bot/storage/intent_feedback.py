"""Residents' own choices of question or request, kept as labelled examples for a reviewer.

When a resident answers the unsure buttons or undoes the bot's guess, the message
and the chosen meaning are what a labeller would have written. They are stored
with phone and ID numbers masked, erased with tickets' personal data (the deadline
watch calls ``erase_before`` with ``tickets.retention_days``), and
exported by ``python -m bot admin intent-examples`` as JSONL in the format of
``[intents] extra_examples``: a reviewer reads them, drops what is wrong, and
adds the file. They are never trained on unread: a resident can press anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from sqlalchemy import DateTime, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.core.privacy import mask
from bot.storage.db import Base

LABELS = ("question", "request")


class IntentFeedbackRow(Base):
    __tablename__ = "intent_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(16))
    how: Mapped[str] = mapped_column(String(32))


class SqlIntentFeedback:
    """Implements core.ports.IntentFeedback."""

    MAX_TEXT = 1000  # the intake keeps the same much of a description

    def __init__(self, sessions: sessionmaker[Session], keep: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._sessions = sessions
        self.keep = keep
        self.clock = clock

    def record(self, channel: str, text: str, label: str, how: str) -> None:
        if label not in LABELS or not text.strip():
            return
        with self._sessions.begin() as session:
            session.add(IntentFeedbackRow(created_at=self.clock(), channel=channel[:16],
                                          text=mask(text.strip())[:self.MAX_TEXT], label=label, how=how[:32]))

    def erase_before(self, cutoff: datetime) -> int:
        """Delete choices made before cutoff; the deadline watch calls it with the tickets' retention period."""
        with self._sessions.begin() as session:
            result = session.execute(delete(IntentFeedbackRow).where(IntentFeedbackRow.created_at < _utc(cutoff)))
            return result.rowcount or 0

    def examples(self, since: datetime | None = None) -> Iterator[dict]:
        """Oldest first: {text, label, how, channel, created (UTC)}; nothing older than the retention period."""
        oldest = self.clock() - self.keep
        if since is not None:
            oldest = max(oldest, since)
        query = (select(IntentFeedbackRow).where(IntentFeedbackRow.created_at >= _utc(oldest))
                 .order_by(IntentFeedbackRow.id))
        with self._sessions() as session:
            for row in session.scalars(query):
                yield {"text": row.text, "label": row.label, "how": row.how, "channel": row.channel,
                       "created": _utc(row.created_at).isoformat(timespec="seconds")}


def _utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back (and compares them) without an offset."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
