"""Button payloads too long for Telegram's 64-byte callback_data, kept in the database by their digest.

The channel sends a digest in place of a long payload; the press may reach another replica,
or this one after a restart, so the digest is looked up here, not in one process's memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import DateTime, String, Text, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.storage.db import Base


class CallbackPayload(Base):
    __tablename__ = "callback_payload"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SqlCallbackPayloads:
    def __init__(self, sessions: sessionmaker[Session], keep: timedelta = timedelta(days=30)):
        self.sessions = sessions
        self.keep = keep

    def put(self, token: str, payload: str) -> None:
        now = datetime.now(timezone.utc)
        try:
            with self.sessions.begin() as s:
                s.add(CallbackPayload(token=token, payload=payload, created_at=now))
        except IntegrityError:  # stored before (a digest names one payload): still in use, so its age restarts
            with self.sessions.begin() as s:
                s.execute(update(CallbackPayload).where(CallbackPayload.token == token).values(created_at=now))
            return
        if hash(token) % 500 == 0:  # now and then: buttons older than `keep` are not pressed any more
            with self.sessions.begin() as s:
                s.execute(delete(CallbackPayload).where(CallbackPayload.created_at < now - self.keep))

    def get(self, token: str) -> str | None:
        with self.sessions() as s:
            row = s.get(CallbackPayload, token)
            return row.payload if row is not None else None
