"""One process of several: a PostgreSQL advisory lock held for a process's life.

Telegram allows one getUpdates poller per bot: two replicas polling take each
other's updates (and Telegram answers 409 Conflict). A replica that would poll
first takes this lock on a connection of its own and keeps it; a second one is
refused with a message that says to use webhook mode. The lock goes with the
connection, so a replica killed with SIGKILL frees it for the next.
"""

from __future__ import annotations

import zlib

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool


class Held:
    """The lock, on a connection of its own (not the pool's: a pooled one would keep the lock when given back)."""

    def __init__(self, engine: Engine, connection: Connection):
        self._engine, self._connection = engine, connection

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()


def hold(engine: Engine, name: str) -> Held | None:
    """Lock `name` for this process (close() releases it); AlreadyHeld when another process holds it.

    Any database but PostgreSQL runs one process by design (SQLite): there is nothing to hold.
    """
    if engine.dialect.name != "postgresql":
        return None
    own = create_engine(engine.url, poolclass=NullPool)
    connection = own.connect()
    key = zlib.crc32(name.encode("utf-8"))  # a stable 32-bit key of the name
    taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
    connection.commit()
    if not taken:
        connection.close()
        own.dispose()
        raise AlreadyHeld(name)
    return Held(own, connection)


class AlreadyHeld(RuntimeError):
    """Another process holds the lock."""
