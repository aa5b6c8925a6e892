"""A real database for integration tests: SQLite in tmp_path or a fresh PostgreSQL schema, migrated by Alembic.

The `database` fixture (tests/conftest.py) runs each test once per backend. On
PostgreSQL every test gets its own schema (``t_<random>``), reached through the
connection's ``search_path``, and the schema is dropped afterwards; the tables
are created by ``bot.storage.migrate.upgrade``, so every test also runs the
migration. PostgreSQL being down fails the test: CI always has it.
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.messages import Reply
from bot.core.ports import TicketDraft
from bot.storage.db import make_engine
from bot.storage.dialogue import SqlDialogueStore
from bot.storage.migrate import upgrade
from bot.storage.outbox import OutboxRow, SqlOutbox, reply_from_dict
from bot.tickets.categories import CategoryClassifier, load_categories
from bot.tickets.desk import ResidentDesk
from bot.tickets.models import Staff, Ticket, TicketEvent
from bot.tickets.notifications import TicketNotifications
from bot.tickets.organisation import Organisation, PlaceResolver, load_organisation
from bot.tickets.scheduler import DeadlineWatch
from bot.tickets.sla import SlaPolicy
from bot.tickets.staff import StaffDirectory
from bot.tickets.store import Actor, TicketStore

ROOT = Path(__file__).resolve().parents[2]
DISTRICT = ROOT / "district.toml"
CATEGORIES = ROOT / "categories.toml"
KNOWLEDGE = ROOT / "knowledge"
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Monday 2026-11-23, 10:00 in Shanghai: office hours, the start of ISO week 48.
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


class FakeClock:
    """A clock that stands still until a test moves it (always UTC, like the stored times)."""

    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Db:
    """One migrated database and the ticket system wired on it (real store, outbox, notifications)."""

    kind: str
    url: str
    engine: Engine
    clock: FakeClock
    index_dir: Path = Path("index")  # of the services built from config(); shared to reuse their caches
    org: Organisation = field(default_factory=lambda: load_organisation(DISTRICT))

    def __post_init__(self) -> None:
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self.places = PlaceResolver(self.org)
        self.categories = CategoryClassifier(load_categories(CATEGORIES))  # keywords only: no model
        self.store = self.new_store()
        self.desk = ResidentDesk(self.store)
        self.staff = StaffDirectory(self.store)
        self.outbox = SqlOutbox(self.sessions)
        self.dialogues = SqlDialogueStore(self.sessions)

    def new_store(self, engine: Engine | None = None) -> TicketStore:
        """A TicketStore with notifications, as build_service wires it (a new one = a restarted process)."""
        sessions = self.sessions if engine is None else sessionmaker(engine, expire_on_commit=False)
        store = TicketStore(sessions, self.org, SlaPolicy.default(), clock=self.clock)
        TicketNotifications(store, SqlOutbox(sessions), SqlDialogueStore(sessions)).attach()
        return store

    def watch(self, store: TicketStore | None = None, retention_days: float | None = None) -> DeadlineWatch:
        return DeadlineWatch(store or self.store, timedelta(minutes=30), timedelta(days=7),
                             None if retention_days is None else timedelta(days=retention_days))

    # -- people ----------------------------------------------------------------
    def add_staff(self, role: str = "worker", user_id: str = "w1", grids: tuple[str, ...] = ("jingcun-01",),
                  community: str | None = None, on_duty: bool = True, name: str = "",
                  channel: str = "telegram") -> Actor:
        """Add a staff member directly (invites are tested separately); return them as an Actor."""
        with self.sessions.begin() as s:
            staff = Staff(name=name or f"{role}-{user_id}", role=role, channel=channel, user_id=user_id,
                          grids=list(grids) if role == "worker" else [], community=community, on_duty=on_duty,
                          created_at=self.clock())
            s.add(staff)
            s.flush()
            s.expunge(staff)
        return Actor.of(staff)

    # -- residents -------------------------------------------------------------
    def draft(self, text: str = "景村里3号楼2单元暖气不热，屋里才十五度", user_id: str = "r1",
              phone: str = "13812345678", channel: str = "telegram", **overrides) -> TicketDraft:
        """What intake would file for this message: place and category matched the way the service does."""
        place = self.places.resolve(text)
        category = self.categories.classify(text)
        values = dict(channel=channel, user_id=user_id, description=text, category=category.name,
                      sla_class=category.sla_class, place=place.text if place else "",
                      building_id=place.building_id if place else None, grid_id=place.grid_id if place else None,
                      community=place.community if place else "", phone=phone, contact_time="晚上")
        values.update(overrides)
        return TicketDraft(**values)

    def file(self, text: str = "景村里3号楼2单元暖气不热，屋里才十五度", **kw) -> Ticket:
        ticket, _ = self.store.file(self.draft(text, **kw))
        return ticket

    # -- what was said ---------------------------------------------------------
    def messages_to(self, user_id: str, channel: str = "telegram") -> list[Reply]:
        """Every notification queued for one person, oldest first."""
        with self.sessions() as s:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.channel == channel, OutboxRow.user_id == user_id)
                             .order_by(OutboxRow.id)).all()
            return [reply_from_dict(r.payload) for r in rows]

    def all_messages(self) -> list[tuple[str, Reply]]:
        with self.sessions() as s:
            rows = s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
            return [(r.user_id, reply_from_dict(r.payload)) for r in rows]

    def count_events(self, ticket_id: str, action: str) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(TicketEvent)
                            .where(TicketEvent.ticket_id == ticket_id, TicketEvent.action == action))

    def config(self, folder: Path, **tickets) -> Path:
        """A config.toml for build_service / `python -m bot` on this database (hashing embedder, repo's samples)."""
        return write_config(folder, self.url, index_dir=self.index_dir, **tickets)


def write_config(folder: Path, database_url: str, docs_dir: Path = KNOWLEDGE, index_dir: Path = Path("index"),
                 **tickets) -> Path:
    """A temporary config: repo's knowledge, district and categories; index in folder; no model to load."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# written by tests/integration/db.py", "[knowledge]", f'docs_dir = "{docs_dir.as_posix()}"',
             f'index_dir = "{index_dir.as_posix()}"', "[embedding]", 'backend = "hashing"', "[database]", f'url = "{database_url}"',
             "[tickets]", f'organisation_file = "{DISTRICT.as_posix()}"',
             f'categories_file = "{CATEGORIES.as_posix()}"']
    lines += [f"{key} = {value!r}" for key, value in tickets.items()]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _require_postgres() -> Engine:
    """An engine on the server's `test` database; fail (never skip) with a clear message when it is down."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(POSTGRES_SERVER, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        admin.dispose()
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_SERVER} (CI provides it; start it locally, "
                    f"e.g. a postgres:15 container with trust auth): {type(exc).__name__}: {exc}", pytrace=False)
    return admin


@contextmanager
def open_database(kind: str, tmp_path: Path, clock: FakeClock | None = None,
                  index_dir: Path = Path("index")) -> Iterator[Db]:
    """Yield a migrated, empty database of the given kind; drop it afterwards."""
    clock = clock or FakeClock()
    if kind == "sqlite":
        url = f"sqlite:///{(tmp_path / 'tickets.db').as_posix()}"
        engine = make_engine(url)
        upgrade(engine)
        try:
            yield Db(kind, url, engine, clock, index_dir)
        finally:
            engine.dispose()
        return
    from sqlalchemy import text

    admin = _require_postgres()
    schema = f"t_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield Db(kind, url, engine, clock, index_dir)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
