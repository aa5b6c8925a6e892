"""WeChat state every replica behind one callback URL must share: the numbered buttons a resident was last
shown and the message API's access token.

WeChat resends a message it got no answer to within five seconds, maybe to another
replica; a message is answered by the replica that claims its key first
(storage/update_claims.py, shared with Telegram's webhook). A "1" sent after a replica
showed numbered choices may reach another one: the choices live in the database too.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from sqlalchemy import JSON, DateTime, Float, String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.core.messages import Button, button_chosen
from bot.storage.db import Base


class WeChatButtons(Base):
    __tablename__ = "wechat_buttons"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    buttons: Mapped[dict] = mapped_column(JSON, default=dict)  # number -> [label, payload]
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlButtonMemory:
    """The numbered buttons last shown to each user, in the database (the same interface as ButtonMemory)."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 6 * 3600,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.sessions, self.ttl, self.clock = sessions, ttl, clock

    def remember(self, user_id: str, numbered: Sequence[tuple[str, Button]]) -> None:
        with self.sessions.begin() as s:
            row = s.get(WeChatButtons, user_id)
            if not numbered:
                if row is not None:
                    s.delete(row)
                return
            values = {key: [b.label, b.payload] for key, b in numbered}
            expires = self.clock() + timedelta(seconds=self.ttl)
            if row is None:
                s.add(WeChatButtons(user_id=user_id, buttons=values, expires_at=expires))
            else:
                row.buttons, row.expires_at = values, expires

    def press(self, user_id: str, text: str) -> Button | None:
        with self.sessions() as s:
            row = s.get(WeChatButtons, user_id)
            if row is None:
                return None
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=timezone.utc)
            if self.clock() > expires:
                return None
            buttons = {k: Button(label, payload) for k, (label, payload) in row.buttons.items()}
        return button_chosen(buttons, unicodedata.normalize("NFKC", text).strip())


class WeChatToken(Base):
    __tablename__ = "wechat_token"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(1024), default="")
    refresh_at: Mapped[float] = mapped_column(Float, default=0.0)  # epoch seconds: replace it from then on
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)  # a replica is fetching a new one until then


class SqlTokenStore:
    """The message API's access token, one for every replica, and a lease on fetching the next one.

    Each token WeChat hands out retires the previous one within minutes, so replicas that refresh
    on their own retire each other's. Here one replica at a time holds the lease (a conditional
    UPDATE: the database decides) and fetches; the others wait for the row to show the new token.
    A lease its holder never gives back (killed mid-fetch) ends by itself.
    """

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def read(self, app_id: str) -> tuple[str, float]:
        with self.sessions() as s:
            row = s.get(WeChatToken, app_id)
            return (row.token, row.refresh_at) if row is not None else ("", 0.0)

    def lease(self, app_id: str, now: float, seconds: float, seen: str = "") -> bool:
        """True for the one caller that may fetch a token now. `seen`: the token the caller read and found
        old; if another replica stored a new one since, no lease (read it again instead of fetching)."""
        try:
            with self.sessions.begin() as s:
                if s.get(WeChatToken, app_id) is None:
                    s.add(WeChatToken(app_id=app_id, token="", refresh_at=0.0, lease_until=now + seconds))
                    return True
        except IntegrityError:
            pass  # another replica created the row at the same moment: compete for the lease below
        with self.sessions.begin() as s:
            taken = s.execute(update(WeChatToken).where(WeChatToken.app_id == app_id, WeChatToken.lease_until < now,
                                                        WeChatToken.token == seen)
                              .values(lease_until=now + seconds))
            return taken.rowcount == 1

    def put(self, app_id: str, token: str, refresh_at: float) -> None:
        with self.sessions.begin() as s:
            s.execute(update(WeChatToken).where(WeChatToken.app_id == app_id)
                      .values(token=token, refresh_at=refresh_at, lease_until=0.0))

    def give_back(self, app_id: str) -> None:
        with self.sessions.begin() as s:
            s.execute(update(WeChatToken).where(WeChatToken.app_id == app_id).values(lease_until=0.0))
