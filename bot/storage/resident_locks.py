"""One message of a resident at a time across replicas: a PostgreSQL advisory lock per resident.

Two messages of one resident that land on two replicas would otherwise each load
the half-filled report, and the later save would overwrite the earlier. The
process's own per-resident lock is taken first (so one resident's burst waits in
memory and holds one connection, not one per message); then a session-level
advisory lock on a small pool of connections of its own, never the pool the
conversation's queries use (a message holding the lock must always find a
connection for its work). A replica killed mid-message frees its locks with its
connections. SQLite runs one process: the in-process lock is all it needs.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from typing import Hashable

from sqlalchemy import Engine, create_engine, text

from bot.core.locks import KeyedLocks

NAMESPACE = 7272  # the first key of pg_advisory_lock(int, int): this application's resident locks


class ReplicaLocks:
    def __init__(self, engine: Engine, connections: int = 32):
        self.local = KeyedLocks()
        # one connection kept between messages; up to `connections` while many residents write at once
        self.engine = create_engine(engine.url, pool_size=1, max_overflow=connections - 1, pool_timeout=60,
                                    pool_pre_ping=True)

    @contextmanager
    def hold(self, key: Hashable):
        number = zlib.crc32(repr(key).encode("utf-8")) - 2**31  # a stable signed 32-bit key
        with self.local.hold(key), self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:ns, :key)"), {"ns": NAMESPACE, "key": number})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": NAMESPACE, "key": number})
                connection.commit()

    def close(self) -> None:
        self.engine.dispose()


def resident_locks(engine: Engine, connections: int = 32):
    """The per-resident lock a conversation needs on this database; `connections`: as many as messages the
    process handles at once (web.max_in_flight), since each holds one while it is handled."""
    return ReplicaLocks(engine, connections) if engine.dialect.name == "postgresql" else KeyedLocks()
