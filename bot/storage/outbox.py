"""A durable outbox: messages to people other than the current sender (workers, residents).

The core's Notifier writes a row; each channel delivers the rows of its own
channel and marks them sent. A crash between the two re-sends at most one
message rather than losing it, and any process may deliver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import JSON, DateTime, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.core.messages import Button, Citation, Reply
from bot.storage.db import Base


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # a delivering process's lease on the row: another replica skips it until then (claim())
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class OutgoingMessage:
    id: int
    channel: str
    user_id: str
    reply: Reply


def reply_from_dict(data: dict) -> Reply:
    return Reply(
        text=data.get("text", ""),
        buttons=[Button(b["label"], b["payload"]) for b in data.get("buttons", [])],
        citations=[Citation(c["title"], c["section"], c["date"], c["source"]) for c in data.get("citations", [])],
        intent=data.get("intent", ""),
        ticket_id=data.get("ticket_id"),
    )


class SqlOutbox:
    """Implements core.ports.Notifier by storing; channels call pending() and mark_sent()."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def notify(self, channel: str, user_id: str, reply: Reply) -> None:
        with self._sessions.begin() as session:
            self.notify_in(session, channel, user_id, reply)

    @staticmethod
    def notify_in(session: Session, channel: str, user_id: str, reply: Reply) -> None:
        """Queue a message in the caller's transaction: it exists exactly if that transaction commits."""
        session.add(OutboxRow(channel=channel, user_id=user_id, payload=reply.to_dict(),
                              created_at=datetime.now(timezone.utc)))

    def pending(self, channel: str, user_id: str | None = None, limit: int = 100) -> list[OutgoingMessage]:
        with self._sessions() as session:
            query = select(OutboxRow).where(OutboxRow.channel == channel, OutboxRow.sent_at.is_(None))
            if user_id is not None:
                query = query.where(OutboxRow.user_id == user_id)
            rows = session.scalars(query.order_by(OutboxRow.id).limit(limit)).all()
            return [OutgoingMessage(r.id, r.channel, r.user_id, reply_from_dict(r.payload)) for r in rows]

    def claim(self, channel: str, limit: int = 20, lease_seconds: float = 60.0) -> list[OutgoingMessage]:
        """Pending rows this process may deliver now, leased to it for lease_seconds; none another one holds.

        With several replicas each delivery loop claims its own rows: on PostgreSQL the candidates are
        read FOR UPDATE SKIP LOCKED (two replicas never wait on or take the same rows); on any database the
        claim itself is a conditional UPDATE, so a row is leased to one process at a time. A process that
        dies with a lease leaves the row to the others when the lease ends: a message is late, never lost.
        """
        now = datetime.now(timezone.utc)
        until = now + timedelta(seconds=lease_seconds)
        free = (OutboxRow.claimed_until.is_(None)) | (OutboxRow.claimed_until < now)
        with self._sessions.begin() as session:
            ids = list(session.scalars(
                select(OutboxRow.id).where(OutboxRow.channel == channel, OutboxRow.sent_at.is_(None), free)
                .order_by(OutboxRow.id).limit(limit).with_for_update(skip_locked=True)))
            if not ids:
                return []
            session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.sent_at.is_(None), free)
                            .values(claimed_until=until))
            rows = session.scalars(select(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.claimed_until == until)
                                   .order_by(OutboxRow.id)).all()
            return [OutgoingMessage(r.id, r.channel, r.user_id, reply_from_dict(r.payload)) for r in rows]

    def mark_sent(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._sessions.begin() as session:
            session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(sent_at=datetime.now(timezone.utc)))

    def mark_failed(self, message_id: int) -> None:
        with self._sessions.begin() as session:
            session.execute(update(OutboxRow).where(OutboxRow.id == message_id)
                            .values(attempts=OutboxRow.attempts + 1))

    def release(self, ids: list[int]) -> None:
        """Give claimed rows back unsent (a failed send, or the round stopped early): any process may retry them."""
        if not ids:
            return
        with self._sessions.begin() as session:
            session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.sent_at.is_(None))
                            .values(claimed_until=None))
