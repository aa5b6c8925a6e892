"""Ticket load: many residents filing and many workers accepting at once, on SQLite and on PostgreSQL.

    python bench/tickets_load.py [--tickets 200] [--residents 50] [--workers 10] [--db sqlite,postgres]
                                 [--postgres-url URL] [--json]

Uses the real TicketStore (with the notifications and outbox the service wires)
on a fresh database: a SQLite file in a temporary folder, or a throw-away schema
of the PostgreSQL database. Resident threads file their reports (texts from
../shared/data/complaints_unlabeled.jsonl); each resident also sends one report
twice at the same moment, as a double tap or a redelivered message does. Worker
threads, at the same time, race to accept every assigned ticket: each presses
"accept" for the ticket's assignee (several devices, retried button presses) and
as itself (a colleague of the grid, who must be refused).

Checks, per database (all must be 0):
  lost        a report whose ticket is not in the database (or an accepted ticket not accepted in it)
  duplicated  a (resident, problem) with more than one ticket
  double      a ticket with more than one successful accept, or more than one accept event
With --json the last line is one JSON object with these figures per database.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, need_shared, read_jsonl  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GRIDS = {"jingcun-01": ("景村里", 1, 6), "jingcun-02": ("景村里", 7, 12), "jingcun-03": ("景村东里", 1, 8),
         "huajiang-01": ("华江里", 1, 10), "huajiang-02": ("华江里", 11, 20)}
PROBLEMS = [("供暖", "utility"), ("供水", "utility"), ("楼道堆物", "general"), ("噪音扰民", "general"),
            ("环境卫生", "general"), ("物业管理", "general"), ("电梯", "utility"), ("路灯", "general")]


@dataclass
class Outcome:
    database: str
    tickets: int = 0
    seconds_filing: float = 0.0
    seconds_total: float = 0.0
    lost: int = 0
    duplicated: int = 0
    double_accepted: int = 0
    linked: int = 0
    accepted: int = 0
    refused: int = 0
    errors: Counter = field(default_factory=Counter)

    @property
    def tickets_per_s(self) -> float:
        return self.tickets / self.seconds_filing if self.seconds_filing else 0.0

    def summary(self) -> dict:
        return {"tickets": self.tickets, "tickets_per_s": round(self.tickets_per_s, 1),
                "seconds_total": round(self.seconds_total, 2), "lost": self.lost, "duplicated": self.duplicated,
                "double_accepted": self.double_accepted, "linked": self.linked, "accepted": self.accepted,
                "refused_presses": self.refused, "errors": dict(self.errors)}


# -- databases ---------------------------------------------------------------------------


class Database:
    """A fresh, migrated database; closed and removed by close()."""

    def __init__(self, kind: str, postgres_url: str):
        from bot.storage.db import make_engine
        from bot.storage.migrate import upgrade

        self.kind = kind
        self._cleanup = []
        if kind == "sqlite":
            folder = tempfile.TemporaryDirectory(prefix="tickets-load-")
            self._cleanup.append(folder.cleanup)
            self.url = f"sqlite:///{Path(folder.name, 'bot.db').as_posix()}"
        else:
            schema = f"load_{secrets.token_hex(5)}"
            self._admin(postgres_url, f"CREATE SCHEMA {schema}")
            self._cleanup.append(lambda: self._admin(postgres_url, f"DROP SCHEMA {schema} CASCADE"))
            self.url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        self.engine = make_engine(self.url)
        upgrade(self.engine)

    @staticmethod
    def _admin(url: str, statement: str) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    def close(self) -> None:
        self.engine.dispose()
        for step in reversed(self._cleanup):
            step()


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers; otherwise why not."""
    try:
        Database._admin(url, "SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable" here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


# -- the load ------------------------------------------------------------------------------


def run(kind: str, texts: list[str], n_tickets: int, n_residents: int, n_workers: int, postgres_url: str,
        notifications: bool = True, double_send: bool = True, seed: int = 7) -> Outcome:
    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from bot.core.ports import TicketDraft
    from bot.storage.dialogue import SqlDialogueStore
    from bot.storage.outbox import SqlOutbox
    from bot.tickets.lifecycle import PermissionDenied, TransitionError
    from bot.tickets.models import Staff, Ticket, TicketEvent
    from bot.tickets.notifications import TicketNotifications
    from bot.tickets.organisation import PlaceResolver, load_organisation
    from bot.tickets.store import Actor, TicketStore

    db = Database(kind, postgres_url)
    outcome = Outcome(kind)
    try:
        sessions = sessionmaker(db.engine, expire_on_commit=False)
        org = load_organisation(ROOT / "district.toml")
        places = PlaceResolver(org)
        store = TicketStore(sessions, org)
        if notifications:
            TicketNotifications(store, SqlOutbox(sessions), SqlDialogueStore(sessions)).attach()
        grid_ids = list(GRIDS)
        actors: dict[int, Actor] = {}
        with sessions.begin() as s:
            for i in range(n_workers):
                staff = Staff(name=f"网格员{i + 1}", role="worker", channel="telegram", user_id=f"worker-{i}",
                              grids=[grid_ids[i % len(grid_ids)]], created_at=datetime.now(timezone.utc))
                s.add(staff)
                s.flush()
                actors[staff.id] = Actor.of(staff)
        worker_actors = list(actors.values())

        rng = random.Random(seed)
        per_resident = [n_tickets // n_residents + (1 if r < n_tickets % n_residents else 0) for r in range(n_residents)]
        if max(per_resident) > len(PROBLEMS):
            raise SystemExit(f"at most {len(PROBLEMS)} tickets per resident: use more --residents")
        plans: list[list[TicketDraft]] = []
        for r, count in enumerate(per_resident):
            drafts = []
            for category, sla_class in rng.sample(PROBLEMS, count):
                grid = rng.choice(grid_ids)
                estate, lo, hi = GRIDS[grid]
                place = places.resolve(f"{estate}{rng.randint(lo, hi)}号楼{rng.randint(1, 4)}单元")
                drafts.append(TicketDraft(channel="telegram", user_id=f"resident-{r}", description=rng.choice(texts),
                                          category=category, sla_class=sla_class, place=place.text,
                                          building_id=place.building_id, grid_id=place.grid_id,
                                          phone=f"139{r:04d}{rng.randint(0, 9999):04d}"))
            plans.append(drafts)

        lock = threading.Lock()
        failures = _ListenerFailures()
        filed: dict[tuple[str, str], set[str]] = defaultdict(set)  # (resident, category) -> ticket ids returned
        wins: Counter = Counter()
        filing_done = threading.Event()

        def note_error(exc: Exception) -> None:
            with lock:
                outcome.errors[type(exc).__name__] += 1

        def file_one(draft: TicketDraft) -> None:
            try:
                ticket, linked = store.file(draft)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                note_error(exc)
                return
            with lock:
                filed[(draft.user_id, draft.category)].add(ticket.id)
                outcome.linked += linked

        def resident(drafts: list[TicketDraft]) -> None:
            for i, draft in enumerate(drafts):
                if i == 0 and double_send:  # the same report sent twice at once
                    twin = threading.Thread(target=file_one, args=(draft,))
                    twin.start()
                    file_one(draft)
                    twin.join()
                else:
                    file_one(draft)

        def press(ticket: Ticket, actor: Actor) -> None:
            try:
                store.transition(ticket.id, "accept", actor, note="已联系居民")
            except (TransitionError, PermissionDenied):
                with lock:
                    outcome.refused += 1
                return
            except Exception as exc:  # noqa: BLE001
                note_error(exc)
                return
            with lock:
                wins[ticket.id] += 1

        def worker(me: Actor, worker_rng: random.Random) -> None:
            while True:
                finished = filing_done.is_set()
                with sessions() as s:
                    waiting = list(s.scalars(select(Ticket).where(Ticket.status == "assigned")))
                    for t in waiting:
                        s.expunge(t)
                if not waiting and finished:
                    return
                worker_rng.shuffle(waiting)
                for ticket in waiting:
                    press(ticket, actors[ticket.assignee_id])  # the assignee, from one of the racing presses
                    if ticket.assignee_id != me.staff_id:
                        press(ticket, me)  # a colleague: must be refused
                if not waiting:
                    time.sleep(0.01)

        started = time.perf_counter()
        workers = [threading.Thread(target=worker, args=(a, random.Random(seed + i))) for i, a in enumerate(worker_actors)]
        residents = [threading.Thread(target=resident, args=(plan,)) for plan in plans]
        for t in workers + residents:
            t.start()
        for t in residents:
            t.join()
        outcome.seconds_filing = time.perf_counter() - started
        filing_done.set()
        for t in workers:
            t.join(timeout=300)
        outcome.seconds_total = time.perf_counter() - started

        with sessions() as s:
            rows = s.execute(select(Ticket.id, Ticket.user_id, Ticket.category, Ticket.status)).all()
            accept_events = Counter(dict(s.execute(
                select(TicketEvent.ticket_id, func.count()).where(TicketEvent.action == "accept")
                .group_by(TicketEvent.ticket_id)).all()))
        stored = {r.id: r for r in rows}
        per_problem = Counter((r.user_id, r.category) for r in rows)
        expected = {(d.user_id, d.category) for plan in plans for d in plan}
        outcome.tickets = len(rows)
        outcome.lost = sum(1 for key in expected if per_problem[key] == 0)
        outcome.lost += sum(1 for ids in filed.values() for tid in ids if tid not in stored)
        outcome.lost += sum(1 for tid in wins if stored.get(tid) is None or stored[tid].status != "accepted")
        outcome.duplicated = sum(n - 1 for n in per_problem.values() if n > 1)
        outcome.double_accepted = len({tid for tid, n in wins.items() if n > 1}
                                      | {tid for tid, n in accept_events.items() if n > 1})
        outcome.accepted = sum(1 for r in rows if r.status == "accepted")
        outcome.errors.update({"not accepted": len(rows) - outcome.accepted} if len(rows) != outcome.accepted else {})
        outcome.errors.update({"notification failed": failures.count} if failures.count else {})
        return outcome
    finally:
        failures.remove()
        db.close()


class _ListenerFailures(logging.Handler):
    """Count the store's swallowed listener (notification) failures instead of printing their tracebacks."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.count = 0
        self.logger = logging.getLogger("bot.tickets.store")
        self.logger.addHandler(self)
        self.logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1

    def remove(self) -> None:
        self.logger.removeHandler(self)
        self.logger.propagate = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200, help="reports to file (default 200)")
    parser.add_argument("--residents", type=int, default=50, help="resident threads (default 50)")
    parser.add_argument("--workers", type=int, default=10, help="worker threads racing to accept (default 10)")
    parser.add_argument("--db", default="sqlite,postgres", help="databases to run on (default sqlite,postgres)")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help=f"PostgreSQL database (default {POSTGRES_URL})")
    parser.add_argument("--without-notifications", action="store_true",
                        help="the store alone, without the notifications listener the service wires")
    parser.add_argument("--no-double-send", action="store_true", help="each report is sent once")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if not kinds or any(k not in ("sqlite", "postgres") for k in kinds):
        parser.error(f"--db takes sqlite and/or postgres, not {args.db!r}")
    if args.tickets < 1 or args.residents < 1 or args.workers < 1:
        parser.error("--tickets, --residents and --workers must be at least 1")
    if "postgres" in kinds:
        why = postgres_reachable(args.postgres_url)
        if why:
            sys.exit(f"PostgreSQL is not reachable at {args.postgres_url} ({why}); run with --db sqlite to skip it")
    source = need_shared() / "complaints_unlabeled.jsonl"
    if not source.is_file():
        sys.exit(f"benchmark data not found: {source}")
    texts = [f"{r['title']} {r['text']}"[:500] for r in read_jsonl(source)]

    print(f"ticket load: {args.tickets} reports from {args.residents} resident threads"
          + ("" if args.no_double_send else " (each sends one of them twice at once)")
          + f", {args.workers} worker threads racing to accept; "
          + ("store alone" if args.without_notifications else "with notifications and outbox"))
    results = {}
    for kind in kinds:
        outcome = run(kind, texts, args.tickets, args.residents, args.workers, args.postgres_url,
                      notifications=not args.without_notifications, double_send=not args.no_double_send)
        results[kind] = outcome.summary()
        print(f"{kind:<9} {outcome.tickets} tickets, {outcome.tickets_per_s:.1f} tickets/s filed "
              f"({outcome.seconds_filing:.1f} s; all accepted after {outcome.seconds_total:.1f} s); "
              f"{outcome.linked} double sends linked, {outcome.refused} presses refused; "
              f"lost/duplicated/double-accepted {outcome.lost}/{outcome.duplicated}/{outcome.double_accepted}"
              + (f"; errors {dict(outcome.errors)}" if outcome.errors else ""))
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    failed = any(r["lost"] or r["duplicated"] or r["double_accepted"] or r["errors"] for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
