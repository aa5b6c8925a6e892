"""Which replica handles a webhook update, and whether it was handled: a row per update in the database.

Telegram sends an update again when it got no 200 for it (the replica was killed while handling it,
or the connection broke), maybe to another replica behind the load balancer. The replica that
inserts the update's row handles it and marks it done; a copy of a done update is answered 200 and
not handled again; a copy arriving while the first is still being handled is answered 503 (Telegram
tries again later); a claim left unfinished past the lease (its replica died) is taken over, so the
update is handled at least once and, short of a crash in the middle, exactly once.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import Boolean, DateTime, String, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.core.ports import CLAIM_BUSY as BUSY
from bot.core.ports import CLAIM_DONE as DONE
from bot.core.ports import CLAIM_MINE as MINE
from bot.storage.db import Base


class UpdateClaim(Base):
    __tablename__ = "update_claim"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class SqlUpdateClaims:
    """Implements core.ports.UpdateClaims."""

    def __init__(self, sessions: sessionmaker[Session], lease: timedelta = timedelta(seconds=30),
                 keep: timedelta = timedelta(days=2)):
        self.sessions = sessions
        self.lease = lease
        self.keep = keep
        self._last_sweep = 0.0

    def claim(self, key: str) -> str:
        """MINE: handle it now; DONE: handled already (a copy); BUSY: being handled elsewhere, ask again later."""
        now = datetime.now(timezone.utc)
        key = key[:200]
        try:
            with self.sessions.begin() as s:
                s.add(UpdateClaim(key=key, claimed_at=now, done=False))
            self._sweep(now)
            return MINE
        except IntegrityError:
            pass
        with self.sessions.begin() as s:
            taken = s.execute(update(UpdateClaim).where(UpdateClaim.key == key, UpdateClaim.done.is_(False),
                                                        UpdateClaim.claimed_at < now - self.lease)
                              .values(claimed_at=now))
            if taken.rowcount == 1:
                return MINE  # its first handler died with it
            row = s.get(UpdateClaim, key)
            return DONE if row is None or row.done else BUSY

    def renew(self, key: str) -> None:
        with self.sessions.begin() as s:
            s.execute(update(UpdateClaim).where(UpdateClaim.key == key[:200], UpdateClaim.done.is_(False))
                      .values(claimed_at=datetime.now(timezone.utc)))

    def finish(self, key: str) -> None:
        with self.sessions.begin() as s:
            s.execute(update(UpdateClaim).where(UpdateClaim.key == key[:200]).values(done=True))

    def _sweep(self, now: datetime) -> None:
        if time.monotonic() - self._last_sweep > 600:  # copies come within minutes: old rows can go
            self._last_sweep = time.monotonic()
            with self.sessions.begin() as s:
                s.execute(delete(UpdateClaim).where(UpdateClaim.claimed_at < now - self.keep))
