"""Tickets in the console: the list by deadline, the detail with its history, and the actions on it.

Workers see their grid's tickets and act on those assigned to them; supervisors
see their community's board and reassign; admins see everything. A resident's
phone, exact address and own words are shown only to those who may see personal
data (can_see_personal_data); everyone else gets them masked.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from bot.console.auth import Visit
from bot.console.board import PAGE_SIZE, SORTS, BoardFilter, assign_many, board_tickets, page_count
from bot.console.pages import Refusal, render, see_other, who
from bot.core.privacy import mask
from bot.tickets.lifecycle import (ACTION_LABELS, DISMISS_REASONS, SOURCE_LABELS, STATUS_LABELS, PermissionDenied,
                                  TicketNotFound, TransitionError)
from bot.tickets.models import Staff, Ticket
from bot.tickets.sla import as_utc
from bot.tickets.store import Actor, can_see_personal_data, can_take, can_view

_ROOM = re.compile(r"\d{1,4}\s*(室|号房|房间)")
EVENT_LABELS = {**ACTION_LABELS, "filed": "居民提交", "unrouted": "未找到值班网格员", "remind": "时限提醒",
                "escalate": "超时督办", "resident_added": "居民补充", "hand_back": "退回待派单",
                "take": "网格员接下待派单工单", "dismiss": "关闭（重复/无效）"}
DONE = {"accept": "已接单。请尽快联系居民，处理完成后填写办结反馈。", "resolve": "已办结反馈，已请居民确认评价。",
        "handback": "已退回，社区负责人会重新派单。", "assign": "已改派。",
        "take": "已接下这张工单。请尽快联系居民，联系后点“接单”。", "dismiss": "已关闭工单，已告诉居民关闭的理由。",
        "filed": "已登记并按网格派单。居民没有在线对话，请把工单号和处理安排告诉居民。"}
SUPERVISING = ("supervisor", "admin")


def coarse_place(place: str) -> str:
    """The estate and building without the room: enough to know where, not whose door."""
    return _ROOM.sub("***室", place or "")


@dataclass
class Row:
    ticket: Ticket
    due: datetime | None
    due_label: str
    overdue: bool
    place: str
    summary: str
    assignee: str
    grid: str = ""


def next_deadline(ticket: Ticket) -> tuple[datetime | None, str]:
    """The deadline that matters now: contacting the resident, then the first feedback; none while rating."""
    if ticket.status in ("new", "assigned"):
        return as_utc(ticket.dispatch_due), "联系时限"
    if ticket.status == "accepted":
        return as_utc(ticket.feedback_due), "反馈时限"
    return None, ""


class TicketViews:
    def __init__(self, console):
        self.console = console
        self.store = console.store
        self.org = console.org

    def people(self) -> dict[int, Staff]:
        with self.store.sessions() as s:
            staff = list(s.scalars(select(Staff)))
            for person in staff:
                s.expunge(person)
        return {p.id: p for p in staff}

    def rows(self, actor: Actor, include_closed: bool) -> list[Row]:
        now = self.store.clock()
        people = self.people()
        rows = [self.row(actor, t, people, now) for t in self.store.visible_to(actor, include_closed=include_closed)]
        rows.sort(key=lambda r: (r.due is None, r.due or now, r.ticket.created_at))
        return rows

    def row(self, actor: Actor, t: Ticket, people: dict[int, Staff], now: datetime) -> Row:
        personal = can_see_personal_data(actor, t)
        due, label = next_deadline(t)
        assignee = people.get(t.assignee_id)
        grid = self.org.grids.get(t.grid_id or "")
        return Row(t, due, label, due is not None and due < now, t.place if personal else coarse_place(t.place),
                   (t.description if personal else mask(t.description))[:60], assignee.name if assignee else "",
                   grid.name if grid else "未匹配网格")

    def board(self, request: Request, visit: Visit, status: int = 200, flash: str = "", error: str = "") -> Response:
        """Supervisors' and admins' list: filters, paging, bulk assignment."""
        actor = Actor.of(visit.staff)
        f = BoardFilter.of(request.query_params)
        tickets, total = board_tickets(self.store, actor, f, next_deadline)
        people, now = self.people(), self.store.clock()
        communities = (self.org.communities if visit.staff.role == "admin"
                       else {k: v for k, v in self.org.communities.items() if k == visit.staff.community})
        grids = {k: g for k, g in self.org.grids.items() if g.community_id in communities}
        workers = sorted((p for p in people.values() if p.role == "worker" and p.active
                          and (visit.staff.role == "admin" or any(g in grids for g in (p.grids or [])))),
                         key=lambda w: w.name)
        categories = sorted({c.name for c in self.console.service.categorizer.categories})
        pages = page_count(total)
        return render(request, "board.html", status, title="工单", rows=[self.row(actor, t, people, now) for t in tickets],
                      total=total, f=f, pages=pages, sorts=SORTS, status_labels=STATUS_LABELS,
                      communities=communities, grids=grids, categories=categories, workers=workers,
                      flash=flash, error=error)

    def sections(self, visit: Visit, include_closed: bool) -> list[tuple[str, list[Row]]]:
        actor = Actor.of(visit.staff)
        rows = self.rows(actor, include_closed)
        if visit.staff.role == "worker":
            mine = [r for r in rows if r.ticket.assignee_id == visit.staff.id]
            return [("派给我的", mine), ("本网格的其他工单", [r for r in rows if r not in mine])]
        return [("待派单", [r for r in rows if r.ticket.status == "new"]),
                ("已派单 / 处理中", [r for r in rows if r.ticket.status != "new"])]

    def workers_for(self, ticket: Ticket, people: dict[int, Staff]) -> list[Staff]:
        """Workers a supervisor may assign this ticket to: those covering its grid or a grid of its community."""
        def belongs(worker: Staff) -> bool:
            if ticket.community_id is None:
                return True  # an unmatched place: only admins see it, and anyone may take it
            grids = worker.grids or []
            return ticket.grid_id in grids or worker.community == ticket.community_id or any(
                (c := self.org.community_of_grid(g)) is not None and c.id == ticket.community_id for g in grids)

        workers = [p for p in people.values() if p.role == "worker" and p.active and belongs(p)]
        return sorted(workers, key=lambda w: (ticket.grid_id not in (w.grids or []), not w.on_duty, w.name))

    def ticket_for(self, visit: Visit, ticket_id: str) -> Ticket:
        try:
            ticket = self.store.get(ticket_id.strip().upper())
        except TicketNotFound as exc:
            raise Refusal(404, f"没有找到工单 {ticket_id}。") from exc
        if not can_view(Actor.of(visit.staff), ticket):
            raise Refusal(403, "这张工单不在您负责的网格或社区，不能查看。")
        return ticket

    def detail(self, request: Request, visit: Visit, ticket: Ticket, status: int = 200, error: str = "",
               flash: str = "") -> Response:
        actor = Actor.of(visit.staff)
        personal = can_see_personal_data(actor, ticket)
        shown = (lambda text: text or "") if personal else (lambda text: mask(text or ""))
        people = self.people()
        events = [{"at": e.at, "who": who(e.actor, people), "what": EVENT_LABELS.get(e.action, e.action),
                   "change": f"{STATUS_LABELS.get(e.from_status, '')} → {STATUS_LABELS.get(e.to_status, '')}"
                   if e.to_status and e.from_status else "", "note": shown(e.note)}
                  for e in self.store.events(ticket.id)]
        mine = ticket.assignee_id == visit.staff.id
        supervising = visit.staff.role in SUPERVISING
        grid = self.org.grids.get(ticket.grid_id or "")
        return render(
            request, "ticket.html", status, title=f"工单 {ticket.id}", ticket=ticket, personal=personal,
            phone=(ticket.phone if personal else mask(ticket.phone)) or "未留",
            place=ticket.place if personal else coarse_place(ticket.place),
            description=shown(ticket.description), resolution=shown(ticket.resolution_note),
            rating_comment=shown(ticket.rating_comment), status_label=STATUS_LABELS.get(ticket.status, ticket.status),
            grid_name=grid.name if grid else "未匹配网格", assignee=people.get(ticket.assignee_id), events=events,
            source=SOURCE_LABELS.get(ticket.source, ticket.source), filed_by=people.get(ticket.filed_by),
            case_id=self.console.service.mediation.case_of_ticket(ticket.id)
            if getattr(self.console.service, "mediation", None) else None,
            can_accept=mine and ticket.status == "assigned", can_resolve=mine and ticket.status == "accepted",
            can_hand_back=(mine or supervising) and ticket.status in ("assigned", "accepted"),
            can_take=can_take(actor, ticket),
            can_dismiss=supervising and ticket.status in ("new", "assigned", "accepted"),
            dismiss_reasons=DISMISS_REASONS,
            workers=self.workers_for(ticket, people) if supervising and ticket.status in ("new", "assigned") else [],
            error=error, flash=flash)

    def act(self, visit: Visit, ticket: Ticket, action: str, form) -> None:
        """Apply one posted action; Refusal when this person may not or the ticket changed meanwhile."""
        actor = Actor.of(visit.staff)
        mine = ticket.assignee_id == visit.staff.id
        supervising = visit.staff.role in SUPERVISING
        expected = str(form.get("status", "")) or None
        kwargs: dict = {}
        if action == "accept" and mine:
            store_action, note = "accept", "已联系居民（工作台）"
        elif action == "resolve" and mine:
            note = str(form.get("note", "")).strip()
            if not note:
                raise Refusal(400, "请写一句怎么处理的（会发给居民）。")
            if len(note) > 1000:
                raise Refusal(400, "办结说明最多 1000 字。")
            store_action = "resolve"
        elif action == "handback" and (mine or supervising):
            store_action, note = "hand_back", "退回（工作台）"
        elif action == "take":
            return self._store_call(lambda: self.store.take(ticket.id, actor))
        elif action == "dismiss" and supervising:
            reason, why = str(form.get("reason", "")), str(form.get("why", ""))
            if len(why) > 500:
                raise Refusal(400, "关闭理由最多 500 字。")
            self._store_call(lambda: self.store.dismiss(ticket.id, actor, reason, why))
            self.console.directory.audit.record(actor.label, "ticket_dismiss", ticket.id, why[:200])
            return
        elif action == "assign" and supervising:
            raw = str(form.get("assignee_id", ""))
            people = self.people()
            worker = people.get(int(raw)) if raw.isdigit() else None
            if worker is None or worker.id not in {w.id for w in self.workers_for(ticket, people)}:
                raise Refusal(400, "请选择本社区的网格员。")
            store_action, note, kwargs = "assign", f"改派给 {worker.name}", {"assignee_id": worker.id}
        else:
            raise Refusal(403, "您不能对这张工单执行这个操作。")
        self._store_call(lambda: self.store.transition(ticket.id, store_action, actor, note=note, expected=expected,
                                                       **kwargs))
        if store_action == "assign":
            self.console.directory.audit.record(actor.label, "ticket_assign", ticket.id, note)

    @staticmethod
    def _store_call(call) -> None:
        """Run a store action; its refusals become the page's (403 not allowed, 409 changed or not possible now)."""
        try:
            call()
        except PermissionDenied as exc:
            raise Refusal(403, str(exc)) from exc
        except TransitionError as exc:
            raise Refusal(409, str(exc)) from exc


