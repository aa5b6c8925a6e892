"""The ticket store: filing, routing, every state change as an event, and queries.

Every transition is one conditional UPDATE (``WHERE status = :expected``), so
two workers pressing "accept" at the same moment cannot both win, on SQLite or
PostgreSQL, in one process or several.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.ports import TicketDraft, TicketInfo
from bot.core.privacy import mask
from bot.tickets.lifecycle import (DISMISS_REASONS, OPEN_STATES, SOURCE_LABELS, STATUS_LABELS, PermissionDenied,
                                  TicketNotFound, TransitionError, target)
from bot.tickets.duty import district_day, rostered_ids
from bot.tickets.models import Staff, Ticket, TicketEvent
from bot.tickets.organisation import Organisation
from bot.tickets.sla import SHANGHAI, SlaPolicy, as_utc, utcnow

log = logging.getLogger(__name__)
DUPLICATE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Actor:
    """Who acts: a resident (channel, user id), a staff member, or the system."""

    kind: str  # resident | staff | system
    staff_id: int | None = None
    role: str = ""
    grids: tuple[str, ...] = ()
    community: str | None = None

    @property
    def label(self) -> str:
        return f"staff:{self.staff_id}" if self.kind == "staff" else self.kind

    @classmethod
    def of(cls, staff: Staff) -> "Actor":
        return cls("staff", staff.id, staff.role, tuple(staff.grids or ()), staff.community)


SYSTEM = Actor("system")
RESIDENT = Actor("resident")


class TicketStore:
    def __init__(self, sessions: sessionmaker[Session], org: Organisation, sla: SlaPolicy | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.sessions = sessions
        self.org = org
        self.sla = sla or SlaPolicy.default()
        self.clock = clock
        self.listeners: list[Callable[[str, str, Actor], None]] = []  # (ticket id, action, actor)
        # (session, ticket, action, actor), called inside add_event's transaction: what must commit with the event
        self.in_transaction: list[Callable[[Session, Ticket, str, Actor], None]] = []
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- filing --------------------------------------------------------------
    def file(self, draft: TicketDraft) -> tuple[Ticket, bool]:
        """Create a ticket and route it; or link to the resident's open ticket on the same problem.

        The duplicate check and the insert are one transaction under a lock per
        resident, so a report delivered twice at once (a double tap, a channel's
        redelivery) is filed once.
        """
        for _ in range(5):
            try:
                with self._resident_lock(draft), self.sessions.begin() as s:
                    if s.bind.dialect.name == "postgresql":  # other processes too
                        s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                  {"key": f"file:{draft.channel}:{draft.user_id}"})
                    ticket, linked = self._file_in(s, draft, self.clock())
                    s.flush()
                    s.expunge(ticket)
                break
            except IntegrityError:
                continue  # a random id collided: draw another
        else:  # pragma: no cover - five collisions of a random id in a row
            raise RuntimeError("could not allocate a ticket id")
        if linked:
            return ticket, True
        log.info("ticket %s filed: %s", ticket.id, mask(f"{ticket.category} @ {ticket.place}"))
        self._emit(ticket.id, "filed", RESIDENT)
        self.route(ticket.id)
        return self.get(ticket.id), False

    def _file_in(self, s: Session, draft: TicketDraft, now: datetime) -> tuple[Ticket, bool]:
        same = s.scalars(
            select(Ticket).where(Ticket.channel == draft.channel, Ticket.user_id == draft.user_id,
                                 Ticket.category == draft.category, Ticket.status.in_(OPEN_STATES),
                                 Ticket.created_at >= now - DUPLICATE_WINDOW)
            .order_by(Ticket.created_at.desc())
        ).first()
        if same is not None and (same.building_id == draft.building_id or not draft.building_id):
            s.add(TicketEvent(ticket_id=same.id, at=now, actor="resident", action="resident_added",
                              note=draft.description[:1000]))
            if draft.photos:
                same.photos = list(same.photos or []) + draft.photos
            return same, True
        community = self.org.community_of_grid(draft.grid_id) or self.org.communities.get(draft.community or "")
        deadlines = self.sla.deadlines(draft.sla_class, now)
        ticket = Ticket(
            id=_new_id(now), channel=draft.channel, user_id=draft.user_id, kind=draft.kind,
            category=draft.category or "其他", sla_class=draft.sla_class, urgent=draft.urgent,
            description=draft.description, place=draft.place, building_id=draft.building_id,
            grid_id=draft.grid_id, community_id=community.id if community else None, phone=draft.phone,
            contact_time=draft.contact_time, photos=list(draft.photos), latitude=draft.latitude,
            longitude=draft.longitude, status="new", created_at=now, dispatch_due=deadlines.dispatch,
            feedback_due=deadlines.feedback, source=draft.source, filed_by=draft.filed_by,
        )
        s.add(ticket)
        by = f"staff:{draft.filed_by}" if draft.filed_by else "resident"
        how = f"（{SOURCE_LABELS.get(draft.source, draft.source)}受理）" if draft.source != "chat" else ""
        s.add(TicketEvent(ticket_id=ticket.id, at=now, actor=by, action="filed", to_status="new",
                          note=f"{ticket.category} {mask(ticket.place)}{how}"))
        return ticket, False

    def _resident_lock(self, draft: TicketDraft) -> threading.Lock:
        key = (draft.channel, draft.user_id)
        with self._locks_guard:
            lock = self._locks.get(key)
            if lock is None:
                if len(self._locks) > 10000:  # forget idle residents' locks
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[key] = threading.Lock()
            return lock

    def route(self, ticket_id: str) -> Staff | None:
        """Assign to the least-loaded on-duty worker of the ticket's grid; else leave it for the supervisor."""
        with self.sessions() as s:
            ticket = s.get(Ticket, ticket_id)
            if ticket is None or ticket.status != "new":
                return None
            worker = self._pick_worker(s, ticket.grid_id) if ticket.grid_id else None
        if worker is None:
            self._emit(ticket_id, "unrouted", SYSTEM)
            return None
        self.transition(ticket_id, "assign", SYSTEM, assignee_id=worker.id, note=f"派给 {worker.name}")
        return worker

    def route_waiting(self, grids: list[str] | tuple[str, ...]) -> list[str]:
        """Route the unassigned tickets of these grids (a worker just joined them); the ids routed."""
        if not grids:
            return []
        with self.sessions() as s:
            waiting = list(s.scalars(select(Ticket.id).where(Ticket.status == "new", Ticket.grid_id.in_(list(grids)))
                                     .order_by(Ticket.dispatch_due)))
        return [ticket_id for ticket_id in waiting if self.route(ticket_id) is not None]

    def take(self, ticket_id: str, actor: Actor) -> Ticket:
        """A worker takes an unassigned ticket of their own grid (it waited for someone to join or come on duty)."""
        ticket = self.get(ticket_id)
        if ticket.status == "new" and not can_take(actor, ticket):
            raise PermissionDenied("只能接本网格的待派单工单。")
        return self.transition(ticket_id, "take", actor, assignee_id=actor.staff_id, expected="new", note="网格员自己接单")

    def dismiss(self, ticket_id: str, actor: Actor, reason: str, why: str) -> Ticket:
        """A supervisor or admin closes a duplicate or invalid ticket; the reason is told to the resident."""
        if reason not in DISMISS_REASONS:
            raise TransitionError("请选择关闭原因：重复工单或无效工单。")
        why = " ".join(why.split())
        if not why:
            raise TransitionError("请写明关闭的理由（会告诉居民）。")
        ticket = self.get(ticket_id)
        if actor.role not in ("supervisor", "admin") or not can_view(actor, ticket):
            raise PermissionDenied("只有社区负责人或管理员可以关闭工单。")
        return self.transition(ticket_id, "dismiss", actor, note=f"{DISMISS_REASONS[reason]}：{why[:500]}")

    def _pick_worker(self, s: Session, grid_id: str) -> Staff | None:
        """The grid's own worker when at work today, else the community's duty worker (今日我当班).

        At work: active, 在岗, and on the roster when the community has one for today.
        Among several, the least loaded.
        """
        grid = self.org.grids.get(grid_id)
        rostered = rostered_ids(s, grid.community_id, district_day(self.clock())) if grid else None
        available = list(s.scalars(select(Staff).where(Staff.role == "worker", Staff.on_duty.is_(True),
                                                       Staff.active.is_(True))))
        workers = [w for w in available if grid_id in (w.grids or []) and (rostered is None or w.id in rostered)]
        if not workers and rostered:
            workers = [w for w in available if w.id in rostered]
        if not workers:
            return None
        loads = dict(s.execute(
            select(Ticket.assignee_id, func.count()).where(Ticket.status.in_(("assigned", "accepted")))
            .group_by(Ticket.assignee_id)).all())
        return min(workers, key=lambda w: (loads.get(w.id, 0), w.id))

    # -- transitions -----------------------------------------------------------
    def transition(self, ticket_id: str, action: str, actor: Actor, note: str = "", assignee_id: int | None = None,
                   expected: str | None = None, **fields) -> Ticket:
        """Apply one action atomically; TransitionError when the state does not allow it (or changed meanwhile)."""
        now = self.clock()
        with self.sessions.begin() as s:
            ticket = s.get(Ticket, ticket_id)
            if ticket is None:
                raise TicketNotFound(f"没有找到工单 {ticket_id}")
            current = expected or ticket.status
            to_state = target(action, current)
            values = dict(fields)
            values.update(status=to_state, version=Ticket.version + 1)
            if action in ("assign", "take"):
                values["assignee_id"] = assignee_id
            elif action == "accept":
                values["accepted_at"] = func.coalesce(Ticket.accepted_at, now)  # the first contact counts
            elif action == "resolve":
                values.update(resolved_at=now, resolution_note=note)
            elif action == "close":
                values["closed_at"] = now
            elif action == "hand_back":
                values["assignee_id"] = None
            elif action == "reopen":
                values.update(reopen_count=Ticket.reopen_count + 1, resolved_at=None, closed_at=None)
            condition = [Ticket.id == ticket_id, Ticket.status == current]
            if action in ("accept", "resolve", "hand_back") and actor.kind == "staff":
                # only the assignee contacts the resident and reports; a supervisor reassigns instead
                condition.append(Ticket.assignee_id == actor.staff_id)
            result = s.execute(update(Ticket).where(*condition).values(**values))
            if result.rowcount != 1:
                s.rollback()
                fresh = self.get(ticket_id)
                if fresh.status != current:
                    raise TransitionError(f"工单已是“{STATUS_LABELS.get(fresh.status, fresh.status)}”状态，可能已被其他人处理。")
                raise PermissionDenied("只有被指派的网格员可以处理这张工单。")
            s.add(TicketEvent(ticket_id=ticket_id, at=now, actor=actor.label, action=action, from_status=current,
                              to_status=to_state, note=note[:2000]))
        self._emit(ticket_id, action, actor)
        return self.get(ticket_id)

    def add_event(self, ticket_id: str, actor: Actor, action: str, note: str = "", claim: str | None = None,
                  **fields) -> bool:
        """Record something that does not change the state (reminder, escalation, comment); True if recorded.

        With `claim` (a timestamp column such as escalated_at) the event is recorded only if that column
        is still empty, and the column is set to now in the same transaction as the event and as what the
        `in_transaction` hooks write (the escalation's notifications in the outbox). So a reminder or an
        escalation happens once across every replica, and a process killed in the middle leaves either
        all of it or none of it (the next tick, on any replica, then does it): never a claim whose
        supervisor was not told.
        """
        now = self.clock()
        with self.sessions.begin() as s:
            if claim is not None:
                taken = s.execute(update(Ticket).where(Ticket.id == ticket_id, getattr(Ticket, claim).is_(None))
                                  .values({claim: now}))
                if taken.rowcount != 1:
                    return False
            if fields:
                s.execute(update(Ticket).where(Ticket.id == ticket_id).values(**fields))
            s.add(TicketEvent(ticket_id=ticket_id, at=now, actor=actor.label, action=action, note=note))
            if self.in_transaction:
                s.flush()
                ticket = s.get(Ticket, ticket_id)
                for hook in self.in_transaction:  # a hook that fails rolls the whole event back
                    hook(s, ticket, action, actor)
        self._emit(ticket_id, action, actor)
        return True

    # -- queries -----------------------------------------------------------------
    def get(self, ticket_id: str) -> Ticket:
        with self.sessions() as s:
            ticket = s.get(Ticket, ticket_id)
            if ticket is None:
                raise TicketNotFound(f"没有找到工单 {ticket_id}")
            s.expunge(ticket)
            return ticket

    def events(self, ticket_id: str) -> list[TicketEvent]:
        with self.sessions() as s:
            rows = list(s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)))
            for r in rows:
                s.expunge(r)
            return rows

    def of_resident(self, channel: str, user_id: str, limit: int = 20) -> list[Ticket]:
        with self.sessions() as s:
            rows = list(s.scalars(select(Ticket).where(Ticket.channel == channel, Ticket.user_id == user_id)
                                  .order_by(Ticket.created_at.desc()).limit(limit)))
            for r in rows:
                s.expunge(r)
            return rows

    def visible_to(self, actor: Actor, include_closed: bool = False, limit: int = 200) -> list[Ticket]:
        """Tickets a staff member may see, soonest deadline first."""
        with self.sessions() as s:
            query = select(Ticket)
            if not include_closed:
                query = query.where(Ticket.status.in_(OPEN_STATES))
            if actor.role == "worker":
                query = query.where((Ticket.assignee_id == actor.staff_id) | (Ticket.grid_id.in_(actor.grids or ("",))))
            elif actor.role == "supervisor":
                query = query.where(Ticket.community_id == actor.community)
            elif actor.role != "admin":
                return []
            rows = list(s.scalars(query.order_by(Ticket.dispatch_due).limit(limit)))
            for r in rows:
                s.expunge(r)
            return sorted(rows, key=next_deadline)

    def _emit(self, ticket_id: str, action: str, actor: Actor) -> None:
        for listener in self.listeners:
            try:
                listener(ticket_id, action, actor)
            except Exception:  # a failed notification must not undo a committed change
                log.exception("ticket listener failed for %s %s", ticket_id, action)


