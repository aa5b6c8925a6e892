"""Create SQLAlchemy engines for SQLite (default) or PostgreSQL from a URL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase

from bot.errors import ConfigError


class Base(DeclarativeBase):
    """Declarative base of every table of the project."""


def make_engine(url: str, base_dir: Path | None = None, busy_timeout: float = 30.0, pool_size: int = 10,
                max_overflow: int = 10) -> Engine:
    """Build an engine; a relative SQLite path resolves against base_dir and its folder is created.

    busy_timeout: how long a SQLite statement waits for another writer's lock before giving up
    (the message is then kept in the journal, see core/durable.py).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"database.url is not a valid SQLAlchemy URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            path.parent.mkdir(parents=True, exist_ok=True)
            parsed = parsed.set(database=str(path))
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL lets readers run while one process writes
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # at most pool_size + max_overflow connections: with replicas, PostgreSQL's max_connections must hold them all
    return create_engine(parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


_OUTAGE_WORDS = ("database is locked", "database table is locked", "unable to open database", "connection",
                 "connect", "server closed", "terminating connection", "timeout", "timed out", "could not receive",
                 "could not send", "ssl syscall", "the database system is", "no route to host")


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached or is locked right now", not a bug.

    Only such messages are kept for later (core/durable.py): a bug, a missing table or a
    full disk would fail again on every retry, so those surface as errors at once. Explicit
    causes (raise ... from) are followed, because callers sometimes wrap the driver error.
    """
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, (DisconnectionError, PoolTimeout)):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, (OperationalError, InterfaceError)):
            text = str(exc.orig if exc.orig is not None else exc).lower()
            return any(word in text for word in _OUTAGE_WORDS)
        exc = exc.__cause__
    return False