def _sign(visit: Visit, message: str) -> str:
    return hmac.new(visit.csrf.encode(), message.encode(), "sha256").hexdigest()[:32]


def add_routes(router: APIRouter, console) -> None:
    views = TicketViews(console)

    @router.get("/tickets")
    def ticket_list(request: Request, closed: int = 0, visit: Visit = Depends(console.visit)) -> Response:
        if visit.staff.role in SUPERVISING:
            done = request.query_params.get("done", "")[:500]
            # only a message this session's own bulk assignment signed is shown: a link cannot put words here
            signed = hmac.compare_digest(request.query_params.get("sig", ""), _sign(visit, done))
            return views.board(request, visit, flash=done if done and signed else "")
        sections = views.sections(visit, include_closed=bool(closed))
        return render(request, "tickets.html", title="工单", sections=sections, closed=bool(closed),
                      status_labels=STATUS_LABELS)

    @router.post("/tickets/bulk-assign")
    async def bulk_assign(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        from starlette.concurrency import run_in_threadpool

        console.require(visit, *SUPERVISING)
        form = await console.form(request)
        ids = [str(i).strip().upper() for i in form.getlist("ticket")][:PAGE_SIZE * 4]
        raw = str(form.get("assignee_id", ""))
        back = str(form.get("back", ""))
        back = back if back.startswith("?") or not back else ""
        if not ids or not raw.isdigit():
            return await run_in_threadpool(lambda: views.board(request, visit, 400, error="请勾选工单并选择网格员。"))
        actor = Actor.of(visit.staff)
        done, refused = await run_in_threadpool(assign_many, views, actor, ids, int(raw))
        if done:
            await run_in_threadpool(console.directory.audit.record, actor.label, "ticket_assign",
                                    "、".join(done)[:200], f"批量派单 {len(done)} 张")
        message = f"已派单 {len(done)} 张。" + (f"未派 {len(refused)} 张：" + "；".join(refused) if refused else "")
        joiner = "&" if back else "?"
        message = message[:500]
        return see_other("/console/tickets" + (back or "") + joiner +
                         urlencode({"done": message, "sig": _sign(visit, message)}))

    @router.get("/tickets/{ticket_id}")
    def ticket_detail(request: Request, ticket_id: str, ok: str = "",
                      visit: Visit = Depends(console.visit)) -> Response:
        ticket = views.ticket_for(visit, ticket_id)
        return views.detail(request, visit, ticket, flash=DONE.get(ok, ""))

    @router.post("/tickets/{ticket_id}/{action}")
    async def ticket_action(request: Request, ticket_id: str, action: str,
                            visit: Visit = Depends(console.visit)) -> Response:
        from starlette.concurrency import run_in_threadpool

        form = await console.form(request)
        ticket = await run_in_threadpool(views.ticket_for, visit, ticket_id)
        try:
            await run_in_threadpool(views.act, visit, ticket, action, form)
        except Refusal as refusal:
            if refusal.status == 403:
                raise
            status, message = refusal.status, refusal.message
        else:
            return see_other(f"/console/tickets/{ticket.id}?ok={action}")
        fresh = await run_in_threadpool(views.ticket_for, visit, ticket_id)
        return await run_in_threadpool(lambda: views.detail(request, visit, fresh, status, error=message))
