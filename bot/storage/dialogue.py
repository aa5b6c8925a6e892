"""Dialogue state persisted in the database, keyed by (channel, user id).

A restart, or a second process behind a load balancer, continues the same
conversation because nothing lives only in memory.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.core.dialogue import DialogueState
from bot.storage.db import Base


class DialogueRow(Base):
    __tablename__ = "dialogue_state"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlDialogueStore:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def load(self, channel: str, user_id: str) -> DialogueState:
        with self._sessions() as session:
            row = session.get(DialogueRow, (channel, user_id))
            return DialogueState.from_json(channel, user_id, row.state if row else None)

    def save(self, state: DialogueState) -> None:
        with self._sessions.begin() as session:
            row = session.get(DialogueRow, (state.channel, state.user_id))
            now = datetime.now(timezone.utc)
            if row is None:
                session.add(DialogueRow(channel=state.channel, user_id=state.user_id, state=state.to_json(),
                                        updated_at=now))
            else:
                row.state = state.to_json()
                row.updated_at = now

    def users(self, channel: str) -> list[str]:
        with self._sessions() as session:
            return list(session.scalars(select(DialogueRow.user_id).where(DialogueRow.channel == channel)))
