"""The visit register (智能采集): visits, the people who need care, and when each is due a visit.

A saved visit updates the register: a person already there (same address, same
name) gets the new age, tags and needs and a new last visit; anyone else is added.
Who is due a visit follows their tags (the sample grid-worker handbook: lone and
very old people monthly, households on 低保 or with a disability quarterly); the
deadline watch reminds the grid's workers once per due date. Who may see whom
follows the tickets' rule: the grid's workers, the community's supervisors, admins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.casework.models import RegisterPerson, Visit
from bot.core.messages import Reply
from bot.core.ports import Notifier
from bot.errors import BotError
from bot.tickets.models import Staff
from bot.tickets.organisation import Organisation
from bot.tickets.sla import local, utcnow
from bot.tickets.store import Actor

log = logging.getLogger(__name__)
TAGS = ("独居", "高龄", "残疾", "低保", "特困", "困境儿童", "留守儿童", "失能")
# days between visits by tag; the shortest of a person's tags counts
DEFAULT_INTERVALS = {"独居": 30, "高龄": 30, "失能": 30, "困境儿童": 30, "留守儿童": 30, "残疾": 90, "低保": 90,
                     "特困": 90}
ERASED_NOTE = "（走访记录已按保存期限删除）"


class RegisterError(BotError):
    """A visit the register refuses; the message is shown as is."""


@dataclass
class PersonEntry:
    """One person as the worker confirmed them on the visit form."""

    name: str
    age: int | None = None
    tags: list[str] = field(default_factory=list)


def can_see_grid(actor: Actor, grid_id: str | None, community_id: str | None) -> bool:
    """The register's people and a case's parties: the grid's workers, the community's supervisors, admins."""
    if actor.role == "admin":
        return True
    if actor.role == "supervisor":
        return community_id is not None and community_id == actor.community
    return actor.role == "worker" and grid_id is not None and grid_id in actor.grids


class VisitRegister:
    def __init__(self, sessions: sessionmaker[Session], org: Organisation, clock: Callable[[], datetime] = utcnow,
                 intervals: dict[str, int] | None = None, notifier: Notifier | None = None):
        self.sessions = sessions
        self.org = org
        self.clock = clock
        self.intervals = dict(intervals or DEFAULT_INTERVALS)
        self.notifier = notifier

    def interval(self, tags: list[str]) -> timedelta | None:
        days = [self.intervals[t] for t in tags if t in self.intervals]
        return timedelta(days=min(days)) if days else None

    def save_visit(self, actor: Actor, note: str, place: str, building_id: str | None, grid_id: str | None,
                   community_id: str | None, people: list[PersonEntry], needs: list[str],
                   ticket_ids: list[str] | None = None) -> Visit:
        """Record a visit and bring the register up to date; a worker records visits of their own grids only."""
        if actor.role == "worker" and grid_id not in actor.grids:
            raise RegisterError("只能登记本网格的走访。地点不在您的网格时，请交给该网格的网格员。")
        if not place:
            raise RegisterError("请写明走访的地址（小区、楼号、门牌）。")
        if community_id is None and grid_id in self.org.grids:
            community_id = self.org.grids[grid_id].community_id
        now = self.clock()
        with self.sessions.begin() as s:
            ids = []
            for entry in people:
                if not entry.name.strip():
                    continue
                person = s.scalars(select(RegisterPerson).where(
                    RegisterPerson.place == place, RegisterPerson.name == entry.name.strip(),
                    RegisterPerson.erased.is_(False))).first()
                if person is None:
                    person = RegisterPerson(grid_id=grid_id, community_id=community_id, building_id=building_id,
                                            place=place, name=entry.name.strip()[:64], created_at=now)
                    s.add(person)
                person.age = entry.age if entry.age is not None else person.age
                person.tags = [t for t in TAGS if t in entry.tags]
                person.needs = sorted(set(needs))
                person.last_visit_at = now
                every = self.interval(person.tags)
                person.next_visit_due = now + every if every else None
                person.reminded_at = None
                s.flush()
                ids.append(person.id)
            visit = Visit(grid_id=grid_id, community_id=community_id, place=place, note=note[:2000], visited_at=now,
                          staff_id=actor.staff_id, person_ids=ids, needs=sorted(set(needs)),
                          ticket_ids=list(ticket_ids or []))
            s.add(visit)
            s.flush()
            s.expunge(visit)
        log.info("visit %s saved by staff %s: %d people", visit.id, actor.staff_id, len(ids))
        return visit

    def people(self, actor: Actor, grid_id: str = "", tag: str = "", due_only: bool = False,
               limit: int = 500) -> list[RegisterPerson]:
        """The register as this person may see it, those due a visit first."""
        with self.sessions() as s:
            query = select(RegisterPerson).where(RegisterPerson.erased.is_(False))
            if actor.role == "worker":
                query = query.where(RegisterPerson.grid_id.in_(actor.grids or ("",)))
            elif actor.role == "supervisor":
                query = query.where(RegisterPerson.community_id == (actor.community or ""))
            elif actor.role != "admin":
                return []
            if grid_id:
                query = query.where(RegisterPerson.grid_id == grid_id)
            if due_only:
                query = query.where(RegisterPerson.next_visit_due <= self.clock())
            query = query.order_by(RegisterPerson.next_visit_due.is_(None), RegisterPerson.next_visit_due,
                                   RegisterPerson.id)
            # tags are a JSON list (no portable SQL filter): with a tag asked, the limit applies after filtering
            rows = list(s.scalars(query if tag else query.limit(limit)))
            for row in rows:
                s.expunge(row)
        return [r for r in rows if not tag or tag in (r.tags or [])][:limit]

    def visits(self, actor: Actor, limit: int = 50) -> list[Visit]:
        with self.sessions() as s:
            query = select(Visit)
            if actor.role == "worker":
                query = query.where(Visit.grid_id.in_(actor.grids or ("",)))
            elif actor.role == "supervisor":
                query = query.where(Visit.community_id == (actor.community or ""))
            elif actor.role != "admin":
                return []
            rows = list(s.scalars(query.order_by(Visit.visited_at.desc()).limit(limit)))
            for row in rows:
                s.expunge(row)
        return rows

    # -- the deadline watch ------------------------------------------------------------------------
    def remind_due(self, now: datetime) -> int:
        """Tell each grid's workers who is due a visit, once per due date; the number of people reminded."""
        with self.sessions() as s:
            due = list(s.scalars(select(RegisterPerson).where(
                RegisterPerson.erased.is_(False), RegisterPerson.next_visit_due <= now,
                or_(RegisterPerson.reminded_at.is_(None), RegisterPerson.reminded_at < RegisterPerson.next_visit_due))))
            for row in due:
                s.expunge(row)
        by_grid: dict[str, list[RegisterPerson]] = {}
        for person in due:
            with self.sessions.begin() as s:  # claim: once, even with several processes ticking
                claimed = s.execute(update(RegisterPerson).where(
                    RegisterPerson.id == person.id,
                    or_(RegisterPerson.reminded_at.is_(None), RegisterPerson.reminded_at < RegisterPerson.next_visit_due))
                    .values(reminded_at=now)).rowcount
            if claimed == 1:
                by_grid.setdefault(person.grid_id or "", []).append(person)
        for grid_id, people in by_grid.items():
            self._tell_grid(grid_id, people)
        return sum(len(p) for p in by_grid.values())

    def _tell_grid(self, grid_id: str, people: list[RegisterPerson]) -> None:
        if self.notifier is None or not grid_id:
            return
        with self.sessions() as s:
            workers = [(w.channel, w.user_id) for w in s.scalars(select(Staff).where(
                Staff.role == "worker", Staff.active.is_(True))) if grid_id in (w.grids or [])]
        lines = [f"走访提醒：以下 {len(people)} 位居民到了走访时间（工作台“走访”页面可查看和登记）："]
        lines += [f"· {p.name}（{p.place}，{'、'.join(p.tags)}）上次走访 {local(p.last_visit_at)[:10]}"
                  for p in people[:20] if p.last_visit_at]
        for channel, user_id in workers:
            self.notifier.notify(channel, user_id, Reply("\n".join(lines), intent="staff"))

    def erase_before(self, cutoff: datetime) -> int:
        """Names, addresses and notes of people not visited since the cutoff, and of visits before it."""
        with self.sessions.begin() as s:
            people = s.execute(update(RegisterPerson).where(
                RegisterPerson.erased.is_(False), RegisterPerson.last_visit_at <= cutoff)
                .values(name="", place="", age=None, next_visit_due=None, erased=True)).rowcount or 0
            visits = s.execute(update(Visit).where(Visit.erased.is_(False), Visit.visited_at <= cutoff)
                               .values(note=ERASED_NOTE, place="", erased=True)).rowcount or 0
        return people + visits
