"""The supervisors' and admins' ticket board: search, filters, sorting, paging, and assigning several at once.

Workers keep their two short lists (mine, my grid's); a community or a district has
hundreds of tickets a month, and the people who dispatch them need to find the
waiting ones of one grid, the overdue ones, one resident's report by a word of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import or_, select

from bot.tickets.lifecycle import OPEN_STATES, STATUS_LABELS, PermissionDenied, TicketNotFound, TransitionError
from bot.tickets.models import Ticket
from bot.tickets.store import Actor, can_view

PAGE_SIZE = 30
MAX_SCAN = 5000  # tickets read for one page; a filter narrows a larger district
SORTS = {"deadline": "时限最近", "newest": "最新提交", "oldest": "最早提交"}


@dataclass
class BoardFilter:
    q: str = ""  # ticket id, or words of the problem or the place
    status: str = "open"  # open | all | one of STATUS_LABELS
    community: str = ""
    grid: str = ""
    category: str = ""
    overdue: bool = False
    sort: str = "deadline"
    page: int = 1

    @classmethod
    def of(cls, params) -> "BoardFilter":
        def text(name: str, limit: int = 64) -> str:
            return str(params.get(name, "") or "").strip()[:limit]

        page = text("page", 6)
        status = text("status") or "open"
        return cls(q=text("q", 100), status=status if status in ("open", "all", *STATUS_LABELS) else "open",
                   community=text("community"), grid=text("grid"), category=text("category"),
                   overdue=text("overdue") in ("1", "on"), sort=text("sort") if text("sort") in SORTS else "deadline",
                   page=max(1, int(page)) if page.isdigit() else 1)

    def query_string(self, **changes) -> str:
        values = {"q": self.q, "status": self.status, "community": self.community, "grid": self.grid,
                  "category": self.category, "overdue": "1" if self.overdue else "", "sort": self.sort,
                  "page": str(self.page), **changes}
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == "1")})


def board_tickets(store, actor: Actor, f: BoardFilter, due_of) -> tuple[list[Ticket], int]:
    """This page's tickets and how many match; due_of(ticket) -> (deadline or None, label)."""
    now = store.clock()
    with store.sessions() as s:
        query = select(Ticket)
        if actor.role == "supervisor":
            query = query.where(Ticket.community_id == actor.community)
        elif actor.role != "admin":
            return [], 0
        if f.status == "open":
            query = query.where(Ticket.status.in_(OPEN_STATES))
        elif f.status != "all":
            query = query.where(Ticket.status == f.status)
        if f.community and actor.role == "admin":
            query = query.where(Ticket.community_id == f.community)
        if f.grid:
            query = query.where(Ticket.grid_id == (None if f.grid == "none" else f.grid))
        if f.category:
            query = query.where(Ticket.category == f.category)
        if f.q:
            words = f"%{f.q}%"
            query = query.where(or_(Ticket.id == f.q.upper(), Ticket.description.like(words), Ticket.place.like(words)))
        tickets = list(s.scalars(query.order_by(Ticket.created_at.desc()).limit(MAX_SCAN)))
        for t in tickets:
            s.expunge(t)
    tickets = [t for t in tickets if can_view(actor, t)]
    if f.overdue:
        tickets = [t for t in tickets if (due := due_of(t)[0]) is not None and due < now]
    if f.sort == "deadline":
        tickets.sort(key=lambda t: (due_of(t)[0] is None, due_of(t)[0] or now))
    elif f.sort == "oldest":
        tickets.reverse()
    start = (f.page - 1) * PAGE_SIZE
    return tickets[start:start + PAGE_SIZE], len(tickets)


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def assign_many(views, actor: Actor, ticket_ids: list[str], worker_id: int) -> tuple[list[str], list[str]]:
    """Assign each ticket to the worker where allowed; (assigned ids, "ID：reason" for the rest)."""
    people = views.people()
    worker = people.get(worker_id)
    done, refused = [], []
    for ticket_id in dict.fromkeys(ticket_ids):
        try:
            ticket = views.store.get(ticket_id)
            if not can_view(actor, ticket):
                raise PermissionDenied("不在您负责的社区")
            if worker is None or worker.id not in {w.id for w in views.workers_for(ticket, people)}:
                raise PermissionDenied("这位网格员不负责这张工单的社区")
            if ticket.status not in ("new", "assigned"):
                raise TransitionError(f"已是“{STATUS_LABELS.get(ticket.status, ticket.status)}”")
            views.store.transition(ticket.id, "assign", actor, note=f"批量派给 {worker.name}",
                                   expected=ticket.status, assignee_id=worker.id)
            done.append(ticket.id)
        except (PermissionDenied, TransitionError, TicketNotFound) as exc:  # reported; the rest go on
            refused.append(f"{ticket_id}：{exc}")
    return done, refused