def next_deadline(ticket: Ticket) -> datetime:
    """The deadline that matters now: dispatch until the resident is contacted, then the first feedback."""
    return as_utc(ticket.feedback_due if ticket.status in ("accepted", "resolved") else ticket.dispatch_due)


def can_view(actor: Actor, ticket: Ticket) -> bool:
    if actor.role == "admin":
        return True
    if actor.role == "supervisor":
        return ticket.community_id is not None and ticket.community_id == actor.community
    if actor.role == "worker":
        return ticket.assignee_id == actor.staff_id or (ticket.grid_id is not None and ticket.grid_id in actor.grids)
    return False


def can_take(actor: Actor, ticket: Ticket) -> bool:
    """A worker may take a ticket of their own grid that nobody was assigned."""
    return (actor.role == "worker" and ticket.status == "new" and ticket.grid_id is not None
            and ticket.grid_id in actor.grids)


def can_see_personal_data(actor: Actor, ticket: Ticket) -> bool:
    """Phone and exact address: the assigned worker, the community's supervisor, admins."""
    if actor.role == "admin":
        return True
    if actor.role == "supervisor":
        return ticket.community_id is not None and ticket.community_id == actor.community
    return actor.role == "worker" and ticket.assignee_id == actor.staff_id


def to_info(ticket: Ticket, linked: bool = False) -> TicketInfo:
    return TicketInfo(ticket.id, ticket.status, ticket.category, ticket.description[:80], ticket.place,
                      as_utc(ticket.created_at).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                      STATUS_LABELS.get(ticket.status, ticket.status), ticket.resolution_note or "", linked)


def _new_id(now: datetime) -> str:
    return "T" + as_utc(now).astimezone(SHANGHAI).strftime("%y%m%d") + f"{secrets.randbelow(10**5):05d}"
